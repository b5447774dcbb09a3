"""Embedding backends and the fitted calibration for rewrite-detector's server.

Everything heavy (torch, sentence-transformers, onnxruntime) is imported lazily, when a model is
actually loaded or exported.
"""

from rewrite_detector_models.batching import MicroBatchingEmbedder
from rewrite_detector_models.cache import CachingEmbedder
from rewrite_detector_models.embedder import (
    DEFAULT_EMBED_BACKEND,
    DEFAULT_MODEL_NAME,
    EMBED_BACKENDS,
    Embedder,
    HashingEmbedder,
    SentenceTransformerEmbedder,
    default_model_path,
    load_embedder,
)
from rewrite_detector_models.onnx_backend import OnnxEmbedder, OnnxExportError, ensure_onnx_export

__all__ = [
    "DEFAULT_EMBED_BACKEND",
    "DEFAULT_MODEL_NAME",
    "EMBED_BACKENDS",
    "CachingEmbedder",
    "Embedder",
    "HashingEmbedder",
    "MicroBatchingEmbedder",
    "OnnxEmbedder",
    "OnnxExportError",
    "SentenceTransformerEmbedder",
    "default_model_path",
    "ensure_onnx_export",
    "load_embedder",
]
