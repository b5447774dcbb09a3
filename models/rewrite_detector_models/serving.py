"""How the server stacks an embedder: LRU cache -> micro-batcher -> model.

The cache comes first so repeated texts never wait in the batch queue; the batcher then merges what
is left from all concurrent requests into shared model calls.
"""

from __future__ import annotations

import logging
from pathlib import Path

from rewrite_detector_models.batching import MicroBatchingEmbedder
from rewrite_detector_models.cache import CachingEmbedder
from rewrite_detector_models.embedder import Embedder

__all__ = ["EMBEDDING_CACHE_FILE", "MODELS_SUBDIR", "close_serving_embedder", "serving_embedder"]

logger = logging.getLogger(__name__)

# Inside the data dir: ONNX exports (made once) and the saved LRU of submitted texts' embeddings.
MODELS_SUBDIR = "models"
EMBEDDING_CACHE_FILE = "embedding-cache.npz"


def backend_of(embedder: Embedder) -> str:
    """ "torch", "onnx", "onnx-int8", ... (the wrappers forward their model's)."""
    return str(getattr(embedder, "backend", "unknown"))


def serving_embedder(
    model: Embedder,
    *,
    batch_size: int = 64,
    batch_wait_ms: float = 2.0,
    cache_size: int = 20_000,
    cache_file: Path | None = None,
) -> Embedder:
    """Wrap ``model`` for serving. ``batch_size`` <= 1 disables batching, ``cache_size`` 0 the cache.

    ``cache_file``: a file saved by ``close_serving_embedder`` to warm the cache from (if it is for the
    same model and backend).
    """
    embedder: Embedder = model
    if batch_size > 1:
        embedder = MicroBatchingEmbedder(embedder, max_batch=batch_size, max_wait_ms=batch_wait_ms)
    if cache_size > 0:
        cache = CachingEmbedder(embedder, cache_size)
        if cache_file is not None:
            loaded = cache.load(cache_file, backend=backend_of(model))
            if loaded:
                logger.info("embedding cache warmed entries=%d path=%s", loaded, cache_file)
        embedder = cache
    return embedder


def close_serving_embedder(embedder: Embedder, *, cache_file: Path | None = None) -> None:
    """Save the LRU (if any) to ``cache_file`` and stop the batcher thread (if any)."""
    if isinstance(embedder, CachingEmbedder) and cache_file is not None and len(embedder):
        try:
            saved = embedder.save(cache_file, backend=backend_of(embedder))
            logger.info("embedding cache saved entries=%d path=%s", saved, cache_file)
        except OSError as err:  # only a cache: losing it costs model time, not data
            logger.warning("embedding cache not saved path=%s error=%s", cache_file, err)
    close = getattr(embedder, "close", None)
    if callable(close):
        close()
