"""The "ivf-sq8" fast-scan first pass (``IndexOptions.ivf_fast_scan``), on real FAISS.

Both IVFs (SQ8 and 4-bit PQ fast-scan) must hold the same ids through every mutation path — training,
add, remove, regrow with replayed writes, save and load — and a search must answer with SQ8 scores.
Uniform random vectors are the worst case for PQ (4-bit codes keep ~0.6 of SQ8's top-10 there, at any
dimension); the recall checks use clustered unit vectors, which like sentence embeddings have structure.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_storage import clustered, unit

from rewrite_detector_models.embedder import HashingEmbedder
from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import Settings, check_retrieval_settings
from rewrite_detector_server.core.types import ArticleInput
from rewrite_detector_server.storage import (
    CorruptIndexError,
    FaissVectorIndex,
    IndexOptions,
    Storage,
    vector_index,
)
from rewrite_detector_server.storage.facade import INDEX_FILE

D = 64


def near(rng: np.random.Generator, vectors: np.ndarray, noise: float = 0.05) -> np.ndarray:
    """Near-duplicates of ``vectors`` (cosine ~0.999 to them)."""
    x = vectors + noise / np.sqrt(vectors.shape[1]) * rng.standard_normal(vectors.shape).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def fast_ids(index: FaissVectorIndex) -> np.ndarray:
    """The ids the fast-scan part holds, ascending."""
    return np.sort(vector_index._ivf_ids(index._fast))


def assert_in_step(index: FaissVectorIndex) -> None:
    assert index.fast_scan
    assert index._fast.ntotal == index._index.ntotal
    assert index._fast.nlist == index._index.nlist
    np.testing.assert_array_equal(fast_ids(index), index.ids())
    np.testing.assert_array_equal(
        index._fast.quantizer.reconstruct_n(0, index.nlist),
        index._index.quantizer.reconstruct_n(0, index.nlist),
    )


def overlap(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.mean([len(set(x) & set(y)) / a.shape[1] for x, y in zip(a, b, strict=True)]))


def sidecar(path: Path) -> dict[str, Any]:
    return json.loads(path.with_name(path.name + ".meta.json").read_text(encoding="utf-8"))


def fast_file(path: Path) -> Path:
    return path.with_name(path.name + vector_index.FAST_SCAN_SUFFIX)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def corpus(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    base = clustered(rng, 3000, D)
    return np.arange(3000, dtype=np.int64) * 7 + 3, base


FULL = {"ivf_train_size": 1000, "ivf_nlist": 16, "ivf_nprobe": 16}  # every list probed


def build(ids: np.ndarray, base: np.ndarray, path: Path | None = None, **options: Any) -> FaissVectorIndex:
    index = FaissVectorIndex(D, "ivf-sq8", path=path, options=IndexOptions(**{**FULL, **options}))
    index.add(ids, base)
    return index


# ------------------------------------------------------------------------------------- search


@pytest.mark.parametrize(("d", "m"), [(384, 96), (64, 16), (32, 8), (30, 6), (7, 1), (2, 1)])
def test_sub_quantizers_follow_the_dimension(d: int, m: int) -> None:
    assert vector_index._fast_scan_m(d) == m


def test_fast_scan_agrees_with_sq8_at_full_nprobe(
    corpus: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    ids, base = corpus
    sq8, fast = build(ids, base), build(ids, base, ivf_fast_scan=True)
    assert not sq8.fast_scan and fast.fast_scan
    picked = rng.choice(ids.size, 200, replace=False)
    queries = near(rng, base[picked])
    s0, f0 = sq8.search(queries, 10)
    s1, f1 = fast.search(queries, 10)
    assert f1.dtype == np.int64 and s1.dtype == np.float32 and f1.shape == (200, 10)
    np.testing.assert_array_equal(f1[:, 0], f0[:, 0])
    np.testing.assert_array_equal(f1[:, 0], ids[picked])  # a near-duplicate finds its source
    assert overlap(f0, f1) >= 0.9
    # Scores are SQ8's (the re-rank decodes the same codes), not the fast scan's 4-bit estimates.
    np.testing.assert_allclose(s1[:, 0], s0[:, 0], atol=1e-5)
    assert (np.diff(s1, axis=1) <= 0).all()


def test_candidates_covering_the_probed_lists_give_exactly_the_sq8_answer(
    corpus: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    # With nprobe 1 a list of ~190 vectors holds fewer than the 4 * 100 candidates asked for: the fast
    # scan pads with -1, the re-rank sees every vector SQ8 would scan, and both answers are the same.
    ids, base = corpus
    options = {**FULL, "ivf_nprobe": 1}
    sq8, fast = build(ids, base, **options), build(ids, base, **options, ivf_fast_scan=True)
    queries = clustered(rng, 20, D)
    s0, f0 = sq8.search(queries, 100)
    s1, f1 = fast.search(queries, 100)
    assert (f0 == -1).any()  # the lists ran out before 100
    np.testing.assert_array_equal(f1 == -1, f0 == -1)
    np.testing.assert_allclose(s1, s0, atol=1e-5)
    for row0, row1 in zip(f0, f1, strict=True):
        assert set(row0.tolist()) == set(row1.tolist())


def test_fast_scan_starts_when_the_index_is_trained(
    corpus: tuple[np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    ids, base = corpus
    path = tmp_path / "ivf.faiss"
    index = FaissVectorIndex(D, "ivf-sq8", path=path, options=IndexOptions(**FULL, ivf_fast_scan=True))
    index.add(ids[:600], base[:600])
    assert index.kind == "flat" and not index.fast_scan  # exact until trained
    _, found = index.search(base[:5], 3)
    np.testing.assert_array_equal(found[:, 0], ids[:5])
    index.save()
    assert "fast_scan" not in sidecar(path) and not fast_file(path).exists()
    index.add(ids[600:], base[600:])
    assert index.kind == "ivf"
    assert_in_step(index)


# --------------------------------------------------------------------------------------- writes


def test_remove_keeps_both_parts_in_step(
    corpus: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    ids, base = corpus
    index = build(ids, base, ivf_fast_scan=True)
    queries = near(rng, base[:100])
    _, before = index.search(queries, 10)
    gone = np.unique(before[:, :3])  # the best hits, so that removal changes the answers
    assert index.remove(np.concatenate([gone, [10**9]])) == gone.size  # the unknown id is not counted
    assert index.remove(gone) == 0 and index.remove(np.array([10**9 + 1])) == 0
    assert index.ntotal == ids.size - gone.size
    assert_in_step(index)
    _, found = index.search(queries, 10)
    assert not np.isin(found, gone).any()
    assert (found >= 0).all()  # still k live results
    # New ids go into both parts and are found, even with only 4 candidates (k=1). FAISS 1.15 left the
    # freed slots dirty and garbled codes added after a removal: 16 of these 20 were missed then.
    fresh = near(rng, base[:20], noise=0.5)
    new_ids = np.arange(20, dtype=np.int64) + 10**6
    index.add(new_ids, fresh)
    assert_in_step(index)
    np.testing.assert_array_equal(index.search(fresh, 1)[1][:, 0], new_ids)


class _FailingAdds:
    """The real fast-scan index, except that adds fail: a FAISS error (out of memory) half-way."""

    def __init__(self, real: Any) -> None:
        self._real = real

    def add_with_ids(self, vectors: np.ndarray, ids: np.ndarray) -> None:
        self._real.add_with_ids(vectors[:1], ids[:1])
        raise RuntimeError("injected: std::bad_alloc")

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_a_failed_fast_scan_add_leaves_neither_part_holding_the_ids(
    corpus: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    # The storage facade repairs a failed write from ids(), which reads the SQ8 part: the SQ8 part must
    # not keep ids the fast-scan part lacks.
    ids, base = corpus
    index = build(ids, base, ivf_fast_scan=True)
    real = index._fast
    index._fast = _FailingAdds(real)
    new_ids = np.arange(5, dtype=np.int64) + 10**6
    with pytest.raises(RuntimeError, match="injected"):
        index.add(new_ids, unit(rng, 5, D))
    index._fast = real
    assert index.ntotal == ids.size and not np.isin(new_ids, index.ids()).any()
    assert_in_step(index)
    index.add(new_ids, unit(rng, 5, D))  # the repair's re-add goes through
    assert_in_step(index)


def test_concurrent_searches_during_writes(
    corpus: tuple[np.ndarray, np.ndarray], rng: np.random.Generator
) -> None:
    # A re-rank reconstructing an id the SQ8 part no longer holds would raise: searches must see both
    # parts at the same state.
    ids, base = corpus
    index = build(ids[:1500], base[:1500], ivf_fast_scan=True)
    queries = near(rng, base[:18])
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                index.search(queries, 10)
        except BaseException as err:  # surfaced by the main thread
            errors.append(err)

    readers = [threading.Thread(target=reader) for _ in range(3)]
    for t in readers:
        t.start()
    try:
        for start in range(1500, 3000, 100):
            index.add(ids[start : start + 100], base[start : start + 100])
            index.remove(ids[start - 1500 : start - 1450])
    finally:
        stop.set()
        for t in readers:
            t.join()
    assert not errors, errors
    assert_in_step(index)


# ------------------------------------------------------------------------------------- regrow


def test_regrow_rebuilds_both_parts_and_replays_the_writes_on_both(
    tmp_path: Path,
    rng: np.random.Generator,
    held_regrow: tuple[threading.Event, threading.Event],
    caplog: pytest.LogCaptureFixture,
) -> None:
    started, release = held_regrow
    base = clustered(rng, 900, D)
    ids = np.arange(900, dtype=np.int64) + 1000
    path = tmp_path / "ivf.faiss"
    options = IndexOptions(ivf_train_size=400, ivf_nprobe=4, ivf_regrow=1.5, ivf_fast_scan=True)
    index = FaissVectorIndex(D, "ivf-sq8", path=path, options=options)
    index.add(ids[:400], base[:400])
    assert index.nlist == 10 and index.fast_scan
    index.add(ids[400:700], base[400:700])  # 700 vectors want 17 lists: a regrow starts
    assert started.wait(10)
    index.add(ids[700:900], base[700:900])
    removed = np.concatenate([ids[:15], ids[450:460], ids[880:890]])
    assert index.remove(removed) == 35
    assert index.nlist == 10
    assert_in_step(index)  # the old parts, serving throughout
    release.set()
    assert index.wait_for_regrow(60)

    assert index.nlist == 17
    assert_in_step(index)
    live = ids[~np.isin(ids, removed)]
    np.testing.assert_array_equal(index.ids(), live)
    keep = ~np.isin(ids, removed)
    _, found = index.search(base, 3)
    np.testing.assert_array_equal(found[keep, 0], ids[keep])  # every live vector finds itself
    assert not np.isin(found, removed).any()
    # Saved with its fast-scan part: a restart reads it rather than building it.
    assert sidecar(path)["fast_scan"]["ntotal"] == live.size
    with caplog.at_level(logging.INFO, logger=vector_index.__name__):
        loaded = FaissVectorIndex.load(path, D, "ivf-sq8", options=options)
    assert "built from the SQ8 codes" not in caplog.text
    assert loaded.nlist == 17
    assert_in_step(loaded)
    np.testing.assert_array_equal(loaded.search(base, 3)[1], found)


# -------------------------------------------------------------------------------- save and load


def test_save_load_round_trip(
    corpus: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids, base = corpus
    path = tmp_path / "ivf.faiss"
    index = build(ids, base, path, ivf_fast_scan=True)
    index.remove(ids[:30])
    index.save()
    entry = sidecar(path)["fast_scan"]
    assert entry["ntotal"] == ids.size - 30 and entry["size"] == fast_file(path).stat().st_size
    assert not fast_file(path).with_name(fast_file(path).name + ".tmp").exists()
    with caplog.at_level(logging.INFO, logger=vector_index.__name__):
        loaded = FaissVectorIndex.load(path, D, "ivf-sq8", options=IndexOptions(**FULL, ivf_fast_scan=True))
    assert "built" not in caplog.text and "ignored" not in caplog.text
    assert_in_step(loaded)
    queries = near(rng, base[:50])
    s0, f0 = index.search(queries, 10)
    s1, f1 = loaded.search(queries, 10)
    np.testing.assert_array_equal(f1, f0)
    np.testing.assert_array_equal(s1, s0)


def test_loading_a_snapshot_without_fast_scan_builds_it_once(
    corpus: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids, base = corpus
    path = tmp_path / "ivf.faiss"
    build(ids, base, path).save()  # an older snapshot: SQ8 only
    sq8_bytes = path.read_bytes()
    options = IndexOptions(**FULL, ivf_fast_scan=True)
    with caplog.at_level(logging.INFO, logger=vector_index.__name__):
        loaded = FaissVectorIndex.load(path, D, "ivf-sq8", options=options)
    assert "fast-scan part built from the SQ8 codes" in caplog.text
    assert_in_step(loaded)
    queries = near(rng, base[:200])
    _, found = loaded.search(queries, 10)
    np.testing.assert_array_equal(found[:, 0], ids[:200])
    assert overlap(found, build(ids, base, ivf_fast_scan=True).search(queries, 10)[1]) >= 0.9
    # Kept for the next start, without rewriting the SQ8 file.
    assert path.read_bytes() == sq8_bytes
    assert sidecar(path)["fast_scan"]["ntotal"] == ids.size
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=vector_index.__name__):
        again = FaissVectorIndex.load(path, D, "ivf-sq8", options=options)
    assert "built" not in caplog.text
    np.testing.assert_array_equal(again.search(queries, 10)[1], found)


def test_a_fast_scan_part_is_ignored_while_the_option_is_off_and_dropped_at_the_next_save(
    corpus: tuple[np.ndarray, np.ndarray],
    rng: np.random.Generator,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    ids, base = corpus
    path = tmp_path / "ivf.faiss"
    build(ids, base, path, ivf_fast_scan=True).save()
    fast_file(path).write_bytes(b"not read while the option is off")
    with caplog.at_level(logging.INFO, logger=vector_index.__name__):
        loaded = FaissVectorIndex.load(path, D, "ivf-sq8", options=IndexOptions(**FULL))
    assert "ignored" in caplog.text
    assert not loaded.fast_scan
    queries = near(rng, base[:50])
    np.testing.assert_array_equal(loaded.search(queries, 10)[1], build(ids, base).search(queries, 10)[1])
    loaded.save()
    assert "fast_scan" not in sidecar(path) and not fast_file(path).exists()


def _rewrite_fast_part_with(path: Path, index: FaissVectorIndex) -> None:
    """Replace the snapshot's fast-scan file by ``index``'s, with a sidecar entry that verifies."""
    meta = sidecar(path)
    meta["fast_scan"] = vector_index._write_fast_scan(index._fast, fast_file(path))
    path.with_name(path.name + ".meta.json").write_text(json.dumps(meta), encoding="utf-8")


@pytest.mark.parametrize("damage", ["truncated", "flipped", "missing", "entry", "fewer", "centroids"])
def test_a_fast_scan_part_that_does_not_verify_is_refused(
    corpus: tuple[np.ndarray, np.ndarray], tmp_path: Path, damage: str
) -> None:
    ids, base = corpus
    path = tmp_path / "ivf.faiss"
    build(ids, base, path, ivf_fast_scan=True).save()
    fast = fast_file(path)
    data = fast.read_bytes()
    if damage == "truncated":
        fast.write_bytes(data[:-100])
    elif damage == "flipped":  # same size, other bytes
        fast.write_bytes(data[:-100] + bytes(b ^ 0xFF for b in data[-100:]))
    elif damage == "missing":
        fast.unlink()
    elif damage == "entry":
        meta = sidecar(path)
        meta["fast_scan"] = {"ntotal": "many"}
        path.with_name(path.name + ".meta.json").write_text(json.dumps(meta), encoding="utf-8")
    elif damage == "fewer":  # verifies, but holds other vectors than the SQ8 part
        _rewrite_fast_part_with(path, build(ids[:-1], base[:-1], ivf_fast_scan=True))
    else:  # verifies, same count, lists trained elsewhere
        _rewrite_fast_part_with(path, build(ids, base[::-1].copy(), ivf_fast_scan=True))
    with pytest.raises(CorruptIndexError):
        FaissVectorIndex.load(path, D, "ivf-sq8", options=IndexOptions(**FULL, ivf_fast_scan=True))
    # The SQ8 part alone still loads when the option is off: the fast-scan part is not read then.
    assert FaissVectorIndex.load(path, D, "ivf-sq8", options=IndexOptions(**FULL)).ntotal == ids.size


def test_storage_rebuilds_from_the_store_when_the_fast_scan_part_is_damaged(
    tmp_path: Path, rng: np.random.Generator
) -> None:
    from rewrite_detector_server.core.types import ArticleInput, Paragraph

    data = tmp_path / "data"
    options = IndexOptions(ivf_train_size=400, ivf_fast_scan=True)
    vectors = clustered(rng, 600, D)

    def open_storage() -> Storage:
        return Storage.open(data, model_name="m", dimension=D, index_type="ivf-sq8", index_options=options)

    with open_storage() as s:
        for i in range(150):
            texts = [f"article {i} paragraph {j}" for j in range(4)]
            paragraphs, pos = [], 0
            for j, t in enumerate(texts):
                paragraphs.append(Paragraph(index=j, start=pos, end=pos + len(t), text=t))
                pos += len(t) + 2
            article = ArticleInput(id=f"a{i:03d}", text="\n\n".join(texts))
            s.upsert(article, f"h{i}", paragraphs, vectors[4 * i : 4 * i + 4])
        assert isinstance(s.index, FaissVectorIndex) and s.index.fast_scan
    fast = fast_file(data / INDEX_FILE)
    fast.write_bytes(fast.read_bytes()[:-10])
    with open_storage() as s:
        assert s.last_reconcile.index_status == "rebuilt" and "fastscan" in s.last_reconcile.reason
        assert isinstance(s.index, FaissVectorIndex) and s.index.fast_scan and s.index_ntotal == 600
        assert s.search(vectors[8:9], 1)[0][0][1:] == ("a002", 0)


# ------------------------------------------------------------------------------------- settings


def test_index_options_want_a_bool() -> None:
    with pytest.raises(ValueError, match="ivf_fast_scan"):
        IndexOptions(ivf_fast_scan="false")  # type: ignore[arg-type]
    assert IndexOptions().ivf_fast_scan is False  # off by default


def test_fast_scan_setting_comes_from_the_environment() -> None:
    assert Settings.from_env({}).ivf_fast_scan is True  # the service's default (IndexOptions': off)
    assert Settings.from_env({"REWRITE_DETECTOR_IVF_FAST_SCAN": "on"}).ivf_fast_scan is True
    assert Settings.from_env({"REWRITE_DETECTOR_IVF_FAST_SCAN": "0"}).ivf_fast_scan is False
    with pytest.raises(ValueError, match="REWRITE_DETECTOR_IVF_FAST_SCAN"):
        Settings.from_env({"REWRITE_DETECTOR_IVF_FAST_SCAN": "maybe"})


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_fast_scan_is_ignored_by_the_other_index_types(tmp_path: Path, index_type: str) -> None:
    settings = Settings(data_dir=tmp_path / "data", index_type=index_type, match_workers=0)
    check_retrieval_settings(settings)
    detector = build_detector(settings, HashingEmbedder())
    try:
        text = "One paragraph about the harbour.\n\nAnother about the weir."
        detector.index(ArticleInput(id="a", text=text))
        assert detector.storage.index.fast_scan is False  # type: ignore[attr-defined]
    finally:
        detector.close()


def test_fast_scan_setting_reaches_the_index(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {"REWRITE_DETECTOR_IVF_FAST_SCAN": "1"},
        data_dir=tmp_path / "data",
        index_type="ivf-sq8",
        match_workers=0,
    )
    detector = build_detector(settings, HashingEmbedder())
    try:
        assert detector.storage.index._options.ivf_fast_scan is True  # type: ignore[attr-defined]
    finally:
        detector.close()
