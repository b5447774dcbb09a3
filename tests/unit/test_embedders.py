"""Embedding backends (torch / ONNX / ONNX int8), the LRU cache and how the server stacks them."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from rewrite_detector_models.cache import CachingEmbedder
from rewrite_detector_models.embedder import EMBED_BACKENDS, HashingEmbedder, load_embedder
from rewrite_detector_models.onnx_backend import (
    EXPORT_MANIFEST,
    OnnxExportError,
    ensure_onnx_export,
    export_dir_name,
)
from rewrite_detector_models.serving import close_serving_embedder, serving_embedder


class RecordingEmbedder:
    def __init__(self) -> None:
        self._inner = HashingEmbedder()
        self.seen: list[str] = []

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def backend(self) -> str:
        return "recording"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.seen.extend(texts)
        return self._inner.embed_batch(texts)


# -- the LRU --------------------------------------------------------------------------------------


def test_cache_embeds_a_text_once_and_answers_repeats_with_the_same_vector() -> None:
    model = RecordingEmbedder()
    cache = CachingEmbedder(model, max_entries=10)
    first = cache.embed_batch(["wire copy", "original", "wire copy"])
    again = cache.embed_batch(["wire copy", "new"])
    assert model.seen == ["wire copy", "original", "new"]
    assert np.array_equal(first, HashingEmbedder().embed_batch(["wire copy", "original", "wire copy"]))
    assert np.array_equal(again[0], first[0])
    assert (cache.hits, cache.misses) == (1, 3)


def test_cache_evicts_the_least_recently_used_text() -> None:
    model = RecordingEmbedder()
    cache = CachingEmbedder(model, max_entries=2)
    cache.embed_batch(["a", "b"])
    cache.embed_batch(["a"])  # "a" is now more recent than "b"
    cache.embed_batch(["c"])  # evicts "b"
    model.seen.clear()
    cache.embed_batch(["a", "b", "c"])
    assert model.seen == ["b"]
    assert len(cache) == 2


def test_callers_cannot_corrupt_cached_vectors() -> None:
    cache = CachingEmbedder(RecordingEmbedder(), max_entries=10)
    rows = cache.embed_batch(["text"])
    rows[:] = 0.0
    assert np.array_equal(cache.embed_batch(["text"]), HashingEmbedder().embed_batch(["text"]))


def test_cache_survives_a_restart_through_its_file_for_the_same_backend_only(tmp_path: Path) -> None:
    path = tmp_path / "embedding-cache.npz"
    cache = CachingEmbedder(RecordingEmbedder(), max_entries=10)
    texts = [f"paragraph {i}" for i in range(5)]
    cache.embed_batch(texts)
    # A key ending in a NUL byte must survive too (numpy's bytes arrays would strip it).
    cache._put(b"\x01" * 15 + b"\x00", np.ones(384, dtype=np.float32) / np.sqrt(384))
    assert cache.save(path, backend="recording") == 6

    model = RecordingEmbedder()
    restarted = CachingEmbedder(model, max_entries=10)
    assert restarted.load(path, backend="recording") == 6
    assert np.array_equal(restarted.embed_batch(texts), HashingEmbedder().embed_batch(texts))
    assert model.seen == []
    assert b"\x01" * 15 + b"\x00" in restarted._entries

    other = CachingEmbedder(RecordingEmbedder(), max_entries=10)
    assert other.load(path, backend="onnx-int8") == 0  # vectors of another backend are not reused
    assert other.load(tmp_path / "missing.npz", backend="recording") == 0
    (tmp_path / "torn.npz").write_bytes(path.read_bytes()[:100])
    assert other.load(tmp_path / "torn.npz", backend="recording") == 0


def test_serving_stack_is_cache_then_batcher_and_saves_on_close(tmp_path: Path) -> None:
    path = tmp_path / "embedding-cache.npz"
    model = RecordingEmbedder()
    served = serving_embedder(model, batch_size=8, cache_size=100, cache_file=path)
    assert served.name == model.name and served.dimension == model.dimension
    served.embed_batch(["one", "two"])
    close_serving_embedder(served, cache_file=path)
    with pytest.raises(RuntimeError, match="closed"):
        served.embed_batch(["after close"])

    model_after_restart = RecordingEmbedder()
    warm = serving_embedder(model_after_restart, batch_size=8, cache_size=100, cache_file=path)
    warm.embed_batch(["one", "two", "three"])
    assert model_after_restart.seen == ["three"]
    assert serving_embedder(model, batch_size=1, cache_size=0) is model  # both layers can be turned off


# -- backends -------------------------------------------------------------------------------------


def test_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(ValueError, match="torch, onnx, onnx-int8"):
        load_embedder(backend="tensorrt")
    assert EMBED_BACKENDS == ("torch", "onnx", "onnx-int8")
    assert load_embedder("hashing", backend="onnx-int8").name == HashingEmbedder().name


def test_export_refuses_a_model_that_is_not_mean_pooled(tmp_path: Path) -> None:
    model_dir = tmp_path / "cls-model"
    (model_dir / "1_Pooling").mkdir(parents=True)
    (model_dir / "model.safetensors").write_bytes(b"")
    (model_dir / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
            ]
        )
    )
    (model_dir / "1_Pooling" / "config.json").write_text(
        json.dumps({"pooling_mode_cls_token": True, "pooling_mode_mean_tokens": False})
    )
    cache = tmp_path / "cache"
    with pytest.raises(OnnxExportError, match="mean pooling"):
        ensure_onnx_export(model_dir, cache / export_dir_name("cls-model", True), quantized=True)
    assert not cache.exists()  # refused before anything was written


@pytest.fixture(scope="module")
def export_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("onnx-exports")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("backend", "min_cosine", "min_mean_cosine"), [("onnx", 0.9999, 0.9999), ("onnx-int8", 0.97, 0.985)]
)
def test_onnx_backends_reproduce_the_torch_model_on_the_seeds(
    real_embedder, seeds, export_cache: Path, backend: str, min_cosine: float, min_mean_cosine: float
) -> None:  # type: ignore[no-untyped-def]
    paragraphs = [p.strip() for text in seeds.values() for p in text.split("\n\n") if p.strip()]
    embedder = load_embedder(backend=backend, cache_dir=export_cache)
    assert (embedder.name, embedder.dimension, embedder.backend) == (real_embedder.name, 384, backend)  # type: ignore[attr-defined]
    vectors = embedder.embed_batch(paragraphs)
    assert vectors.dtype == np.float32 and vectors.shape == (len(paragraphs), 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    cosine = np.sum(vectors * real_embedder.embed_batch(paragraphs), axis=1)
    assert cosine.min() >= min_cosine and cosine.mean() >= min_mean_cosine, (cosine.min(), cosine.mean())
    # Batch composition must not change a text's vector (padding is masked out).
    assert np.allclose(embedder.embed_batch(paragraphs[:1])[0], vectors[0], atol=1e-5)


@pytest.mark.slow
def test_an_export_is_made_once_and_redone_when_its_source_changes(export_cache: Path) -> None:
    from rewrite_detector_models.embedder import default_model_path

    target = export_cache / export_dir_name("all-MiniLM-L6-v2", True)
    ensure_onnx_export(default_model_path(), target, quantized=True)
    manifest = json.loads((target / EXPORT_MANIFEST).read_text())
    ensure_onnx_export(default_model_path(), target, quantized=True)  # a second start: reused
    assert json.loads((target / EXPORT_MANIFEST).read_text())["exported_at"] == manifest["exported_at"]

    # An export made from other weights (here: a manifest saying so) is not trusted.
    manifest["source_files"]["model.safetensors"][0] += 1
    (target / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    ensure_onnx_export(default_model_path(), target, quantized=True)
    redone = json.loads((target / EXPORT_MANIFEST).read_text())
    assert redone["exported_at"] > manifest["exported_at"]
    assert redone["probe_min_cosine"] >= 0.97
