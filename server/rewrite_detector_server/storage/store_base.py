"""What the storage facade needs from an article store, and the SQL-independent parts every store shares.

Two stores implement ``ArticleStoreBase``: ``ArticleStore`` (SQLite in the data dir, one process) and
``PostgresArticleStore`` (a PostgreSQL database that several service replicas share). They differ in
SQL and in how they coordinate writers; everything else — the upsert's validation, the embedding
encoding, the row <-> record mapping, the cache key — lives here once, so the two cannot drift.
"""

from __future__ import annotations

import abc
import contextlib
import hashlib
import json
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np

from ..core.fingerprints import fingerprints
from ..core.types import ArticleInput, ArticleRecord, Paragraph

__all__ = ["ArticleStoreBase", "PreparedUpsert", "StoredArticle", "UpsertOutcome", "text_hash"]

EMPTY_IDS = np.empty(0, dtype=np.int64)


def text_hash(text: str) -> str:
    """Key of the embedding cache: blake2b (128-bit, hex) of the NFC, whitespace-collapsed text.

    The segmenter already normalises paragraphs; normalising again here keeps the cache key stable
    across Unicode-composition and whitespace differences that do not change what the model sees.
    Case is kept: a cased model would embed "US" and "us" differently.
    """
    normalised = " ".join(unicodedata.normalize("NFC", text).split())
    return hashlib.blake2b(normalised.encode("utf-8"), digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredArticle:
    """An indexed article as submitted (``article``) plus what the store derived (``record``)."""

    article: ArticleInput
    record: ArticleRecord


@dataclass(frozen=True, slots=True)
class UpsertOutcome:
    """Result of an upsert; the caller applies ``removed_ids``/``added_ids`` to the vector index.

    ``added_ids[i]`` is the vector id of row ``i`` of the embeddings passed to ``upsert``.
    """

    created: bool
    unchanged: bool
    added_ids: np.ndarray
    removed_ids: np.ndarray


@dataclass(frozen=True, slots=True)
class PreparedUpsert:
    """An upsert's arguments, validated and encoded before any transaction starts."""

    article: ArticleInput
    paragraphs: Sequence[Paragraph]
    content_count: int
    vectors: np.ndarray  # little-endian float32, one row per content paragraph
    metadata_json: str

    def paragraph_rows(self, added_ids: np.ndarray) -> list[tuple]:
        """(article_id, idx, char_start, char_end, text, role, text_hash, vector_id, embedding) per
        paragraph; content paragraphs get ``added_ids`` and their embedding in order, boilerplate NULLs."""
        rows = []
        content_row = 0
        for p in self.paragraphs:
            vector_id: int | None = None
            embedding: bytes | None = None
            if p.is_content:
                vector_id = int(added_ids[content_row])
                embedding = self.vectors[content_row].tobytes()
                content_row += 1
            rows.append(
                (
                    self.article.id,
                    p.index,
                    p.start,
                    p.end,
                    p.text,
                    p.role.value,
                    text_hash(p.text),
                    vector_id,
                    embedding,
                )
            )
        return rows

    def fingerprint_rows(self, added_ids: np.ndarray) -> list[tuple[int, int]]:
        """(fingerprint, vector_id) rows for the content paragraphs, given their new vector ids."""
        content = [p for p in self.paragraphs if p.is_content]
        return fingerprint_rows(zip(added_ids.tolist(), (p.text for p in content), strict=True))


def fingerprint_rows(paragraphs: Iterable[tuple[int, str]]) -> list[tuple[int, int]]:
    """(fingerprint, vector_id) rows of the lexical candidate index for (vector_id, text) paragraphs."""
    return [(fp, int(vector_id)) for vector_id, text in paragraphs for fp in fingerprints(text)]


class ArticleStoreBase(abc.ABC):
    """Articles, paragraphs, their embeddings and the paragraph <-> vector-id map: the source of truth
    the vector index is rebuilt from. Thread-safe.

    Vector ids are never reused (a stale index may still hold a deleted article's ids, and reconcile
    must tell "orphan" from "new vector with the same id"). Upsert is one transaction and a no-op when
    the content hash is unchanged.
    """

    def __init__(self, *, dimension: int) -> None:
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, got {dimension}")
        self._dimension = dimension

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    @abc.abstractmethod
    def location(self) -> str:
        """Where the store is, for log lines and error messages (never with a password)."""

    @property
    def shared(self) -> bool:
        """True when other processes may read and write this store at the same time."""
        return False

    # ------------------------------------------------------------ coordination

    def reconcile_lock(self) -> AbstractContextManager[None]:
        """Held while one process brings the vector index in line with the store (and while it checks
        or records the store's model), so replicas sharing a store take turns. No-op for a store only
        one process opens."""
        return contextlib.nullcontext()

    def write_guard(self, article_id: str) -> AbstractContextManager[None]:
        """Held around one write's store commit *and* its vector-index update, so that two processes
        writing the same article apply their index changes in the order of their commits, and no
        reconciliation runs in between. No-op for a store only one process opens."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ writes

    @abc.abstractmethod
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

    @abc.abstractmethod
    def delete(self, article_id: str) -> np.ndarray:
        """Delete an article and its paragraphs; returns the vector ids that were removed.

        Raises ``NotFoundError`` for an unknown id."""

    @abc.abstractmethod
    def set_meta(self, key: str, value: str) -> None: ...

    # ------------------------------------------------------------------- reads

    @abc.abstractmethod
    def get_meta(self, key: str) -> str | None: ...

    @abc.abstractmethod
    def get(self, article_id: str) -> StoredArticle | None: ...

    @abc.abstractmethod
    def paragraphs(self, article_id: str) -> list[Paragraph]:
        """All paragraphs (boilerplate included) in order; empty for an unknown id."""

    @abc.abstractmethod
    def content_vectors(self, article_id: str) -> tuple[list[Paragraph], np.ndarray]:
        """Content paragraphs of an article and their stored embeddings, shape (k, dimension)."""

    @abc.abstractmethod
    def locate(self, vector_ids: Iterable[int]) -> dict[int, tuple[str, int]]:
        """Map vector ids to (article_id, paragraph index); ids the store does not hold are left out."""

    @abc.abstractmethod
    def vectors_by_id(self, vector_ids: Sequence[int] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) for the given vector ids that exist, ids ascending."""

    @abc.abstractmethod
    def cached_embeddings(self, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """Any stored embedding per paragraph text hash (see ``text_hash``); misses are left out."""

    @abc.abstractmethod
    def list_records(self, page_size: int, after_id: str | None = None) -> list[ArticleRecord]:
        """Up to ``page_size`` records ordered by id (code point order), starting after ``after_id``."""

    @abc.abstractmethod
    def count_articles(self) -> int: ...

    @abc.abstractmethod
    def count_paragraphs(self) -> int: ...

    @abc.abstractmethod
    def count_vectors(self) -> int: ...

    @abc.abstractmethod
    def all_vector_ids(self) -> np.ndarray:
        """Every vector id the store holds, ascending (int64)."""

    @abc.abstractmethod
    def iter_vectors(self, batch: int = 8192) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield (ids, vectors) in ascending id order, ``batch`` rows at a time, for rebuilding the index."""

    @abc.abstractmethod
    def fingerprint_postings(self, fingerprints: Sequence[int], max_paragraphs: int) -> dict[int, np.ndarray]:
        """{fingerprint: vector ids of the paragraphs holding it} for the given lexical fingerprints
        (core/fingerprints.py), leaving out those held by more than ``max_paragraphs`` paragraphs."""

    @abc.abstractmethod
    def close(self) -> None: ...

    # ---------------------------------------------------------- shared helpers

    def _prepare_upsert(
        self, article: ArticleInput, paragraphs: Sequence[Paragraph], embeddings: np.ndarray
    ) -> PreparedUpsert:
        content_count = sum(1 for p in paragraphs if p.is_content)
        vectors = self._check_vectors(embeddings, content_count)
        indexes = [p.index for p in paragraphs]
        if len(set(indexes)) != len(indexes):
            raise ValueError(f"duplicate paragraph indexes in article {article.id!r}")
        metadata_json = json.dumps(dict(article.metadata), ensure_ascii=False, sort_keys=True)
        return PreparedUpsert(article, paragraphs, content_count, vectors, metadata_json)

    def _check_vectors(self, embeddings: np.ndarray, rows: int) -> np.ndarray:
        arr = np.asarray(embeddings)
        if arr.ndim != 2 or arr.shape[0] != rows or (rows and arr.shape[1] != self._dimension):
            raise ValueError(
                f"embeddings must have shape ({rows}, {self._dimension}) — one row per content paragraph — "
                f"got {arr.shape}"
            )
        # Little-endian float32 is the stored format of the embeddings whatever the host order is.
        return np.ascontiguousarray(arr, dtype="<f4")

    def _decode(self, blob: bytes) -> np.ndarray:
        vec = np.frombuffer(blob, dtype="<f4")
        if vec.shape[0] != self._dimension:
            raise RuntimeError(
                f"{self.location} holds a {vec.shape[0]}-d embedding but the store was opened for "
                f"{self._dimension}-d vectors"
            )
        return vec.astype(np.float32)

    def _stack(self, blobs: Sequence[bytes]) -> np.ndarray:
        if not blobs:
            return np.empty((0, self._dimension), dtype=np.float32)
        return np.stack([self._decode(b) for b in blobs])


def record_from_row(row: Sequence) -> ArticleRecord:
    """Row (id, title, url, published_at, metadata, content_hash, char_count, paragraph_count, indexed_at)."""
    return ArticleRecord(
        id=row[0],
        title=row[1],
        url=row[2],
        published_at=row[3],
        metadata=dict(json.loads(row[4])),
        content_hash=row[5],
        char_count=int(row[6]),
        paragraph_count=int(row[7]),
        indexed_at=float(row[8]),
    )


def stored_article_from_row(row: Sequence) -> StoredArticle:
    """Row (id, title, url, published_at, text, metadata, content_hash, char_count, paragraph_count,
    indexed_at)."""
    article = ArticleInput(
        id=row[0],
        text=row[4],
        title=row[1],
        url=row[2],
        published_at=row[3],
        metadata=dict(json.loads(row[5])),
    )
    return StoredArticle(article=article, record=record_from_row(tuple(row[:4]) + tuple(row[5:])))
