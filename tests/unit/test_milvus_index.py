"""MilvusVectorIndex against a real milvus-lite database (never a mock), and the facade on top of it.

Search results are checked against exact brute-force numpy ground truth; reconciliation is checked by
damaging the collection behind the facade's back (an orphan id, a lost vector) and reopening.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from rewrite_detector_server.core.types import ArticleInput, Paragraph
from rewrite_detector_server.errors import IncompatibleIndexError, IndexUnavailableError
from rewrite_detector_server.storage import Storage, milvus_index
from rewrite_detector_server.storage.facade import MILVUS_LITE_FILE
from rewrite_detector_server.storage.milvus_index import (
    ForeignCollectionError,
    MilvusOptions,
    MilvusVectorIndex,
    redact_uri,
)

DIM = 32
MODEL = "test-model"


def unit(rng: np.random.Generator, n: int, d: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute_force(base_ids: np.ndarray, base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :k]
    return base_ids[order]


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture
def lite(tmp_path: Path) -> MilvusOptions:
    return MilvusOptions(uri=str(tmp_path / "vectors.db"))


@pytest.fixture
def index(lite: MilvusOptions):  # type: ignore[no-untyped-def]
    idx = MilvusVectorIndex(lite, DIM, "flat", owner="store-1")
    yield idx
    idx.close()


def test_flat_search_matches_brute_force(index: MilvusVectorIndex, rng: np.random.Generator) -> None:
    assert index.open_status == "created" and index.ntotal == 0
    base = unit(rng, 300)
    ids = np.arange(1000, 1300, dtype=np.int64)
    index.add(ids, base)
    queries = unit(rng, 20)
    for k in (1, 10):
        scores, found = index.search(queries, k)
        assert found.dtype == np.int64 and scores.dtype == np.float32
        np.testing.assert_array_equal(found, brute_force(ids, base, queries, k))
        expected = np.take_along_axis(queries @ base.T, np.searchsorted(ids, found), axis=1)
        np.testing.assert_allclose(scores, expected, atol=1e-5)
    assert index.ntotal == 300
    np.testing.assert_array_equal(index.ids(), ids)


def test_search_pads_and_batches(
    index: MilvusVectorIndex, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    empty_scores, empty_ids = index.search(unit(rng, 2), 3)
    assert (empty_ids == -1).all() and np.isneginf(empty_scores).all()
    base = unit(rng, 4)
    index.add(np.array([5, 6, 7, 8]), base)
    scores, found = index.search(base, 6)
    assert (found[:, 4:] == -1).all() and np.isneginf(scores[:, 4:]).all()
    assert found[:, 0].tolist() == [5, 6, 7, 8]
    # Many queries are split into several requests; the answer must not change.
    queries = unit(rng, 23)
    whole = index.search(queries, 2)
    monkeypatch.setattr(milvus_index, "_QUERIES_PER_SEARCH", 5)
    split = index.search(queries, 2)
    np.testing.assert_array_equal(whole[1], split[1])


def test_remove_counts_only_present_ids(index: MilvusVectorIndex, rng: np.random.Generator) -> None:
    base = unit(rng, 10)
    index.add(np.arange(10), base)
    assert index.remove(np.array([2, 3, 3, 99])) == 2  # duplicates and unknown ids are not counted
    assert index.remove(np.array([2])) == 0
    assert index.ntotal == 8 and 2 not in index.ids() and 3 not in index.ids()
    _, found = index.search(base[2:4], 10)
    assert not np.isin(found, [2, 3]).any()
    assert index.remove(np.array([], dtype=np.int64)) == 0


def test_rejects_bad_arguments(index: MilvusVectorIndex, rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="shape"):
        index.add(np.arange(2), unit(rng, 2, DIM + 1))
    with pytest.raises(ValueError, match="2 ids for 3"):
        index.add(np.arange(2), unit(rng, 3))
    with pytest.raises(ValueError, match=">= 0"):
        index.add(np.array([-1]), unit(rng, 1))
    with pytest.raises(ValueError, match="k must be positive"):
        index.search(unit(rng, 1), 0)
    index.close()
    with pytest.raises(RuntimeError, match="closed"):
        index.search(unit(rng, 1), 1)


def test_reopen_keeps_vectors_and_refuses_another_store(
    lite: MilvusOptions, rng: np.random.Generator
) -> None:
    base = unit(rng, 12)
    first = MilvusVectorIndex(lite, DIM, "flat", owner="store-1")
    first.add(np.arange(12), base)
    first.save()
    first.close()  # releases the embedded milvus-lite server: the reopen below reads from disk
    again = MilvusVectorIndex(lite, DIM, "flat", owner="store-1")
    try:
        assert again.open_status == "loaded" and again.ntotal == 12
        assert again.search(base[:1], 1)[1][0, 0] == 0
    finally:
        again.close()
    with pytest.raises(ForeignCollectionError, match=r"store id store-1.*--milvus-collection"):
        MilvusVectorIndex(lite, DIM, "flat", owner="store-2")
    # Another collection name in the same database is a separate index.
    other = MilvusVectorIndex(
        MilvusOptions(uri=lite.uri, collection="other_dir"), DIM, "flat", owner="store-2"
    )
    try:
        assert other.open_status == "created" and other.ntotal == 0
    finally:
        other.close()


def test_index_type_or_dimension_change_recreates(lite: MilvusOptions, rng: np.random.Generator) -> None:
    first = MilvusVectorIndex(lite, DIM, "flat", owner="s")
    first.add(np.arange(5), unit(rng, 5))
    first.close()
    hnsw = MilvusVectorIndex(lite, DIM, "hnsw", owner="s")
    try:
        assert hnsw.open_status == "rebuilt" and "index type" in hnsw.open_reason and hnsw.ntotal == 0
    finally:
        hnsw.close()
    wider = MilvusVectorIndex(lite, DIM * 2, "hnsw", owner="s")
    try:
        assert wider.open_status == "rebuilt" and "dimension" in wider.open_reason
    finally:
        wider.close()


def test_hnsw_recall(lite: MilvusOptions, rng: np.random.Generator) -> None:
    centres = unit(rng, 20)
    base = centres[rng.integers(0, 20, 500)] + 0.1 * rng.standard_normal((500, DIM)).astype(np.float32)
    base /= np.linalg.norm(base, axis=1, keepdims=True)
    ids = np.arange(500, dtype=np.int64)
    idx = MilvusVectorIndex(lite, DIM, "hnsw", owner="s")
    try:
        idx.add(ids, base)
        queries = unit(rng, 30)
        _, found = idx.search(queries, 10)
        truth = brute_force(ids, base, queries, 10)
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        assert recall >= 0.9
    finally:
        idx.close()


def test_options_keep_secrets_out_and_check_names() -> None:
    options = MilvusOptions(uri="https://user:s3cret-pw@milvus.example:19530", token="root:s3cret-token")
    assert "s3cret" not in repr(options) and "***" in repr(options)
    assert redact_uri(options.uri) == "https://milvus.example:19530"
    assert redact_uri("./local.db") == "./local.db"
    for bad in ("", "9lives", "has-dash", "spa ce"):
        with pytest.raises(ValueError, match="collection name"):
            MilvusOptions(collection=bad)


# ------------------------------------------------------------------------------- the facade on top


def _article(article_id: str, n: int) -> tuple[ArticleInput, list[Paragraph]]:
    texts = [f"{article_id} paragraph {i}" for i in range(n)]
    paragraphs, pos = [], 0
    for i, text in enumerate(texts):
        paragraphs.append(Paragraph(index=i, start=pos, end=pos + len(text), text=text))
        pos += len(text) + 2
    return ArticleInput(id=article_id, text="\n\n".join(texts)), paragraphs


def _open(data: Path, **kwargs: object) -> Storage:
    return Storage.open(data, model_name=MODEL, dimension=DIM, vector_backend="milvus", **kwargs)  # type: ignore[arg-type]


def test_storage_reconciles_milvus_with_the_store(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    vectors = {}
    with _open(data) as storage:
        assert storage.vector_backend == "milvus" and storage.last_reconcile.index_status == "created"
        for i in range(4):
            art, paras = _article(f"a{i}", 3)
            vectors[art.id] = unit(rng, 3)
            storage.upsert(art, f"h{i}", paras, vectors[art.id])
        storage.delete("a3")
        assert storage.index_ntotal == storage.count_vectors() == 9
        store_id = storage._store.get_meta("store_id")
        a1_ids = [vid for vid, (aid, _) in storage._store.locate(storage.index.ids()).items() if aid == "a1"]
    assert (data / MILVUS_LITE_FILE).exists()

    # Behind the facade's back: an orphan the store never had, and a lost vector of a1 (as a crash
    # between the store commit and the Milvus write would leave them).
    raw = MilvusVectorIndex(MilvusOptions(uri=str(data / MILVUS_LITE_FILE)), DIM, "flat", owner=str(store_id))
    raw.add(np.array([999_999]), vectors["a0"][:1])
    raw.remove(np.array(a1_ids[:1]))
    raw.close()

    with _open(data) as storage:
        report = storage.last_reconcile
        assert report.index_status == "loaded"
        assert (report.orphans_removed, report.missing_added) == (1, 1)
        assert storage.index_ntotal == 9 and 999_999 not in storage.index.ids()
        top = storage.search(vectors["a1"], 1)
        assert [(row[0].article_id, row[0].paragraph_index) for row in top] == [("a1", i) for i in range(3)]
        assert all(h.article_id != "a3" for row in storage.search(vectors["a0"], 10) for h in row)


def test_switching_backends_rebuilds_from_the_store(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    queries = unit(rng, 3)
    with Storage.open(data, model_name=MODEL, dimension=DIM) as storage:  # FAISS first
        for i in range(3):
            art, paras = _article(f"a{i}", 2)
            storage.upsert(art, f"h{i}", paras, unit(rng, 2))
        before = [[(h.article_id, h.paragraph_index) for h in row] for row in storage.search(queries, 4)]
    with _open(data) as storage:
        report = storage.last_reconcile
        assert report.index_status == "rebuilt" and report.missing_added == 6
        after = [[(h.article_id, h.paragraph_index) for h in row] for row in storage.search(queries, 4)]
        assert after == before


def test_another_data_dir_cannot_take_over_a_collection(tmp_path: Path, rng: np.random.Generator) -> None:
    shared = MilvusOptions(uri=str(tmp_path / "shared.db"))
    with _open(tmp_path / "one", milvus=shared) as storage:
        art, paras = _article("a", 2)
        storage.upsert(art, "h", paras, unit(rng, 2))
    with pytest.raises(IncompatibleIndexError, match=r"created by the data dir with store id"):
        _open(tmp_path / "two", milvus=shared)
    with _open(tmp_path / "one", milvus=shared) as storage:  # untouched, and the failed open let go
        assert storage.last_reconcile.index_status == "loaded" and storage.index_ntotal == 2


def test_unknown_backend_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="vector_backend must be one of faiss, milvus"):
        Storage.open(tmp_path / "d", model_name=MODEL, dimension=DIM, vector_backend="qdrant")


def test_outage_fails_requests_cleanly_and_the_index_catches_up(
    tmp_path: Path, rng: np.random.Generator, milvus_server: Any
) -> None:
    server = milvus_server  # a Milvus server reached over http://, as a cluster would be
    vectors = {name: unit(rng, 2) for name in ("a", "b", "c")}
    storage = _open(tmp_path / "data", milvus=MilvusOptions(uri=server.uri, timeout_seconds=5))
    try:
        art, paras = _article("a", 2)
        storage.upsert(art, "ha", paras, vectors["a"])
        server.stop()

        art, paras = _article("b", 2)
        with pytest.raises(
            IndexUnavailableError, match=r"could not (add vectors|remove vectors).*retry later"
        ):
            storage.upsert(art, "hb", paras, vectors["b"])
        assert storage.get("b") is not None  # committed before the index write failed
        art_c, paras_c = _article("c", 2)
        with pytest.raises(IndexUnavailableError):  # the repair fails first: nothing reaches the store
            storage.upsert(art_c, "hc", paras_c, vectors["c"])
        assert storage.get("c") is None
        with pytest.raises(IndexUnavailableError, match=r"search|list vector ids"):
            storage.search(vectors["a"], 1)

        server.start()  # same port, same data; gRPC reconnects after its backoff (about a second)
        deadline = time.monotonic() + 20
        while True:
            try:
                top = storage.search(vectors["b"], 1)  # repairs first: b's vectors come from the store
                break
            except IndexUnavailableError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
        assert [(row[0].article_id, row[0].paragraph_index) for row in top] == [("b", 0), ("b", 1)]
        storage.upsert(art_c, "hc", paras_c, vectors["c"])
        assert storage.index_ntotal == storage.count_vectors() == 6
    finally:
        storage.close()
