"""Embedding backends and the fitted calibration for rewrite-detector's server.

Everything heavy (torch, sentence-transformers) is imported lazily, when a model is actually loaded.
"""

from rewrite_detector_models.embedder import (
    DEFAULT_MODEL_NAME,
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    default_model_path,
    load_embedder,
)

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Embedder",
    "HashingEmbedder",
    "SentenceTransformerEmbedder",
    "default_model_path",
    "load_embedder",
]
