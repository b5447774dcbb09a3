"""PostgreSQL article store: the source of truth that several service replicas share.

Same contract as the SQLite ``ArticleStore`` (see ``store_base.ArticleStoreBase``); what differs is that
other processes read and write the same rows at the same time:

* **Tables** live in their own schema, ``rewrite_detector``, created on first open (under an advisory
  lock, because concurrent ``CREATE ... IF NOT EXISTS`` can still collide in the catalogue).
* **Vector ids** come from a sequence: unique across replicas and never handed out twice, even after the
  newest article is deleted (the index may still hold its ids; see ``store_base``).
* **Upserts of one article id** are serialised by a transaction-level advisory lock on the id: two
  replicas writing the same new id would otherwise both find no row and the second would fail on the
  paragraphs' primary key. Row locks cannot do this, a row that does not exist yet cannot be locked.
* **Coordination with the vector index** (``reconcile_lock``, ``write_guard``): session-level advisory
  locks. One replica at a time reconciles the shared index with this store (exclusive), while writes
  take it shared — a reconciliation that read the store between another replica's commit and that
  replica's index update would add the same vector a second time. A per-article lock held across store
  commit + index update keeps two replicas' index changes for one article in commit order. The server
  releases a dead replica's locks when its connection drops.
* **Free text is BYTEA (UTF-8)**: PostgreSQL ``text`` cannot hold NUL, and scraped articles do carry it;
  the SQLite store keeps such text byte-exact and so must this one. Ids (validated upstream, no control
  characters) and the JSON metadata (``json.dumps`` escapes control characters) stay ``text``. Ids are
  ``COLLATE "C"`` so listing pages in code point order, as SQLite and Python do.

Connections come from a pool (``psycopg_pool``), in autocommit mode; every write is one explicit
transaction. A lost or unreachable database raises ``StoreUnavailableError`` (UNAVAILABLE to callers,
who may retry), never a bare driver error.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..core.types import ArticleInput, ArticleRecord, Paragraph, Role
from ..errors import NotFoundError, StoreUnavailableError
from .store_base import (
    EMPTY_IDS,
    ArticleStoreBase,
    StoredArticle,
    UpsertOutcome,
    fingerprint_rows,
    record_from_row,
    stored_article_from_row,
)

__all__ = ["SCHEMA", "PostgresArticleStore", "describe_url"]

log = logging.getLogger(__name__)

SCHEMA = "rewrite_detector"
SCHEMA_VERSION = 1

# Advisory locks use the two-int4 form (space, key). The spaces are arbitrary constants of this
# application (the first one is "rdet" in ASCII), kept apart so that no two kinds of lock collide.
_LOCK_SPACE_STORE = 0x72646574
_LOCK_SPACE_WRITE_GUARD = _LOCK_SPACE_STORE + 1
_LOCK_SPACE_UPSERT = _LOCK_SPACE_STORE + 2
_KEY_SCHEMA = 1
_KEY_RECONCILE = 2

_CONNECT_TIMEOUT_SECONDS = 10
_POOL_TIMEOUT_SECONDS = 30.0

_SCHEMA_DDL = f"""
CREATE SCHEMA IF NOT EXISTS {SCHEMA};
CREATE TABLE IF NOT EXISTS {SCHEMA}.articles (
    id              TEXT COLLATE "C" PRIMARY KEY,
    title           BYTEA NOT NULL,             -- UTF-8; see the module docstring for why not text
    url             BYTEA NOT NULL,
    published_at    BYTEA NOT NULL,
    text            BYTEA NOT NULL,
    metadata        TEXT NOT NULL,              -- JSON object of str -> str
    content_hash    TEXT NOT NULL,
    char_count      INTEGER NOT NULL,
    paragraph_count INTEGER NOT NULL,
    indexed_at      DOUBLE PRECISION NOT NULL   -- unix seconds
);
CREATE TABLE IF NOT EXISTS {SCHEMA}.paragraphs (
    article_id  TEXT COLLATE "C" NOT NULL REFERENCES {SCHEMA}.articles(id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    char_start  INTEGER NOT NULL,               -- span in the ORIGINAL article text, half-open
    char_end    INTEGER NOT NULL,
    text        BYTEA NOT NULL,                 -- normalised paragraph text (what was embedded), UTF-8
    role        TEXT NOT NULL,
    text_hash   TEXT NOT NULL,
    vector_id   BIGINT UNIQUE,                  -- NULL for boilerplate; never reused
    embedding   BYTEA,                          -- little-endian float32[dimension]; NULL for boilerplate
    PRIMARY KEY (article_id, idx),
    CHECK ((vector_id IS NULL) = (embedding IS NULL))
);
CREATE INDEX IF NOT EXISTS paragraphs_text_hash ON {SCHEMA}.paragraphs(text_hash);
CREATE TABLE IF NOT EXISTS {SCHEMA}.meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE SEQUENCE IF NOT EXISTS {SCHEMA}.vector_ids AS BIGINT START 1;
-- Lexical candidate index (core/fingerprints.py), as in the SQLite store: keyed by (fingerprint,
-- vector_id) so a look-up is a range scan and a paragraph's rows are deleted by exact key, recomputed
-- from its stored text, without a second index.
CREATE TABLE IF NOT EXISTS {SCHEMA}.fingerprints (
    fingerprint BIGINT NOT NULL,
    vector_id   BIGINT NOT NULL,
    PRIMARY KEY (fingerprint, vector_id)
);
"""

_ARTICLE_COLUMNS = (
    "id, title, url, published_at, text, metadata, content_hash, char_count, paragraph_count, indexed_at"
)
_RECORD_COLUMNS = (
    "id, title, url, published_at, metadata, content_hash, char_count, paragraph_count, indexed_at"
)


def describe_url(url: str) -> str:
    """``postgresql://user@host:port/dbname`` for log lines and messages: the password is left out."""
    try:
        params = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://<unparsable URL>"
    user = f"{params['user']}@" if params.get("user") else ""
    port = f":{params['port']}" if params.get("port") else ""
    return f"postgresql://{user}{params.get('host', '')}{port}/{params.get('dbname', '')}"


def _lock_key(article_id: str) -> int:
    """A signed 32-bit advisory-lock key for an article id (collisions only serialise two writers)."""
    return int.from_bytes(
        hashlib.blake2b(article_id.encode("utf-8"), digest_size=4).digest(), "big", signed=True
    )


def _utf8(value: str) -> bytes:
    return value.encode("utf-8")


def _text(value: bytes | memoryview) -> str:
    return bytes(value).decode("utf-8")


def _release_advisory_locks(conn: psycopg.Connection[Any]) -> None:
    """Pool reset hook: a connection goes back to the pool holding no session lock, whatever happened."""
    conn.execute("SELECT pg_advisory_unlock_all()")


class PostgresArticleStore(ArticleStoreBase):
    """Articles, paragraphs, embeddings and the paragraph <-> vector-id map in a PostgreSQL database.

    ``url``: a libpq connection string or ``postgresql://`` URL (libpq's ``PG*`` variables and
    ``~/.pgpass`` apply, so the password need not be in it). ``pool_size``: most connections this
    process opens.
    """

    def __init__(self, url: str, *, dimension: int, pool_size: int = 16) -> None:
        super().__init__(dimension=dimension)
        try:
            conninfo_to_dict(url)
        except psycopg.ProgrammingError as err:
            raise ValueError(f"store URL is not a PostgreSQL connection string: {err}") from err
        if pool_size < 3:
            # A write holds one connection for its write guard and one for its transaction; start-up
            # holds one for the reconcile lock while reading with another.
            raise ValueError(f"pool_size must be >= 3, got {pool_size}")
        self._url = url
        self._location = describe_url(url)
        self._closed = False
        self._close_lock = threading.Lock()
        self._create_schema()
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "application_name": "rewrite-detector"},
            reset=_release_advisory_locks,
            timeout=_POOL_TIMEOUT_SECONDS,
            name="rewrite-detector-store",
            open=False,
        )
        try:
            self._pool.open(wait=True, timeout=_CONNECT_TIMEOUT_SECONDS)
        except PoolTimeout as err:
            self._pool.close()
            raise self._unavailable("open a connection pool", err) from err

    @property
    def location(self) -> str:
        return self._location

    @property
    def shared(self) -> bool:
        return True

    # ------------------------------------------------------------ coordination

    @contextlib.contextmanager
    def reconcile_lock(self) -> Iterator[None]:
        with self._connection() as conn:
            (acquired,) = self._fetch_one(
                conn, "SELECT pg_try_advisory_lock(%s, %s)", (_LOCK_SPACE_STORE, _KEY_RECONCILE)
            )
            if not acquired:
                log.info("waiting for another replica to finish reconciling store=%s", self._location)
                started = time.monotonic()
                conn.execute("SELECT pg_advisory_lock(%s, %s)", (_LOCK_SPACE_STORE, _KEY_RECONCILE))
                log.info(
                    "reconcile lock acquired store=%s waited_seconds=%.3f",
                    self._location,
                    time.monotonic() - started,
                )
            try:
                yield
            finally:
                # On a broken connection the server has already released the lock with the session.
                with contextlib.suppress(psycopg.Error):
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (_LOCK_SPACE_STORE, _KEY_RECONCILE))

    @contextlib.contextmanager
    def write_guard(self, article_id: str) -> Iterator[None]:
        key = _lock_key(article_id)
        with self._connection() as conn:
            conn.execute(
                "SELECT pg_advisory_lock_shared(%s, %s), pg_advisory_lock(%s, %s)",
                (_LOCK_SPACE_STORE, _KEY_RECONCILE, _LOCK_SPACE_WRITE_GUARD, key),
            )
            try:
                yield
            finally:
                with contextlib.suppress(psycopg.Error):
                    conn.execute(
                        "SELECT pg_advisory_unlock(%s, %s), pg_advisory_unlock_shared(%s, %s)",
                        (_LOCK_SPACE_WRITE_GUARD, key, _LOCK_SPACE_STORE, _KEY_RECONCILE),
                    )

    # ------------------------------------------------------------------ writes

    def upsert(
        self,
        article: ArticleInput,
        content_hash: str,
        paragraphs: Sequence[Paragraph],
        embeddings: np.ndarray,
    ) -> UpsertOutcome:
        prepared = self._prepare_upsert(article, paragraphs, embeddings)
        with self._connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE_UPSERT, _lock_key(article.id)))
            row = cur.execute(
                f"SELECT content_hash FROM {SCHEMA}.articles WHERE id = %s", (article.id,)
            ).fetchone()
            if row is not None and row[0] == content_hash:
                return UpsertOutcome(False, True, EMPTY_IDS.copy(), EMPTY_IDS.copy())
            removed = self._article_vector_ids(cur, article.id)
            self._delete_fingerprints(cur, article.id)
            cur.execute(f"DELETE FROM {SCHEMA}.paragraphs WHERE article_id = %s", (article.id,))
            cur.execute(
                f"""
                INSERT INTO {SCHEMA}.articles ({_ARTICLE_COLUMNS})
                VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                ON CONFLICT (id) DO UPDATE SET
                    title = excluded.title, url = excluded.url, published_at = excluded.published_at,
                    text = excluded.text, metadata = excluded.metadata,
                    content_hash = excluded.content_hash, char_count = excluded.char_count,
                    paragraph_count = excluded.paragraph_count, indexed_at = excluded.indexed_at
                """,
                (
                    article.id,
                    _utf8(article.title),
                    _utf8(article.url),
                    _utf8(article.published_at),
                    _utf8(article.text),
                    prepared.metadata_json,
                    content_hash,
                    len(article.text),
                    len(paragraphs),
                    time.time(),
                ),
            )
            added = np.asarray(
                sorted(
                    r[0]
                    for r in cur.execute(
                        f"SELECT nextval('{SCHEMA}.vector_ids') FROM generate_series(1, %s)",
                        (prepared.content_count,),
                    ).fetchall()
                ),
                dtype=np.int64,
            )
            rows = [(*r[:4], _utf8(r[4]), *r[5:]) for r in prepared.paragraph_rows(added)]
            cur.executemany(
                f"INSERT INTO {SCHEMA}.paragraphs (article_id, idx, char_start, char_end, text, role,"
                " text_hash, vector_id, embedding) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                rows,
            )
            self._insert_fingerprints(cur, prepared.fingerprint_rows(added))
        return UpsertOutcome(created=row is None, unchanged=False, added_ids=added, removed_ids=removed)

    def delete(self, article_id: str) -> np.ndarray:
        with self._connection() as conn, conn.transaction(), conn.cursor(binary=True) as cur:
            cur.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE_UPSERT, _lock_key(article_id)))
            if (
                cur.execute(f"SELECT 1 FROM {SCHEMA}.articles WHERE id = %s", (article_id,)).fetchone()
                is None
            ):
                raise NotFoundError(f"no indexed article has id {article_id!r}")
            removed = self._article_vector_ids(cur, article_id)
            self._delete_fingerprints(cur, article_id)
            # The paragraphs go with the article (ON DELETE CASCADE).
            cur.execute(f"DELETE FROM {SCHEMA}.articles WHERE id = %s", (article_id,))
        return removed

    def set_meta(self, key: str, value: str) -> None:
        with self._connection() as conn:
            conn.execute(
                f"INSERT INTO {SCHEMA}.meta(key, value) VALUES (%s, %s)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    # ------------------------------------------------------------------- reads

    def get_meta(self, key: str) -> str | None:
        row = self._one(f"SELECT value FROM {SCHEMA}.meta WHERE key = %s", (key,))
        return None if row is None else str(row[0])

    def get(self, article_id: str) -> StoredArticle | None:
        row = self._one(f"SELECT {_ARTICLE_COLUMNS} FROM {SCHEMA}.articles WHERE id = %s", (article_id,))
        if row is None:
            return None
        return stored_article_from_row((row[0], *map(_text, row[1:5]), *row[5:]))

    def paragraphs(self, article_id: str) -> list[Paragraph]:
        rows = self._all(
            f"SELECT idx, char_start, char_end, text, role FROM {SCHEMA}.paragraphs"
            " WHERE article_id = %s ORDER BY idx",
            (article_id,),
        )
        return [Paragraph(index=r[0], start=r[1], end=r[2], text=_text(r[3]), role=Role(r[4])) for r in rows]

    def content_vectors(self, article_id: str) -> tuple[list[Paragraph], np.ndarray]:
        rows = self._all(
            f"SELECT idx, char_start, char_end, text, role, embedding FROM {SCHEMA}.paragraphs"
            " WHERE article_id = %s AND embedding IS NOT NULL ORDER BY idx",
            (article_id,),
        )
        paras = [Paragraph(index=r[0], start=r[1], end=r[2], text=_text(r[3]), role=Role(r[4])) for r in rows]
        return paras, self._stack([r[5] for r in rows])

    def locate(self, vector_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
        wanted = sorted({int(v) for v in vector_ids if int(v) >= 0})
        if not wanted:
            return {}
        rows = self._all(
            f"SELECT vector_id, article_id, idx FROM {SCHEMA}.paragraphs WHERE vector_id = ANY(%s::bigint[])",
            (wanted,),
        )
        return {int(vid): (article_id, int(idx)) for vid, article_id, idx in rows}

    def vectors_by_id(self, vector_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        wanted = sorted({int(v) for v in vector_ids})
        rows = (
            self._all(
                f"SELECT vector_id, embedding FROM {SCHEMA}.paragraphs"
                " WHERE vector_id = ANY(%s::bigint[]) ORDER BY vector_id",
                (wanted,),
            )
            if wanted
            else []
        )
        return np.asarray([r[0] for r in rows], dtype=np.int64), self._stack([r[1] for r in rows])

    def cached_embeddings(self, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(text_hashes))
        if not wanted:
            return {}
        # One round trip, and one LIMIT 1 index probe per hash: wire copies make a paragraph appear in
        # thousands of articles, and DISTINCT ON / GROUP BY would read every copy to keep one.
        rows = self._all(
            f"""
            SELECT wanted.text_hash, found.embedding
            FROM unnest(%s::text[]) AS wanted(text_hash)
            CROSS JOIN LATERAL (
                SELECT embedding FROM {SCHEMA}.paragraphs p
                WHERE p.text_hash = wanted.text_hash AND p.embedding IS NOT NULL LIMIT 1
            ) AS found
            """,
            (wanted,),
        )
        return {h: self._decode(blob) for h, blob in rows}

    def list_records(self, page_size: int, after_id: str | None = None) -> list[ArticleRecord]:
        if page_size <= 0:
            raise ValueError(f"page_size must be positive, got {page_size}")
        rows = self._all(
            f"SELECT {_RECORD_COLUMNS} FROM {SCHEMA}.articles WHERE id > %s ORDER BY id LIMIT %s",
            # Under COLLATE "C" every id compares greater than '' except '' itself, which is not valid.
            ("" if after_id is None else after_id, page_size),
        )
        return [record_from_row((r[0], *map(_text, r[1:4]), *r[4:])) for r in rows]

    def count_articles(self) -> int:
        return int(self._one(f"SELECT COUNT(*) FROM {SCHEMA}.articles", ())[0])  # type: ignore[index]

    def count_paragraphs(self) -> int:
        return int(self._one(f"SELECT COUNT(*) FROM {SCHEMA}.paragraphs", ())[0])  # type: ignore[index]

    def count_vectors(self) -> int:
        return int(self._one(f"SELECT COUNT(vector_id) FROM {SCHEMA}.paragraphs", ())[0])  # type: ignore[index]

    def all_vector_ids(self) -> np.ndarray:
        rows = self._all(
            f"SELECT vector_id FROM {SCHEMA}.paragraphs WHERE vector_id IS NOT NULL ORDER BY vector_id", ()
        )
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))

    def iter_vectors(self, batch: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if batch <= 0:
            raise ValueError(f"batch must be positive, got {batch}")
        last = -1
        while True:
            # Keyset-paged, one short query per batch: a long rebuild never holds a connection or a
            # snapshot open against the other replicas' writes.
            rows = self._all(
                f"SELECT vector_id, embedding FROM {SCHEMA}.paragraphs WHERE vector_id > %s"
                " ORDER BY vector_id LIMIT %s",
                (last, batch),
            )
            if not rows:
                return
            ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            last = int(ids[-1])
            yield ids, self._stack([r[1] for r in rows])

    def fingerprint_postings(self, fingerprints: Sequence[int], max_paragraphs: int) -> dict[int, np.ndarray]:
        wanted = sorted({int(f) for f in fingerprints})
        if not wanted:
            return {}
        rows = self._all(
            f"""
            SELECT fingerprint, vector_id FROM {SCHEMA}.fingerprints
            WHERE fingerprint IN (
                SELECT fingerprint FROM {SCHEMA}.fingerprints WHERE fingerprint = ANY(%s::bigint[])
                GROUP BY fingerprint HAVING COUNT(*) <= %s
            )
            """,
            (wanted, max_paragraphs),
        )
        holders: dict[int, list[int]] = {}
        for fingerprint, vector_id in rows:
            holders.setdefault(int(fingerprint), []).append(int(vector_id))
        return {f: np.asarray(ids, dtype=np.int64) for f, ids in holders.items()}

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
        self._pool.close()

    # ---------------------------------------------------------------- helpers

    def _create_schema(self) -> None:
        """Create the schema if needed and check its version, on a connection of its own.

        An up-to-date schema is only read: the DDL, even as ``IF NOT EXISTS`` no-ops, takes table locks
        that would make the other replicas' writes wait during a rolling restart."""
        try:
            with psycopg.connect(
                self._url, autocommit=True, connect_timeout=_CONNECT_TIMEOUT_SECONDS
            ) as conn:
                version = self._schema_version(conn)
                if version is None or version < SCHEMA_VERSION:
                    with conn.transaction():
                        conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (_LOCK_SPACE_STORE, _KEY_SCHEMA))
                        conn.execute(_SCHEMA_DDL)
                        conn.execute(
                            f"INSERT INTO {SCHEMA}.meta(key, value) VALUES ('schema_version', %s)"
                            " ON CONFLICT (key) DO NOTHING",
                            (str(SCHEMA_VERSION),),
                        )
                        version = self._schema_version(conn)
        except psycopg.OperationalError as err:
            raise self._unavailable("connect", err) from err
        if version is not None and version > SCHEMA_VERSION:
            raise RuntimeError(
                f"{self._location} has store schema {version}, newer than this build reads "
                f"({SCHEMA_VERSION}); upgrade rewrite-detector or point the store URL at another database"
            )

    @staticmethod
    def _schema_version(conn: psycopg.Connection[Any]) -> int | None:
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{SCHEMA}.meta",)).fetchone()
        if not exists or not exists[0]:
            return None
        row = conn.execute(f"SELECT value FROM {SCHEMA}.meta WHERE key = 'schema_version'").fetchone()
        return None if row is None else int(row[0])

    @contextlib.contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        if self._closed:
            raise RuntimeError(f"article store {self._location} is closed")
        try:
            with self._pool.connection() as conn:
                yield conn
        except (psycopg.OperationalError, PoolTimeout) as err:
            raise self._unavailable("answer", err) from err

    def _unavailable(self, action: str, err: Exception) -> StoreUnavailableError:
        log.warning("article store failed action=%r store=%s error=%s", action, self._location, err)
        return StoreUnavailableError(
            f"the article store ({self._location}) could not {action}: {str(err).strip()}. Check that "
            "PostgreSQL is up and reachable and that REWRITE_DETECTOR_STORE_URL (--store-url) is right; "
            "retry later"
        )

    @staticmethod
    def _fetch_one(conn: psycopg.Connection[Any], sql: str, params: Sequence[object]) -> tuple:
        row = conn.execute(sql, tuple(params)).fetchone()
        assert row is not None  # a SELECT of expressions without FROM always returns one row
        return tuple(row)

    def _one(self, sql: str, params: Sequence[object]) -> tuple | None:
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            row = cur.execute(sql, tuple(params)).fetchone()
        return None if row is None else tuple(row)

    def _all(self, sql: str, params: Sequence[object]) -> list[tuple]:
        with self._connection() as conn, conn.cursor(binary=True) as cur:
            return [tuple(r) for r in cur.execute(sql, tuple(params)).fetchall()]

    @staticmethod
    def _delete_fingerprints(cur: psycopg.Cursor[Any], article_id: str) -> None:
        old = cur.execute(
            f"SELECT vector_id, text FROM {SCHEMA}.paragraphs"
            " WHERE article_id = %s AND vector_id IS NOT NULL",
            (article_id,),
        ).fetchall()
        rows = fingerprint_rows((vector_id, _text(text)) for vector_id, text in old)
        if rows:
            cur.execute(
                f"DELETE FROM {SCHEMA}.fingerprints WHERE (fingerprint, vector_id) IN"
                " (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))",
                ([r[0] for r in rows], [r[1] for r in rows]),
            )

    @staticmethod
    def _insert_fingerprints(cur: psycopg.Cursor[Any], rows: list[tuple[int, int]]) -> None:
        if rows:
            # One statement over two arrays instead of a round trip per row.
            cur.execute(
                f"INSERT INTO {SCHEMA}.fingerprints (fingerprint, vector_id)"
                " SELECT * FROM unnest(%s::bigint[], %s::bigint[]) ON CONFLICT DO NOTHING",
                ([r[0] for r in rows], [r[1] for r in rows]),
            )

    @staticmethod
    def _article_vector_ids(cur: psycopg.Cursor[Any], article_id: str) -> np.ndarray:
        rows = cur.execute(
            f"SELECT vector_id FROM {SCHEMA}.paragraphs WHERE article_id = %s AND vector_id IS NOT NULL"
            " ORDER BY idx",
            (article_id,),
        ).fetchall()
        return np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
