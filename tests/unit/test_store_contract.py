"""The article-store contract, run against every store: SQLite (``ArticleStore``, one process) and
PostgreSQL (``PostgresArticleStore``, shared by replicas; a real server started by conftest).

Both must give the same answers to the same calls; the PostgreSQL-only tests at the end cover what only
a shared store has to do: two processes (here two store objects with their own connection pools) writing
the same article at once, and the advisory locks that let one replica at a time reconcile the index.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import numpy as np
import pytest

from rewrite_detector_server.core.types import ArticleInput, Paragraph, Role
from rewrite_detector_server.errors import NotFoundError
from rewrite_detector_server.storage import ArticleStore, text_hash
from rewrite_detector_server.storage.store_base import ArticleStoreBase

DIM = 8
STORES = ["sqlite", "postgres"]

OpenStore = Callable[[], ArticleStoreBase]


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def make_article(
    article_id: str,
    rng: np.random.Generator,
    n_content: int = 3,
    *,
    boilerplate: bool = True,
    salt: str = "",
    title: str = "",
) -> tuple[ArticleInput, list[Paragraph], np.ndarray]:
    """An article with ``n_content`` content paragraphs (then one boilerplate line) and embeddings."""
    texts = [f"{article_id} paragraph {i} {salt}".strip() for i in range(n_content)]
    if boilerplate:
        texts.append("Related article: click here")
    paragraphs, position = [], 0
    for i, text in enumerate(texts):
        role = Role.BOILERPLATE if boilerplate and i == n_content else Role.BODY
        paragraphs.append(Paragraph(index=i, start=position, end=position + len(text), text=text, role=role))
        position += len(text) + 2
    article = ArticleInput(
        id=article_id,
        text="\n\n".join(texts),
        title=title or f"Title {article_id}",
        url=f"https://example.org/{article_id}",
        published_at="2024-05-01",
        metadata={"source": "test", "salt": salt},
    )
    return article, paragraphs, unit(rng, n_content)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


@pytest.fixture(params=STORES)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[OpenStore]:
    """Factory of store objects over ONE backing store (a SQLite file, or a fresh PostgreSQL database):
    a second call is a reopen, or for PostgreSQL a second replica."""
    opened: list[ArticleStoreBase] = []
    if request.param == "sqlite":

        def open_sqlite() -> ArticleStoreBase:
            opened.append(ArticleStore(tmp_path / "store.sqlite3", dimension=DIM))
            return opened[-1]

        yield open_sqlite
    else:
        from rewrite_detector_server.storage.postgres_store import PostgresArticleStore

        url = request.getfixturevalue("postgres_url")

        def open_postgres() -> ArticleStoreBase:
            opened.append(PostgresArticleStore(url, dimension=DIM, pool_size=4))
            return opened[-1]

        yield open_postgres
    for store in opened:
        store.close()


@pytest.fixture
def store(open_store: OpenStore) -> ArticleStoreBase:
    return open_store()


def test_upsert_unchanged_replace_delete(store: ArticleStoreBase, rng: np.random.Generator) -> None:
    art, paras, emb = make_article("x", rng, 3)
    first = store.upsert(art, "h1", paras, emb)
    assert first.created and not first.unchanged and first.removed_ids.size == 0
    assert first.added_ids.dtype == np.int64 and first.added_ids.size == 3
    assert len(set(first.added_ids.tolist())) == 3

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
    assert got.record.metadata == art2.metadata and got.record.indexed_at > 0
    assert store.paragraphs("x") == paras2
    content, vectors = store.content_vectors("x")
    assert content == [p for p in paras2 if p.is_content]
    np.testing.assert_array_equal(vectors, emb2)
    assert vectors.dtype == np.float32

    removed = store.delete("x")
    np.testing.assert_array_equal(removed, replaced.added_ids)
    assert store.get("x") is None and store.paragraphs("x") == [] and store.count_vectors() == 0
    with pytest.raises(NotFoundError, match="'x'"):
        store.delete("x")
    # Deleting the newest article does not give its ids back.
    art3, paras3, emb3 = make_article("y", rng, 1)
    assert store.upsert(art3, "h3", paras3, emb3).added_ids[0] > replaced.added_ids.max()


def test_rejects_bad_upserts_and_writes_nothing(store: ArticleStoreBase, rng: np.random.Generator) -> None:
    art, paras, emb = make_article("x", rng, 3)
    with pytest.raises(ValueError, match="one row per content paragraph"):
        store.upsert(art, "h", paras, emb[:2])
    with pytest.raises(ValueError, match="one row per content paragraph"):
        store.upsert(art, "h", paras, np.ones((3, DIM + 1), dtype=np.float32))
    duplicated = [*paras[:2], paras[1]]
    with pytest.raises(ValueError, match="duplicate paragraph indexes"):
        store.upsert(art, "h", duplicated, emb)
    assert (store.count_articles(), store.count_paragraphs(), store.count_vectors()) == (0, 0, 0)


def test_text_is_kept_exactly(store: ArticleStoreBase, rng: np.random.Generator) -> None:
    """Scraped text carries NUL and other control characters, and any script: all stored byte-exact."""
    odd = "Sirens\x00 sounded \x07at noon.\x1b[1m Ünïcödé — 東京 😀\r\n\tend\x7f"
    art, paras, emb = make_article("odd", rng, 1, boilerplate=False, title="T\x00itle ☃")
    art = ArticleInput(
        id=art.id, text=odd, title=art.title, url="u\x00rl", published_at="", metadata={"k\x00": "v\x01"}
    )
    paras = [Paragraph(index=0, start=0, end=len(odd), text=odd, role=Role.HEADING)]
    store.upsert(art, "h", paras, emb)
    got = store.get("odd")
    assert got is not None and got.article == art
    assert store.paragraphs("odd") == paras
    assert store.list_records(10)[0].title == art.title


def test_lookups_by_vector_id(store: ArticleStoreBase, rng: np.random.Generator) -> None:
    a, pa, ea = make_article("a", rng, 2)
    b, pb, eb = make_article("b", rng, 3)
    ids_a = store.upsert(a, "ha", pa, ea).added_ids
    ids_b = store.upsert(b, "hb", pb, eb).added_ids
    unknown = int(max(ids_a.max(), ids_b.max())) + 1000
    located = store.locate([*ids_b.tolist(), int(ids_a[1]), unknown, -1, int(ids_a[1])])
    assert located == {**{int(v): ("b", i) for i, v in enumerate(ids_b)}, int(ids_a[1]): ("a", 1)}
    assert store.locate([]) == {}

    ids, vectors = store.vectors_by_id(np.array([ids_b[2], unknown, ids_a[0]]))
    np.testing.assert_array_equal(ids, np.sort([ids_a[0], ids_b[2]]))
    expected = {int(ids_a[0]): ea[0], int(ids_b[2]): eb[2]}
    np.testing.assert_array_equal(vectors, np.stack([expected[int(i)] for i in ids]))
    empty_ids, empty_vectors = store.vectors_by_id([])
    assert empty_ids.size == 0 and empty_vectors.shape == (0, DIM)

    everything = np.sort(np.concatenate([ids_a, ids_b]))
    np.testing.assert_array_equal(store.all_vector_ids(), everything)
    batches = list(store.iter_vectors(batch=2))
    assert [len(ids) for ids, _ in batches] == [2, 2, 1]
    np.testing.assert_array_equal(np.concatenate([ids for ids, _ in batches]), everything)
    by_id = {**dict(zip(ids_a.tolist(), ea, strict=True)), **dict(zip(ids_b.tolist(), eb, strict=True))}
    for ids, vectors in batches:
        np.testing.assert_array_equal(vectors, np.stack([by_id[int(i)] for i in ids]))
    with pytest.raises(ValueError, match="batch"):
        next(store.iter_vectors(batch=0))


def test_cached_embeddings_by_text_hash(store: ArticleStoreBase, rng: np.random.Generator) -> None:
    art, paras, emb = make_article("wire", rng, 2)
    copy, copy_paras, _ = make_article("wire", rng, 2)  # the same paragraph texts in another article
    store.upsert(art, "h", paras, emb)
    store.upsert(ArticleInput(id="copy", text=copy.text), "h2", copy_paras, emb[::-1].copy())
    wanted = [text_hash(paras[0].text), text_hash("never seen"), text_hash(paras[2].text)]
    cached = store.cached_embeddings([*wanted, text_hash(paras[1].text), wanted[0]])
    # Boilerplate has no embedding, unknown text misses; either stored copy is a valid answer.
    assert set(cached) == {wanted[0], text_hash(paras[1].text)}
    assert any(np.array_equal(cached[wanted[0]], row) for row in emb)
    assert store.cached_embeddings([]) == {}
    store.delete("wire")
    store.delete("copy")
    assert store.cached_embeddings(wanted) == {}


def test_pages_cover_every_id_once_in_code_point_order(
    store: ArticleStoreBase, rng: np.random.Generator
) -> None:
    # Mixed case, digits, punctuation and non-ASCII: a locale collation would order these differently.
    ids = {"B", "a", "A", "_x", "a-1", "a_1", "Z9", "é", "ä", "東", "z", "a b", *map(str, range(20))}
    for article_id in ids:
        art, paras, emb = make_article(article_id, rng, 1, boilerplate=False)
        store.upsert(art, f"h-{article_id}", paras, emb)
    seen: list[str] = []
    after = None
    while page := store.list_records(4, after):
        assert len(page) <= 4
        seen.extend(r.id for r in page)
        after = page[-1].id
    assert seen == sorted(ids)
    record = store.list_records(1, sorted(ids)[0])[0]
    assert record.id == sorted(ids)[1] and record.paragraph_count == 1 and record.content_hash
    with pytest.raises(ValueError, match="page_size"):
        store.list_records(0)
    assert (store.count_articles(), store.count_paragraphs(), store.count_vectors()) == (len(ids),) * 3


def test_fingerprint_postings_follow_upserts_and_deletes(
    store: ArticleStoreBase, rng: np.random.Generator
) -> None:
    from rewrite_detector_server.core.fingerprints import fingerprints

    shared = "Central bank governor Ana Silva raised interest rates sharply in Lisbon"
    own = "Storm damage closed mountain roads across northern valleys overnight"

    def article(article_id: str, texts: list[str]) -> tuple[ArticleInput, list[Paragraph], np.ndarray]:
        paragraphs, position = [], 0
        for i, text in enumerate(texts):
            paragraphs.append(Paragraph(index=i, start=position, end=position + len(text), text=text))
            position += len(text) + 2
        return ArticleInput(id=article_id, text="\n\n".join(texts)), paragraphs, unit(rng, len(texts))

    a, pa, ea = article("a", [shared, own])
    ids_a = store.upsert(a, "ha", pa, ea).added_ids
    b, pb, eb = article("b", [shared])
    ids_b = store.upsert(b, "hb", pb, eb).added_ids
    shared_prints, own_prints = sorted(fingerprints(shared)), sorted(fingerprints(own))
    assert shared_prints and own_prints and not set(shared_prints) & set(own_prints)

    postings = store.fingerprint_postings([*shared_prints, *own_prints, 12345], 10)
    assert set(postings) == {*shared_prints, *own_prints}  # an unknown fingerprint has no postings
    for fingerprint in shared_prints:
        assert sorted(postings[fingerprint].tolist()) == sorted([int(ids_a[0]), int(ids_b[0])])
        assert postings[fingerprint].dtype == np.int64
    for fingerprint in own_prints:
        assert postings[fingerprint].tolist() == [int(ids_a[1])]
    # Fingerprints held by more paragraphs than the limit are left out, not truncated.
    assert set(store.fingerprint_postings(shared_prints + own_prints, 1)) == set(own_prints)
    assert store.fingerprint_postings([], 10) == {}

    # Replacing and deleting articles takes their postings with them.
    a2, pa2, ea2 = article("a", [own])
    new_a = store.upsert(a2, "ha2", pa2, ea2).added_ids
    postings = store.fingerprint_postings(shared_prints + own_prints, 10)
    assert {f: v.tolist() for f, v in postings.items()} == {
        **{f: [int(ids_b[0])] for f in shared_prints},
        **{f: [int(new_a[0])] for f in own_prints},
    }
    store.delete("b")
    store.delete("a")
    assert store.fingerprint_postings(shared_prints + own_prints, 10) == {}


def test_meta_and_reopen(open_store: OpenStore, rng: np.random.Generator) -> None:
    store = open_store()
    assert store.get_meta("model_name") is None
    store.set_meta("model_name", "m1")
    store.set_meta("model_name", "m2")
    art, paras, emb = make_article("kept", rng, 2)
    ids = store.upsert(art, "h", paras, emb).added_ids
    store.close()
    with pytest.raises(RuntimeError, match="closed"):
        store.get("kept")
    store.close()  # idempotent

    reopened = open_store()
    assert reopened.get_meta("model_name") == "m2"
    got = reopened.get("kept")
    assert got is not None and got.article == art
    np.testing.assert_array_equal(reopened.all_vector_ids(), ids)
    # The id counter survives the reopen too.
    art2, paras2, emb2 = make_article("next", rng, 1)
    assert reopened.upsert(art2, "h2", paras2, emb2).added_ids[0] > ids.max()


def test_same_article_written_concurrently_ends_consistent(
    open_store: OpenStore, rng: np.random.Generator
) -> None:
    """Writers racing on one id (two store objects: for PostgreSQL, two replicas' connection pools)
    leave exactly one version's paragraphs, with unique ids, and never fail."""
    stores = [open_store(), open_store()]
    versions = [make_article("hot", rng, n, salt=f"v{n}") for n in (2, 3, 4, 5)]
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def writer(worker: int) -> None:
        try:
            start.wait()
            for round_ in range(6):
                art, paras, emb = versions[(worker + round_) % len(versions)]
                stores[worker % 2].upsert(art, f"hash-{art.metadata['salt']}", paras, emb)
        except BaseException as err:  # reported below: a thread's exception would otherwise vanish
            errors.append(err)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []

    reader = stores[1]
    got = reader.get("hot")
    assert got is not None
    (winner,) = [v for v in versions if v[0] == got.article]
    assert reader.paragraphs("hot") == winner[1]
    assert got.record.content_hash == f"hash-{winner[0].metadata['salt']}"
    content, vectors = reader.content_vectors("hot")
    np.testing.assert_array_equal(vectors, winner[2])
    assert reader.count_vectors() == len(content) == reader.all_vector_ids().size


# ------------------------------------------------------------------- PostgreSQL only


@pytest.fixture
def postgres_stores(postgres_url: str) -> Iterator[Callable[[], ArticleStoreBase]]:
    from rewrite_detector_server.storage.postgres_store import PostgresArticleStore

    opened: list[ArticleStoreBase] = []

    def open_replica() -> ArticleStoreBase:
        opened.append(PostgresArticleStore(postgres_url, dimension=DIM, pool_size=4))
        return opened[-1]

    yield open_replica
    for store in opened:
        store.close()


class HeldInThread:
    """Enter a context manager (a lock) in a thread and hold it until ``release()``; ``entered(t)``
    tells whether it got in within ``t`` seconds."""

    def __init__(self, lock: Callable[[], AbstractContextManager[object]]) -> None:
        self._entered, self._release = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._hold, args=(lock,), daemon=True)
        self._thread.start()

    def _hold(self, lock: Callable[[], AbstractContextManager[object]]) -> None:
        with lock():
            self._entered.set()
            self._release.wait(30)

    def entered(self, seconds: float) -> bool:
        return self._entered.wait(seconds)

    def release(self) -> None:
        self._release.set()
        self._thread.join(30)


def test_one_replica_at_a_time_reconciles_and_writes_wait_for_it(
    postgres_stores: Callable[[], ArticleStoreBase],
) -> None:
    leader, follower = postgres_stores(), postgres_stores()
    assert leader.shared and follower.shared

    with leader.reconcile_lock():
        reconciling = HeldInThread(follower.reconcile_lock)
        writing = HeldInThread(lambda: follower.write_guard("w"))
        assert not reconciling.entered(0.5), "two replicas reconciled at once"
        assert not writing.entered(0.1), "a write started during a reconciliation"
    assert reconciling.entered(5)
    reconciling.release()
    assert writing.entered(5)
    writing.release()

    # Writers share the reconcile lock with each other, but keep a reconciliation out while they write.
    with leader.write_guard("a"), follower.write_guard("b"):
        reconciling = HeldInThread(follower.reconcile_lock)
        assert not reconciling.entered(0.5)
    assert reconciling.entered(5)
    reconciling.release()


def test_write_guard_serialises_one_article_across_replicas(
    postgres_stores: Callable[[], ArticleStoreBase],
) -> None:
    first, second = postgres_stores(), postgres_stores()
    with first.write_guard("same"):
        other_article = HeldInThread(lambda: second.write_guard("different"))
        same_article = HeldInThread(lambda: second.write_guard("same"))
        assert other_article.entered(5)
        assert not same_article.entered(0.3)
        other_article.release()
    assert same_article.entered(5)
    same_article.release()


def test_a_killed_replicas_reconcile_lock_is_released(
    postgres_stores: Callable[[], ArticleStoreBase], postgres_url: str
) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", KILLED_REPLICA, postgres_url], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        survivor = postgres_stores()
        waiting = HeldInThread(survivor.reconcile_lock)
        assert not waiting.entered(0.3)
        holder.send_signal(signal.SIGKILL)
        assert waiting.entered(10), "the lock of a killed replica was never released"
        waiting.release()
    finally:
        holder.kill()
        holder.wait()


KILLED_REPLICA = f"""
import sys, time
from rewrite_detector_server.storage.postgres_store import PostgresArticleStore
store = PostgresArticleStore(sys.argv[1], dimension={DIM}, pool_size=3)
with store.reconcile_lock():
    print("locked", flush=True)
    time.sleep(60)
"""


def test_unreachable_database_is_a_clear_unavailable_error(postgres_server: object) -> None:
    from rewrite_detector_server.errors import StoreUnavailableError
    from rewrite_detector_server.storage.postgres_store import PostgresArticleStore

    with pytest.raises(StoreUnavailableError, match=r"REWRITE_DETECTOR_STORE_URL") as raised:
        PostgresArticleStore("postgresql://nobody:secret@127.0.0.1:1/nowhere", dimension=DIM)
    assert "secret" not in str(raised.value)
    with pytest.raises(ValueError, match="not a PostgreSQL connection string"):
        PostgresArticleStore("definitely not = a = conninfo", dimension=DIM)


def test_a_store_of_a_newer_schema_is_refused(
    postgres_stores: Callable[[], ArticleStoreBase], postgres_url: str
) -> None:
    import psycopg

    postgres_stores()  # creates the schema
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("UPDATE rewrite_detector.meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(RuntimeError, match="schema 99, newer than this build"):
        postgres_stores()
