"""Storage: article store, FAISS index and their reconciliation, on seeded synthetic unit vectors.

Search results are checked against exact brute-force numpy ground truth; durability is checked by
damaging the data directory (deleting/truncating the index, orphan ids, a killed process) and reopening.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rewrite_detector_server.core.types import ArticleInput, Paragraph, Role
from rewrite_detector_server.errors import IncompatibleIndexError, NotFoundError
from rewrite_detector_server.storage import (
    ArticleStore,
    CorruptIndexError,
    DataDirInUseError,
    FaissVectorIndex,
    IndexOptions,
    Storage,
    text_hash,
)
from rewrite_detector_server.storage.facade import INDEX_FILE
from rewrite_detector_server.storage.manifest import MANIFEST_NAME

DIM = 32
MODEL = "test-model"


def unit(rng: np.random.Generator, n: int, d: int = DIM) -> np.ndarray:
    x = rng.standard_normal((n, d)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def clustered(rng: np.random.Generator, n: int, d: int, centers: int = 50) -> np.ndarray:
    """Unit vectors around a few centres: closer to real sentence embeddings than uniform noise."""
    c = unit(rng, centers, d)
    x = c[rng.integers(0, centers, n)] + 0.1 * rng.standard_normal((n, d)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(base_ids: np.ndarray, base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    order = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :k]
    return base_ids[order]


def make_article(
    article_id: str, rng: np.random.Generator, n_content: int = 3, *, boilerplate: bool = True, salt: str = ""
) -> tuple[ArticleInput, list[Paragraph], np.ndarray]:
    """An article with ``n_content`` content paragraphs (and one boilerplate line), plus embeddings."""
    texts = [f"{article_id} paragraph {i} {salt}".strip() for i in range(n_content)]
    paragraphs: list[Paragraph] = []
    pos = 0
    for i, t in enumerate(texts):
        paragraphs.append(Paragraph(index=i, start=pos, end=pos + len(t), text=t, role=Role.BODY))
        pos += len(t) + 2
    if boilerplate:
        t = "Related article: click here"
        paragraphs.append(
            Paragraph(index=n_content, start=pos, end=pos + len(t), text=t, role=Role.BOILERPLATE)
        )
        texts.append(t)
    article = ArticleInput(
        id=article_id, text="\n\n".join(texts), title=f"Title {article_id}", metadata={"source": "test"}
    )
    return article, paragraphs, unit(rng, n_content)


def content_hash(article: ArticleInput) -> str:
    return text_hash(article.text)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


@pytest.fixture
def storage(tmp_path: Path) -> Iterator[Storage]:
    s = Storage.open(tmp_path / "data", model_name=MODEL, dimension=DIM)
    yield s
    s.close()


def fill(storage: Storage, rng: np.random.Generator, n_articles: int, per: int = 4) -> dict[str, np.ndarray]:
    """Index ``n_articles`` articles; returns article id -> its content embeddings."""
    out = {}
    for i in range(n_articles):
        art, paras, emb = make_article(f"a{i:04d}", rng, per)
        storage.upsert(art, content_hash(art), paras, emb)
        out[art.id] = emb
    return out


def search_signature(storage: Storage, queries: np.ndarray, k: int = 5) -> list[list[tuple[str, int]]]:
    return [[(h.article_id, h.paragraph_index) for h in row] for row in storage.search(queries, k)]


# --------------------------------------------------------------------------- vector index


@pytest.mark.parametrize("k", [1, 10])
def test_flat_search_matches_brute_force(rng: np.random.Generator, k: int) -> None:
    base, queries = unit(rng, 500), unit(rng, 40)
    ids = rng.permutation(10_000)[:500].astype(np.int64)
    index = FaissVectorIndex(DIM, "flat")
    index.add(ids, base)
    scores, found = index.search(queries, k)
    assert found.dtype == np.int64 and scores.dtype == np.float32 and found.shape == (40, k)
    np.testing.assert_array_equal(found, brute_force(ids, base, queries, k))
    np.testing.assert_allclose(scores, np.sort(queries @ base.T, axis=1)[:, ::-1][:, :k], atol=1e-5)


def test_search_pads_with_minus_one_when_fewer_than_k(rng: np.random.Generator) -> None:
    index = FaissVectorIndex(DIM, "flat")
    scores, found = index.search(unit(rng, 2), 3)
    assert (found == -1).all() and np.isneginf(scores).all()
    index.add(np.array([7, 9], dtype=np.int64), unit(rng, 2))
    scores, found = index.search(unit(rng, 2), 5)
    assert sorted(found[0, :2].tolist()) == [7, 9]
    assert (found[:, 2:] == -1).all() and np.isneginf(scores[:, 2:]).all()


def test_flat_remove_excludes_ids(rng: np.random.Generator) -> None:
    base = unit(rng, 200)
    ids = np.arange(200, dtype=np.int64)
    index = FaissVectorIndex(DIM, "flat")
    index.add(ids, base)
    gone = ids[::3]
    assert index.remove(np.concatenate([gone, [10_000]])) == gone.size  # unknown id ignored
    keep = np.setdiff1d(ids, gone)
    np.testing.assert_array_equal(index.ids(), keep)
    queries = unit(rng, 20)
    _, found = index.search(queries, 5)
    np.testing.assert_array_equal(found, brute_force(keep, base[keep], queries, 5))


def test_hnsw_recall_and_tombstones(rng: np.random.Generator) -> None:
    d, n = 64, 3000
    base = clustered(rng, n, d)
    queries = clustered(rng, 200, d)
    ids = np.arange(n, dtype=np.int64) + 100
    index = FaissVectorIndex(d, "hnsw")
    index.add(ids, base)
    _, found = index.search(queries, 10)
    truth = brute_force(ids, base, queries, 10)
    recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.95

    # HNSW cannot remove nodes: removal tombstones them, and they never come back from search.
    gone = truth[:, 0]
    removed = index.remove(np.unique(gone))
    assert removed == np.unique(gone).size and index.tombstones == removed
    assert index.ntotal == n - removed
    _, found = index.search(queries, 10)
    assert not np.isin(found, gone).any()
    assert (found >= 0).all()  # still k live results per query
    assert not np.isin(index.ids(), gone).any()
    with pytest.raises(ValueError, match="re-add"):
        index.add(gone[:1], base[:1])


def test_hnsw_compacts_when_tombstones_pile_up(rng: np.random.Generator) -> None:
    base = unit(rng, 400)
    ids = np.arange(400, dtype=np.int64)
    index = FaissVectorIndex(DIM, "hnsw", options=IndexOptions(hnsw_compact_ratio=0.25))
    index.add(ids, base)
    index.remove(ids[:50])
    assert index.tombstones == 50
    index.remove(ids[50:120])  # 120 > 25% of 400: rebuilt without them
    assert index.tombstones == 0 and index.ntotal == 280
    np.testing.assert_array_equal(index.ids(), ids[120:])
    queries = unit(rng, 10)
    _, found = index.search(queries, 5)
    truth = brute_force(ids[120:], base[120:], queries, 5)
    assert np.mean([len(set(f) & set(t)) / 5 for f, t in zip(found, truth, strict=True)]) >= 0.9


def test_ivf_sq8_trains_once_enough_vectors(tmp_path: Path, rng: np.random.Generator) -> None:
    d = 64
    base = clustered(rng, 2500, d)
    ids = np.arange(2500, dtype=np.int64) * 2
    options = IndexOptions(ivf_train_size=2000, ivf_nprobe=8)
    index = FaissVectorIndex(d, "ivf-sq8", path=tmp_path / "ivf.faiss", options=options)
    index.add(ids[:1500], base[:1500])
    assert index.kind == "flat"  # exact until trained
    index.add(ids[1500:], base[1500:])
    assert index.kind == "ivf" and index.ntotal == 2500
    np.testing.assert_array_equal(index.ids(), ids)

    # A stored vector finds itself first (SQ8 scores are approximate, ~1).
    scores, found = index.search(base[:50], 5)
    np.testing.assert_array_equal(found[:, 0], ids[:50])
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=0.02)

    assert index.remove(ids[:10]) == 10
    _, found = index.search(base[:10], 5)
    assert not np.isin(found, ids[:10]).any()

    index.save()
    loaded = FaissVectorIndex.load(tmp_path / "ivf.faiss", d, "ivf-sq8", options=options)
    assert loaded.kind == "ivf"
    np.testing.assert_array_equal(loaded.ids(), ids[10:])
    np.testing.assert_array_equal(loaded.search(base[20:30], 5)[1], index.search(base[20:30], 5)[1])


def test_ivf_regrows_its_lists_and_keeps_the_writes_made_meanwhile(
    tmp_path: Path, rng: np.random.Generator, held_regrow: tuple[threading.Event, threading.Event]
) -> None:
    started, release = held_regrow
    d = 32
    base = clustered(rng, 900, d)
    ids = np.arange(900, dtype=np.int64) + 1000
    path = tmp_path / "ivf.faiss"
    options = IndexOptions(ivf_train_size=400, ivf_nprobe=4, ivf_regrow=1.5)
    index = FaissVectorIndex(d, "ivf-sq8", path=path, options=options)
    index.add(ids[:400], base[:400])
    assert index.kind == "ivf" and index.nlist == 10  # 400 // 39: lists sized for 400 vectors
    index.add(ids[400:700], base[400:700])  # 700 vectors want 17 lists: >= 1.5 x 10, a regrow starts
    assert started.wait(10)
    # Writes while the new lists are trained: adds of new ids, removals of old and of new ones.
    index.add(ids[700:900], base[700:900])
    removed = np.concatenate([ids[:15], ids[450:460], ids[880:890]])
    assert index.remove(removed) == 35
    assert index.nlist == 10  # still the old index, serving throughout
    release.set()
    assert index.wait_for_regrow(60)

    assert index.nlist == 17
    live = ids[~np.isin(ids, removed)]
    np.testing.assert_array_equal(index.ids(), live)
    _, found = index.search(base, 3)
    keep = ~np.isin(ids, removed)
    np.testing.assert_array_equal(found[keep, 0], ids[keep])  # every live vector finds itself
    assert not np.isin(found, removed).any()
    # The regrown index was saved: a restart loads the new lists, not the old ones.
    loaded = FaissVectorIndex.load(path, d, "ivf-sq8", options=options)
    assert loaded.nlist == 17
    np.testing.assert_array_equal(loaded.ids(), live)


def test_ivf_regrow_off_or_fixed_nlist_keeps_the_lists(tmp_path: Path, rng: np.random.Generator) -> None:
    base = clustered(rng, 800, 32)
    ids = np.arange(800, dtype=np.int64)
    for options in (
        IndexOptions(ivf_train_size=400),  # off by default
        IndexOptions(ivf_train_size=400, ivf_nlist=8, ivf_regrow=1.5),
    ):
        index = FaissVectorIndex(32, "ivf-sq8", options=options)
        index.add(ids[:400], base[:400])
        before = index.nlist
        index.add(ids[400:], base[400:])
        assert index.wait_for_regrow(10) and index.nlist == before


def test_ivf_regrow_stops_when_the_index_is_closed(
    rng: np.random.Generator, held_regrow: tuple[threading.Event, threading.Event]
) -> None:
    started, release = held_regrow
    base = clustered(rng, 700, 32)
    index = FaissVectorIndex(32, "ivf-sq8", options=IndexOptions(ivf_train_size=400, ivf_regrow=1.5))
    index.add(np.arange(400, dtype=np.int64), base[:400])
    index.add(np.arange(400, 700, dtype=np.int64), base[400:])
    assert started.wait(10)
    index.close()
    release.set()
    assert index.wait_for_regrow(30)
    with pytest.raises(RuntimeError, match="closed"):
        index.search(base[:1], 1)


def test_rebuild_from_the_store_regrows_once_at_the_end(
    tmp_path: Path, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rewrite_detector_server.storage import facade

    data = tmp_path / "data"
    options = IndexOptions(ivf_train_size=400, ivf_regrow=1.5)
    with Storage.open(
        data, model_name=MODEL, dimension=DIM, index_type="ivf-sq8", index_options=options
    ) as s:
        fill(s, rng, 300)  # 1200 vectors
    FaissVectorIndex.discard(data / INDEX_FILE)
    monkeypatch.setattr(facade, "_REBUILD_BATCH", 100)  # the rebuild crosses 400, 900, ... in steps
    started: list[int] = []
    real_start = threading.Thread.start

    def counting_start(thread: threading.Thread) -> None:
        if thread.name == "ivf-regrow":
            started.append(1)
        real_start(thread)

    monkeypatch.setattr(threading.Thread, "start", counting_start)
    with Storage.open(
        data, model_name=MODEL, dimension=DIM, index_type="ivf-sq8", index_options=options
    ) as s:
        index = s.index
        assert isinstance(index, FaissVectorIndex)
        assert s.last_reconcile.index_status == "rebuilt"
        assert index.wait_for_regrow(60)
        assert len(started) == 1  # not one per step of the load
        assert index.nlist == 30 and index.ntotal == 1200  # 1200 // 39 lists, for all of the vectors


def test_index_options_refuse_a_regrow_factor_that_would_loop() -> None:
    with pytest.raises(ValueError, match="ivf_regrow"):
        IndexOptions(ivf_regrow=1.0)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_index_save_load_round_trip(tmp_path: Path, rng: np.random.Generator, index_type: str) -> None:
    base = unit(rng, 300)
    ids = np.arange(300, dtype=np.int64) + 5
    path = tmp_path / "index.faiss"
    index = FaissVectorIndex(DIM, index_type, path=path)
    index.add(ids, base)
    index.remove(ids[:7])  # HNSW: tombstones must survive the round trip
    index.save()
    assert not path.with_name(path.name + ".tmp").exists()
    queries = unit(rng, 20)
    loaded = FaissVectorIndex.load(path, DIM, index_type)
    assert loaded.ntotal == index.ntotal == 293
    np.testing.assert_array_equal(loaded.ids(), index.ids())
    s1, f1 = index.search(queries, 8)
    s2, f2 = loaded.search(queries, 8)
    np.testing.assert_array_equal(f1, f2)
    np.testing.assert_allclose(s1, s2)


def test_index_load_detects_torn_file(tmp_path: Path, rng: np.random.Generator) -> None:
    path = tmp_path / "index.faiss"
    index = FaissVectorIndex(DIM, "flat", path=path)
    index.add(np.arange(50, dtype=np.int64), unit(rng, 50))
    index.save()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptIndexError, match="torn"):
        FaissVectorIndex.load(path, DIM, "flat")
    # Same size, flipped bytes: only the checksum can tell.
    path.write_bytes(data[:100] + bytes(b ^ 0xFF for b in data[100:200]) + data[200:])
    with pytest.raises(CorruptIndexError):
        FaissVectorIndex.load(path, DIM, "flat")
    with pytest.raises(FileNotFoundError):
        FaissVectorIndex.load(tmp_path / "absent.faiss", DIM, "flat")


# ---------------------------------------------------------------------------- article store


def test_store_upsert_unchanged_replace_delete(tmp_path: Path, rng: np.random.Generator) -> None:
    store = ArticleStore(tmp_path / "s.sqlite3", dimension=DIM)
    art, paras, emb = make_article("x", rng, 3)
    first = store.upsert(art, "h1", paras, emb)
    assert first.created and not first.unchanged and first.removed_ids.size == 0
    assert first.added_ids.dtype == np.int64 and first.added_ids.size == 3

    again = store.upsert(art, "h1", paras, emb)
    assert not again.created and again.unchanged and again.added_ids.size == 0 and again.removed_ids.size == 0

    art2, paras2, emb2 = make_article("x", rng, 2, salt="v2")
    replaced = store.upsert(art2, "h2", paras2, emb2)
    assert not replaced.created and not replaced.unchanged
    np.testing.assert_array_equal(replaced.removed_ids, first.added_ids)
    assert replaced.added_ids.min() > first.added_ids.max()  # fresh ids, never reused

    got = store.get("x")
    assert got is not None and got.article == art2 and got.record.content_hash == "h2"
    assert got.record.paragraph_count == 3 and got.record.char_count == len(art2.text)
    assert store.paragraphs("x") == paras2
    content, vectors = store.content_vectors("x")
    assert content == [p for p in paras2 if p.is_content]
    np.testing.assert_array_equal(vectors, emb2)
    assert store.locate([*replaced.added_ids.tolist(), 10**9]) == {
        int(v): ("x", i) for i, v in enumerate(replaced.added_ids)
    }

    removed = store.delete("x")
    np.testing.assert_array_equal(removed, replaced.added_ids)
    assert store.get("x") is None and store.count_vectors() == 0
    with pytest.raises(NotFoundError, match="'x'"):
        store.delete("x")
    # Deleting the newest article does not give its ids back.
    art3, paras3, emb3 = make_article("y", rng, 1)
    assert store.upsert(art3, "h3", paras3, emb3).added_ids[0] > replaced.added_ids.max()
    store.close()


def test_store_rejects_misaligned_embeddings(tmp_path: Path, rng: np.random.Generator) -> None:
    store = ArticleStore(tmp_path / "s.sqlite3", dimension=DIM)
    art, paras, emb = make_article("x", rng, 3)
    with pytest.raises(ValueError, match="one row per content paragraph"):
        store.upsert(art, "h", paras, emb[:2])
    assert store.count_articles() == 0
    store.close()


def test_cached_embeddings_by_text_hash(storage: Storage, rng: np.random.Generator) -> None:
    art, paras, emb = make_article("wire", rng, 2)
    storage.upsert(art, content_hash(art), paras, emb)
    wanted = [
        text_hash(paras[0].text),
        text_hash(paras[1].text),
        text_hash("never seen"),
        text_hash(paras[2].text),
    ]
    cached = storage.cached_embeddings(wanted)
    assert set(cached) == {wanted[0], wanted[1]}  # boilerplate has no embedding, unknown text misses
    np.testing.assert_array_equal(cached[wanted[0]], emb[0])
    np.testing.assert_array_equal(cached[wanted[1]], emb[1])
    # The hash ignores whitespace layout and Unicode composition, not content.
    assert text_hash("Caf\u00e9  au\nlait") == text_hash("Cafe\u0301 au lait")
    assert text_hash("US") != text_hash("us")


def test_pagination_covers_every_id_once(storage: Storage, rng: np.random.Generator) -> None:
    ids = {f"id-{i:03d}-{rng.integers(1000)}" for i in range(57)}
    for article_id in ids:
        art, paras, emb = make_article(article_id, rng, 1, boilerplate=False)
        storage.upsert(art, content_hash(art), paras, emb)
    seen: list[str] = []
    after = None
    while page := storage.list_records(10, after):
        assert len(page) <= 10
        seen.extend(r.id for r in page)
        after = page[-1].id
    assert seen == sorted(ids)
    assert (
        storage.count_articles() == 57 and storage.count_vectors() == 57 and storage.count_paragraphs() == 57
    )


# --------------------------------------------------------------------------------- facade


def test_facade_search_upsert_replace_delete(storage: Storage, rng: np.random.Generator) -> None:
    corpus = fill(storage, rng, 30)
    assert storage.index_ntotal == storage.count_vectors() == 120
    # Every stored vector finds itself first.
    for article_id in ("a0003", "a0017"):
        hits = storage.search(corpus[article_id], 3)
        assert [(h.article_id, h.paragraph_index) for h in (row[0] for row in hits)] == [
            (article_id, i) for i in range(4)
        ]
        assert all(abs(row[0].score - 1.0) < 1e-5 for row in hits)

    art, paras, emb = make_article("a0003", rng, 4)
    unchanged = storage.upsert(art, content_hash(art), paras, emb)  # same text -> same hash
    assert unchanged.unchanged and storage.index_ntotal == 120

    art2, paras2, emb2 = make_article("a0003", rng, 2, salt="rewritten")
    replaced = storage.upsert(art2, content_hash(art2), paras2, emb2)
    assert not replaced.created and replaced.removed_ids.size == 4 and replaced.added_ids.size == 2
    assert storage.index_ntotal == 118
    _, found = storage.index.search(corpus["a0003"], 10)
    assert not np.isin(found, replaced.removed_ids).any()  # old vectors are gone from search
    assert storage.search(emb2, 1)[0][0][1:] == ("a0003", 0)

    removed = storage.delete("a0017")
    assert removed.size == 4 and storage.index_ntotal == 114 and storage.get("a0017") is None
    assert all(h.article_id != "a0017" for row in storage.search(corpus["a0017"], 10) for h in row)
    with pytest.raises(NotFoundError, match="no-such-article"):
        storage.delete("no-such-article")


def test_facade_rejects_unnormalised_embeddings(storage: Storage, rng: np.random.Generator) -> None:
    art, paras, emb = make_article("x", rng, 2)
    with pytest.raises(ValueError, match="normalised"):
        storage.upsert(art, content_hash(art), paras, emb * 2)
    assert storage.count_articles() == 0


def test_persistence_across_close_and_reopen(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    queries = unit(rng, 15)
    with Storage.open(data, model_name=MODEL, dimension=DIM, snapshot_every=10_000) as s:
        fill(s, rng, 20)
        s.delete("a0005")
        before = search_signature(s, queries)
        records = s.list_records(100, None)
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        report = s.last_reconcile
        assert report.index_status == "loaded" and not report.changed
        assert report.snapshot_vectors == report.store_vectors == 76
        assert search_signature(s, queries) == before
        assert s.list_records(100, None) == records
        got = s.get("a0001")
        assert got is not None and got.article.metadata == {"source": "test"}


def test_snapshot_every_saves_index(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    with Storage.open(data, model_name=MODEL, dimension=DIM, snapshot_every=8) as s:
        assert FaissVectorIndex.load(data / INDEX_FILE, DIM, "flat").ntotal == 0
        fill(s, rng, 2)  # 8 vectors -> snapshot
        assert FaissVectorIndex.load(data / INDEX_FILE, DIM, "flat").ntotal == 8


def test_missing_index_file_is_rebuilt_from_store(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    queries = unit(rng, 10)
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        fill(s, rng, 25)
        before = search_signature(s, queries)
    (data / INDEX_FILE).unlink()
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        report = s.last_reconcile
        assert report.index_status == "rebuilt" and report.missing_added == 100
        assert search_signature(s, queries) == before
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:  # the rebuilt index was saved
        assert s.last_reconcile.index_status == "loaded" and not s.last_reconcile.changed


@pytest.mark.parametrize("damage", ["truncate", "garbage", "sidecar"])
def test_corrupt_index_file_is_detected_and_rebuilt(
    tmp_path: Path, rng: np.random.Generator, damage: str
) -> None:
    data = tmp_path / "data"
    queries = unit(rng, 10)
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        fill(s, rng, 25)
        before = search_signature(s, queries)
    path = data / INDEX_FILE
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:-1000])
    elif damage == "garbage":
        path.write_bytes(b"\x00garbage" * 100)
    else:
        path.with_name(path.name + ".meta.json").write_text("{", encoding="utf-8")
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        report = s.last_reconcile
        assert report.index_status == "rebuilt" and report.reason
        assert report.missing_added == 100 and s.index_ntotal == 100
        assert search_signature(s, queries) == before


def test_orphan_ids_in_index_are_removed(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        corpus = fill(s, rng, 5)
    # An id the store does not know (e.g. deleted after the last snapshot), right on top of a query.
    index = FaissVectorIndex.load(data / INDEX_FILE, DIM, "flat")
    index.add(np.array([999_999], dtype=np.int64), corpus["a0002"][:1])
    index.save()
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        report = s.last_reconcile
        assert report.index_status == "loaded" and report.orphans_removed == 1 and report.missing_added == 0
        assert 999_999 not in s.index.ids()
        top = s.search(corpus["a0002"][:1], 2)[0]
        assert (top[0].article_id, top[0].paragraph_index) == ("a0002", 0)
        assert len(top) == 2


_CRASH_SCRIPT = """
import os, signal, sys
import numpy as np
from pathlib import Path
from rewrite_detector_server.core.types import ArticleInput, Paragraph
from rewrite_detector_server.storage import Storage

data, dim = Path(sys.argv[1]), int(sys.argv[2])
vectors = np.load(sys.argv[3])
s = Storage.open(data, model_name="test-model", dimension=dim, snapshot_every=10_000)
s.delete("a0001")
for i, v in enumerate(vectors):
    art = ArticleInput(id=f"late{i}", text=f"late article {i}")
    s.upsert(art, f"h{i}", [Paragraph(index=0, start=0, end=len(art.text), text=art.text)], v[None, :])
# Acknowledged writes, no close(), no snapshot: die like kill -9.
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_store_ahead_of_snapshot_after_kill(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        corpus = fill(s, rng, 5)
    late = unit(rng, 6)
    np.save(tmp_path / "late.npy", late)
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(_CRASH_SCRIPT), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), str(data), str(DIM), str(tmp_path / "late.npy")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -9, proc.stderr

    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        report = s.last_reconcile
        assert report.index_status == "loaded"
        assert report.missing_added == 6 and report.orphans_removed == 4  # late adds; a0001's vectors
        assert s.index_ntotal == s.count_vectors() == 16 + 6
        for i in range(6):
            assert s.search(late[i : i + 1], 1)[0][0][1:] == (f"late{i}", 0)
        assert all(h.article_id != "a0001" for row in s.search(corpus["a0001"], 5) for h in row)


def test_manifest_mismatch_raises(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        fill(s, rng, 1)
    manifest = json.loads((data / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["model_name"] == MODEL and manifest["dimension"] == DIM and manifest["metric"] == "ip"
    with pytest.raises(IncompatibleIndexError, match=r"test-model.*--data-dir"):
        Storage.open(data, model_name="other-model", dimension=DIM)
    with pytest.raises(IncompatibleIndexError, match="16-d"):
        Storage.open(data, model_name=MODEL, dimension=16)
    # Even without the manifest, the store remembers its model.
    (data / MANIFEST_NAME).unlink()
    with pytest.raises(IncompatibleIndexError, match="test-model"):
        Storage.open(data, model_name="other-model", dimension=DIM)
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:  # the failed opens released the lock
        assert s.count_articles() == 1
    assert (data / MANIFEST_NAME).exists()


def test_index_type_change_rebuilds(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    queries = unit(rng, 5)
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        fill(s, rng, 10)
        before = search_signature(s, queries, 3)
    with Storage.open(data, model_name=MODEL, dimension=DIM, index_type="hnsw") as s:
        assert s.last_reconcile.index_status == "rebuilt" and s.index.kind == "hnsw"
        assert search_signature(s, queries, 3) == before  # 40 vectors: HNSW is exact here


def test_index_type_defaults_to_the_data_dirs(tmp_path: Path, rng: np.random.Generator) -> None:
    data = tmp_path / "data"
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        assert s.index_type == "flat"  # a new data dir without a configured type
    with Storage.open(data, model_name=MODEL, dimension=DIM, index_type="hnsw") as s:
        fill(s, rng, 10)
    # Reopened without a type (a restart that forgot --index-type): the snapshot loads as it is.
    with Storage.open(data, model_name=MODEL, dimension=DIM) as s:
        assert s.last_reconcile.index_status == "loaded" and s.index.kind == "hnsw"
        assert json.loads((data / MANIFEST_NAME).read_text(encoding="utf-8"))["index_type"] == "hnsw"
    with pytest.raises(ValueError, match="index_type must be one of"):
        Storage.open(data, model_name=MODEL, dimension=DIM, index_type="ivf")


def test_data_dir_is_locked_while_open(storage: Storage) -> None:
    with pytest.raises(DataDirInUseError, match="in use"):
        Storage.open(storage.data_dir, model_name=MODEL, dimension=DIM)


@pytest.mark.parametrize("index_type", ["flat", "hnsw"])
def test_concurrent_searches_during_writes(tmp_path: Path, rng: np.random.Generator, index_type: str) -> None:
    s = Storage.open(
        tmp_path / "data", model_name=MODEL, dimension=DIM, index_type=index_type, snapshot_every=50
    )
    fill(s, rng, 20)
    queries = unit(rng, 8)
    errors: list[BaseException] = []
    stop = threading.Event()

    def reader() -> None:
        try:
            while not stop.is_set():
                for row in s.search(queries, 5):
                    assert len(row) <= 5
        except BaseException as err:  # surfaced by the main thread
            errors.append(err)

    def writer(w: int) -> None:
        local = np.random.default_rng(w)
        try:
            for i in range(40):
                art, paras, emb = make_article(f"w{w}-{i % 10}", local, 3, salt=str(i))
                s.upsert(art, content_hash(art), paras, emb)
                if i % 7 == 3:
                    s.delete(art.id)
        except BaseException as err:
            errors.append(err)

    readers = [threading.Thread(target=reader) for _ in range(4)]
    writers = [threading.Thread(target=writer, args=(w,)) for w in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    assert not errors, errors
    assert s.index_ntotal == s.count_vectors()
    s.close()
    # Index and store agree exactly: reopening has nothing to reconcile.
    with Storage.open(tmp_path / "data", model_name=MODEL, dimension=DIM, index_type=index_type) as again:
        assert again.last_reconcile.index_status == "loaded" and not again.last_reconcile.changed
