"""SQLite article store: the durable source of truth for articles, paragraphs and their embeddings.

The FAISS index is a derived, rebuildable cache of what this store holds: every content paragraph's
embedding is kept here (float32 BLOB) next to the vector id it has in the index, so a lost or torn index
is rebuilt from the store without re-running the model.

Durability: WAL journal with ``synchronous=FULL`` — a transaction is fsynced to the WAL before COMMIT
returns, so an acknowledged write survives ``kill -9`` and power loss (``NORMAL`` would only survive a
process crash, not an OS crash).

Threading: one connection (``check_same_thread=False``) guarded by one lock. The gRPC server calls from
many threads, but every statement here is an indexed lookup or a single short transaction (sub-ms to a
few ms), while the expensive work (embedding, FAISS search) happens outside the store. One connection
keeps transactions trivially serialised (SQLite allows a single writer anyway), avoids "database is
locked" retries between our own connections, and lets ``close()`` actually close everything; per-thread
connections would only buy parallel reads of work that is not the bottleneck.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import numpy as np

from ..core.types import ArticleInput, ArticleRecord, Paragraph, Role
from ..errors import NotFoundError
from .store_base import (
    EMPTY_IDS,
    ArticleStoreBase,
    StoredArticle,
    UpsertOutcome,
    fingerprint_rows,
    record_from_row,
    stored_article_from_row,
    text_hash,
)

__all__ = ["ArticleStore", "StoredArticle", "UpsertOutcome", "text_hash"]

# 2: the lexical fingerprint table (core/fingerprints.py); a version-1 store is migrated on open.
SCHEMA_VERSION = 2

# SQLite's default SQLITE_MAX_VARIABLE_NUMBER is 32766 on modern builds but 999 on old ones; stay under.
_IN_CHUNK = 500
# Vector ids listed per query by all_vector_ids (bounds the joined string to ~10 MB).
_ID_PAGE = 1_000_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id              TEXT PRIMARY KEY,
    title           TEXT NOT NULL,
    url             TEXT NOT NULL,
    published_at    TEXT NOT NULL,
    text            TEXT NOT NULL,
    metadata        TEXT NOT NULL,          -- JSON object of str -> str
    content_hash    TEXT NOT NULL,
    char_count      INTEGER NOT NULL,
    paragraph_count INTEGER NOT NULL,
    indexed_at      REAL NOT NULL           -- unix seconds
);
CREATE TABLE IF NOT EXISTS paragraphs (
    article_id  TEXT NOT NULL REFERENCES articles(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    char_start  INTEGER NOT NULL,           -- span in the ORIGINAL article text, half-open
    char_end    INTEGER NOT NULL,
    text        TEXT NOT NULL,              -- normalised paragraph text (what was embedded)
    role        TEXT NOT NULL,
    text_hash   TEXT NOT NULL,
    vector_id   INTEGER UNIQUE,             -- NULL for boilerplate; never reused
    embedding   BLOB,                       -- little-endian float32[dimension]; NULL for boilerplate
    -- The primary key's leading column doubles as the index on paragraphs(article_id).
    PRIMARY KEY (article_id, idx),
    CHECK ((vector_id IS NULL) = (embedding IS NULL))
);
CREATE INDEX IF NOT EXISTS paragraphs_text_hash ON paragraphs(text_hash);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
-- Vector ids come from this counter rather than from MAX(vector_id)+1 so that deleting the newest
-- article never lets its ids be handed out again: a stale index snapshot may still hold them, and
-- reconcile must be able to tell "orphan" from "new vector with the same id".
CREATE TABLE IF NOT EXISTS counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT OR IGNORE INTO counters(name, value) VALUES ('next_vector_id', 1);
-- Lexical candidate index: which content paragraphs (by vector id) hold which fingerprint. Keyed by
-- (fingerprint, vector_id) so that a look-up is a range scan and a paragraph's rows are deleted by exact
-- key (recomputed from its stored text) without a second index.
CREATE TABLE IF NOT EXISTS fingerprints (
    fingerprint INTEGER NOT NULL,
    vector_id   INTEGER NOT NULL,
    PRIMARY KEY (fingerprint, vector_id)
) WITHOUT ROWID;
"""


class ArticleStore(ArticleStoreBase):
    """Articles, paragraphs, embeddings and the paragraph <-> vector-id map in one SQLite file."""

    def __init__(self, path: Path, *, dimension: int) -> None:
        super().__init__(dimension=dimension)
        self._path = Path(path)
        self._lock = threading.Lock()
        self._closed = False
        # isolation_level=None: we issue BEGIN/COMMIT ourselves so each upsert is exactly one transaction.
        self._conn = sqlite3.connect(str(self._path), check_same_thread=False, isolation_level=None)
        try:
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute("PRAGMA synchronous=FULL")
            self._conn.execute("PRAGMA foreign_keys=ON")
            # Another process (e.g. a CLI reading stats) may hold a brief lock; wait rather than fail.
            self._conn.execute("PRAGMA busy_timeout=10000")
            self._conn.executescript(_SCHEMA)
            version = self._conn.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:
                self._conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version == 1:
                self._add_fingerprints_to_v1_store()
            elif version > SCHEMA_VERSION:
                raise RuntimeError(
                    f"{self._path} has store schema {version}, newer than this build reads "
                    f"({SCHEMA_VERSION}); upgrade rewrite-detector or use another --data-dir"
                )
        except BaseException:
            self._conn.close()
            raise

    @property
    def path(self) -> Path:
        return self._path

    @property
    def location(self) -> str:
        return str(self._path)

    # ------------------------------------------------------------------ writes

    def upsert(
        self,
        article: ArticleInput,
        content_hash: str,
        paragraphs: Sequence[Paragraph],
        embeddings: np.ndarray,
    ) -> UpsertOutcome:
        """Insert or replace ``article`` in one transaction; a same-content re-submit writes nothing.

        ``embeddings`` has one row per content (non-boilerplate) paragraph, in paragraph order.
        """
        prepared = self._prepare_upsert(article, paragraphs, embeddings)

        with self._lock:
            self._check_open()
            cur = self._conn.cursor()
            # IMMEDIATE takes the write lock up front, so the hash check and the write cannot interleave
            # with another process's write.
            cur.execute("BEGIN IMMEDIATE")
            try:
                row = cur.execute("SELECT content_hash FROM articles WHERE id = ?", (article.id,)).fetchone()
                if row is not None and row[0] == content_hash:
                    cur.execute("ROLLBACK")
                    return UpsertOutcome(False, True, EMPTY_IDS.copy(), EMPTY_IDS.copy())
                removed = np.fromiter(
                    (
                        r[0]
                        for r in cur.execute(
                            "SELECT vector_id FROM paragraphs WHERE article_id = ? AND vector_id IS NOT NULL"
                            " ORDER BY idx",
                            (article.id,),
                        )
                    ),
                    dtype=np.int64,
                )
                self._delete_fingerprints(cur, article.id)
                cur.execute("DELETE FROM paragraphs WHERE article_id = ?", (article.id,))
                cur.execute(
                    """
                    INSERT INTO articles (id, title, url, published_at, text, metadata, content_hash,
                                          char_count, paragraph_count, indexed_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(id) DO UPDATE SET
                        title = excluded.title, url = excluded.url, published_at = excluded.published_at,
                        text = excluded.text, metadata = excluded.metadata,
                        content_hash = excluded.content_hash, char_count = excluded.char_count,
                        paragraph_count = excluded.paragraph_count, indexed_at = excluded.indexed_at
                    """,
                    (
                        article.id,
                        article.title,
                        article.url,
                        article.published_at,
                        article.text,
                        prepared.metadata_json,
                        content_hash,
                        len(article.text),
                        len(paragraphs),
                        time.time(),
                    ),
                )
                first = self._allocate_ids(cur, prepared.content_count)
                added = np.arange(first, first + prepared.content_count, dtype=np.int64)
                cur.executemany(
                    "INSERT INTO paragraphs (article_id, idx, char_start, char_end, text, role, text_hash,"
                    " vector_id, embedding) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    prepared.paragraph_rows(added),
                )
                cur.executemany(
                    "INSERT OR IGNORE INTO fingerprints (fingerprint, vector_id) VALUES (?, ?)",
                    prepared.fingerprint_rows(added),
                )
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        return UpsertOutcome(created=row is None, unchanged=False, added_ids=added, removed_ids=removed)

    def delete(self, article_id: str) -> np.ndarray:
        """Delete an article and its paragraphs; returns the vector ids that were removed."""
        with self._lock:
            self._check_open()
            cur = self._conn.cursor()
            cur.execute("BEGIN IMMEDIATE")
            try:
                if cur.execute("SELECT 1 FROM articles WHERE id = ?", (article_id,)).fetchone() is None:
                    raise NotFoundError(f"no indexed article has id {article_id!r}")
                removed = np.fromiter(
                    (
                        r[0]
                        for r in cur.execute(
                            "SELECT vector_id FROM paragraphs WHERE article_id = ? AND vector_id IS NOT NULL"
                            " ORDER BY idx",
                            (article_id,),
                        )
                    ),
                    dtype=np.int64,
                )
                self._delete_fingerprints(cur, article_id)
                cur.execute("DELETE FROM paragraphs WHERE article_id = ?", (article_id,))
                cur.execute("DELETE FROM articles WHERE id = ?", (article_id,))
                cur.execute("COMMIT")
            except BaseException:
                if self._conn.in_transaction:
                    cur.execute("ROLLBACK")
                raise
        return removed

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._check_open()
            # In autocommit mode a single statement is its own (fsynced) transaction.
            self._conn.execute(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # ------------------------------------------------------------------- reads

    def get_meta(self, key: str) -> str | None:
        row = self._one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else str(row[0])

    def get(self, article_id: str) -> StoredArticle | None:
        row = self._one(
            "SELECT id, title, url, published_at, text, metadata, content_hash, char_count,"
            " paragraph_count, indexed_at FROM articles WHERE id = ?",
            (article_id,),
        )
        return None if row is None else stored_article_from_row(row)

    def paragraphs(self, article_id: str) -> list[Paragraph]:
        """All paragraphs (boilerplate included) in order; empty for an unknown id."""
        rows = self._all(
            "SELECT idx, char_start, char_end, text, role FROM paragraphs WHERE article_id = ? ORDER BY idx",
            (article_id,),
        )
        return [Paragraph(index=r[0], start=r[1], end=r[2], text=r[3], role=Role(r[4])) for r in rows]

    def content_vectors(self, article_id: str) -> tuple[list[Paragraph], np.ndarray]:
        """Content paragraphs of an article and their stored embeddings, shape (k, dimension)."""
        rows = self._all(
            "SELECT idx, char_start, char_end, text, role, embedding FROM paragraphs"
            " WHERE article_id = ? AND embedding IS NOT NULL ORDER BY idx",
            (article_id,),
        )
        paras = [Paragraph(index=r[0], start=r[1], end=r[2], text=r[3], role=Role(r[4])) for r in rows]
        return paras, self._stack([r[5] for r in rows])

    def locate(self, vector_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
        """Map vector ids to (article_id, paragraph index); ids the store does not hold are left out."""
        wanted = sorted({int(v) for v in vector_ids if int(v) >= 0})
        out: dict[int, tuple[str, int]] = {}
        with self._lock:
            self._check_open()
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                for vid, article_id, idx in self._conn.execute(
                    f"SELECT vector_id, article_id, idx FROM paragraphs WHERE vector_id IN ({marks})", chunk
                ):
                    out[int(vid)] = (article_id, int(idx))
        return out

    def vectors_by_id(self, vector_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) for the given vector ids that exist, ids ascending."""
        wanted = sorted({int(v) for v in vector_ids})
        ids: list[int] = []
        blobs: list[bytes] = []
        with self._lock:
            self._check_open()
            for chunk in _chunks(wanted):
                marks = ",".join("?" * len(chunk))
                for vid, blob in self._conn.execute(
                    f"SELECT vector_id, embedding FROM paragraphs WHERE vector_id IN ({marks})"
                    " ORDER BY vector_id",
                    chunk,
                ):
                    ids.append(int(vid))
                    blobs.append(blob)
        return np.asarray(ids, dtype=np.int64), self._stack(blobs)

    def cached_embeddings(self, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Any stored embedding per paragraph text hash (see ``text_hash``); misses are left out.

        Wire copies make the same paragraph appear in thousands of articles, so a paragraph that was
        embedded once is never sent to the model again.
        """
        out: dict[str, np.ndarray] = {}
        with self._lock:
            self._check_open()
            for h in dict.fromkeys(text_hashes):
                # One LIMIT 1 probe per hash: a GROUP BY over IN(...) would read every copy of a
                # wire paragraph just to throw all but one away.
                row = self._conn.execute(
                    "SELECT embedding FROM paragraphs WHERE text_hash = ? AND embedding IS NOT NULL LIMIT 1",
                    (h,),
                ).fetchone()
                if row is not None:
                    out[h] = self._decode(row[0])
        return out

    def list_records(self, page_size: int, after_id: str | None = None) -> list[ArticleRecord]:
        """Up to ``page_size`` records ordered by id, starting after ``after_id`` (keyset pagination)."""
        if page_size <= 0:
            raise ValueError(f"page_size must be positive, got {page_size}")
        rows = self._all(
            "SELECT id, title, url, published_at, metadata, content_hash, char_count, paragraph_count,"
            " indexed_at FROM articles WHERE id > ? ORDER BY id LIMIT ?",
            # Every TEXT value compares greater than '' except '' itself, which is not a valid id.
            ("" if after_id is None else after_id, page_size),
        )
        return [record_from_row(r) for r in rows]

    def count_articles(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM articles", ())[0])  # type: ignore[index]

    def count_paragraphs(self) -> int:
        return int(self._one("SELECT COUNT(*) FROM paragraphs", ())[0])  # type: ignore[index]

    def count_vectors(self) -> int:
        return int(self._one("SELECT COUNT(vector_id) FROM paragraphs", ())[0])  # type: ignore[index]

    def all_vector_ids(self) -> np.ndarray:
        """Every vector id the store holds, ascending (int64)."""
        # Start-up reconciles the index against this list. One Python row tuple per id took 0.5-0.7 s
        # at 1M vectors; SQLite joining a page of ids into one string, parsed by numpy, takes ~0.17 s.
        parts: list[np.ndarray] = []
        last = -1
        while True:
            count, joined, highest = self._one(
                "SELECT COUNT(*), group_concat(vector_id), MAX(vector_id) FROM (SELECT vector_id"
                " FROM paragraphs WHERE vector_id > ? ORDER BY vector_id LIMIT ?)",
                (last, _ID_PAGE),
            ) or (0, None, None)
            if not count:
                break
            page = np.fromstring(joined, dtype=np.int64, sep=",")
            if page.size != count:  # cannot happen with SQLite's integer text; never trust it blindly
                raise RuntimeError(f"{self._path}: listed {page.size} vector ids where {count} exist")
            parts.append(page)
            last = int(highest)
            if count < _ID_PAGE:
                break
        ids = np.concatenate(parts) if parts else EMPTY_IDS.copy()
        # group_concat keeps the subquery's order in practice, which SQL does not promise: check it.
        if ids.size > 1 and not bool(np.all(ids[1:] > ids[:-1])):
            ids = np.sort(ids)
        return ids

    def iter_vectors(self, batch: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) in ascending id order, ``batch`` rows at a time, for rebuilding the index.

        Keyset-paged and locked per batch, so a long rebuild never holds the store against other threads.
        """
        if batch <= 0:
            raise ValueError(f"batch must be positive, got {batch}")
        last = -1
        while True:
            rows = self._all(
                "SELECT vector_id, embedding FROM paragraphs WHERE vector_id > ? ORDER BY vector_id LIMIT ?",
                (last, batch),
            )
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            last = int(ids[-1])
            yield ids, self._stack([r[1] for r in rows])

    def fingerprint_postings(self, fingerprints: Sequence[int], max_paragraphs: int) -> dict[int, np.ndarray]:
        holders: dict[int, list[int]] = {}
        with self._lock:
            self._check_open()
            for chunk in _chunks(sorted({int(f) for f in fingerprints})):
                marks = ",".join("?" * len(chunk))
                rows = self._conn.execute(
                    "SELECT fingerprint, vector_id FROM fingerprints WHERE fingerprint IN ("
                    f" SELECT fingerprint FROM fingerprints WHERE fingerprint IN ({marks})"
                    " GROUP BY fingerprint HAVING COUNT(*) <= ?)",
                    (*chunk, max_paragraphs),
                )
                for fingerprint, vector_id in rows:
                    holders.setdefault(fingerprint, []).append(vector_id)
        return {f: np.asarray(ids, dtype=np.int64) for f, ids in holders.items()}

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._conn.close()

    # ---------------------------------------------------------------- helpers

    @staticmethod
    def _delete_fingerprints(cur: sqlite3.Cursor, article_id: str) -> None:
        old = cur.execute(
            "SELECT vector_id, text FROM paragraphs WHERE article_id = ? AND vector_id IS NOT NULL",
            (article_id,),
        ).fetchall()
        cur.executemany(
            "DELETE FROM fingerprints WHERE fingerprint = ? AND vector_id = ?", fingerprint_rows(old)
        )

    def _add_fingerprints_to_v1_store(self) -> None:
        """Schema 1 -> 2: fill the fingerprint table from the stored paragraph texts, in one transaction."""
        cur = self._conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            paragraphs = cur.execute("SELECT vector_id, text FROM paragraphs WHERE vector_id IS NOT NULL")
            cur.executemany(
                "INSERT OR IGNORE INTO fingerprints (fingerprint, vector_id) VALUES (?, ?)",
                fingerprint_rows(paragraphs.fetchall()),
            )
            cur.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            cur.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                cur.execute("ROLLBACK")
            raise

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"article store {self._path} is closed")

    def _one(self, sql: str, params: Sequence[object]) -> tuple | None:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, tuple(params)).fetchone()

    def _all(self, sql: str, params: Sequence[object]) -> list[tuple]:
        with self._lock:
            self._check_open()
            return self._conn.execute(sql, tuple(params)).fetchall()

    @staticmethod
    def _allocate_ids(cur: sqlite3.Cursor, n: int) -> int:
        first = int(cur.execute("SELECT value FROM counters WHERE name = 'next_vector_id'").fetchone()[0])
        if n:
            cur.execute("UPDATE counters SET value = ? WHERE name = 'next_vector_id'", (first + n,))
        return first


def _chunks(values: list[int]) -> Iterator[list[int]]:
    for i in range(0, len(values), _IN_CHUNK):
        yield values[i : i + _IN_CHUNK]
