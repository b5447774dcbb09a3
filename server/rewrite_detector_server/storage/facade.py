"""``Storage``: the one object the detection core uses for persistence and nearest-neighbour search.

Durability contract:

1. Every write goes to the SQLite store first, in one fsynced transaction that also holds the embeddings.
   Once ``upsert``/``delete`` returns, the write survives ``kill -9``.
2. The FAISS index is then updated in memory, and snapshotted atomically every ``snapshot_every`` changed
   vectors and on ``close()``. Between snapshots the index file lags the store.
3. ``Storage.open`` reconciles the snapshot with the store: ids only in the index (deleted after the
   snapshot) are removed, ids only in the store (written after it) are re-added from stored embeddings.
   A missing, torn or mismatching snapshot is discarded and rebuilt the same way. Nothing is re-embedded.

With a shared store (``store_url``: PostgreSQL, ``postgres_store.py``) the same holds with a Milvus
server as the index, and the store's advisory locks make it hold across replicas: reconciling runs under
an exclusive lock, every write (store commit + index update) under a shared one plus a per-article lock.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, TYPE_CHECKING, NamedTuple

import numpy as np

from ..core.fingerprints import LexicalParams, lexical_candidates
from ..core.types import ArticleInput, ArticleRecord, Paragraph
from ..errors import IncompatibleIndexError
from .manifest import Manifest, check_compatible, read_manifest, write_manifest
from .store import ArticleStore, StoredArticle, UpsertOutcome
from .store_base import ArticleStoreBase
from .vector_index import (
    DEFAULT_INDEX_TYPE,
    INDEX_TYPES,
    FaissVectorIndex,
    IndexLoadError,
    IndexOptions,
    VectorIndex,
)

if TYPE_CHECKING:  # pymilvus is an optional extra, imported only when the milvus backend is chosen
    from .milvus_index import MilvusOptions

try:  # POSIX advisory locks; Windows has none, and there the data dir is simply not locked.
    import fcntl
except ImportError:  # pragma: no cover - exercised on Windows only
    fcntl = None  # type: ignore[assignment]

__all__ = ["DataDirInUseError", "ReconcileReport", "SearchHit", "Storage"]

log = logging.getLogger(__name__)

STORE_FILE = "store.sqlite3"
INDEX_FILE = "index.faiss"
LOCK_FILE = "lock"
# milvus-lite database used by the milvus backend when no URI is configured.
MILVUS_LITE_FILE = "milvus.db"
VECTOR_BACKENDS = ("faiss", "milvus")

_REBUILD_BATCH = 8192
# Embeddings are L2-normalised by the embedder; anything further off than float32 round-off is a bug
# upstream, and inner product would silently stop being cosine.
_NORM_TOLERANCE = 1e-3


class DataDirInUseError(RuntimeError):
    """Another process has the data directory open (two writers would corrupt the index snapshot)."""


class SearchHit(NamedTuple):
    score: float
    article_id: str
    paragraph_index: int


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    """What ``Storage.open`` found and did to bring the index in line with the store."""

    # "loaded": snapshot used; "created": new empty data dir; "rebuilt": snapshot missing or unusable.
    index_status: str
    reason: str
    store_vectors: int
    snapshot_vectors: int  # live vectors in the loaded snapshot (0 unless loaded)
    orphans_removed: int
    missing_added: int
    seconds: float

    @property
    def changed(self) -> bool:
        return self.index_status == "rebuilt" or bool(self.orphans_removed or self.missing_added)


class Storage:
    """Article store + vector index of one data directory. Thread-safe; use ``Storage.open``."""

    def __init__(
        self,
        data_dir: Path,
        store: ArticleStoreBase,
        index: VectorIndex,
        *,
        model_name: str,
        snapshot_every: int,
        lock_file: IO[bytes] | None,
    ) -> None:
        self._data_dir = data_dir
        self._store = store
        self._index = index
        self._model_name = model_name
        self._snapshot_every = snapshot_every
        self._lock_file = lock_file
        # Serialises writers across store + index, so two upserts of one article cannot apply their
        # index changes in the opposite order of their store commits (that would leave orphans).
        self._write_lock = threading.Lock()
        self._pending = 0  # vectors added/removed since the last snapshot
        # Set when an index update failed after its store commit (a Milvus outage): the index is
        # repaired from the store before its next use, so it cannot silently miss acknowledged writes.
        self._index_behind = False
        self._closed = False
        self.last_reconcile = ReconcileReport("created", "", 0, 0, 0, 0, 0.0)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        data_dir: Path,
        *,
        model_name: str,
        dimension: int,
        index_type: str = "",
        snapshot_every: int = 1000,
        index_options: IndexOptions | None = None,
        vector_backend: str = "faiss",
        milvus: MilvusOptions | None = None,
        store_url: str = "",
    ) -> Storage:
        """Open (creating if needed) a data directory, check its manifest and reconcile the index.

        ``vector_backend``: "faiss" (in-process, snapshotted to ``index.faiss``) or "milvus" (a Milvus
        collection, see ``milvus_index.py``; ``milvus.uri`` empty = milvus-lite in ``<data_dir>/milvus.db``).

        ``store_url``: empty = the SQLite store in the data dir; a PostgreSQL URL = a store that several
        replicas share (``postgres_store.py``), which needs a vector index they share too: a Milvus
        server (``milvus.uri`` ``http(s)://``). Checking the model and reconciling then run under the
        store's reconcile lock, one replica at a time.

        ``index_type``: empty = the type the data dir's manifest records (``flat`` for a new data dir).
        A type other than the recorded one rebuilds the index from the store in that type.

        Raises ``IncompatibleIndexError`` if the directory was built with another model or dimension
        (or the Milvus collection belongs to another data dir), and ``DataDirInUseError`` if another
        process has it open.
        """
        if index_type and index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {', '.join(INDEX_TYPES)}; got {index_type!r}")
        if vector_backend not in VECTOR_BACKENDS:
            raise ValueError(
                f"vector_backend must be one of {', '.join(VECTOR_BACKENDS)}; got {vector_backend!r}"
            )
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if store_url:
            _check_shared_index(vector_backend, milvus)
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        lock_file = _lock_data_dir(data_dir)
        store: ArticleStoreBase | None = None
        try:
            manifest = _check_manifest(data_dir, model_name=model_name, dimension=dimension)
            # Following the data dir by default: a restart that forgets --index-type must not replace a
            # trained million-vector IVF index with a flat one (a rebuild, and the trained lists lost).
            index_type = index_type or _recorded_index_type(manifest)
            store = _open_store(data_dir, store_url, dimension)
            with store.reconcile_lock():
                _check_store_meta(store, data_dir, model_name=model_name, dimension=dimension)
                if manifest is None or manifest.index_type != index_type:
                    created_at = manifest.created_at if manifest else time.time()
                    fresh = Manifest.for_model(model_name, dimension, index_type)
                    write_manifest(data_dir, dataclasses.replace(fresh, created_at=created_at))
                if store.get_meta("model_name") is None:
                    store.set_meta("model_name", model_name)
                    store.set_meta("dimension", str(dimension))
                index, report = _open_and_reconcile(
                    data_dir, store, dimension, index_type, index_options, vector_backend, milvus
                )
        except BaseException:
            if store is not None:
                store.close()
            _unlock(lock_file)
            raise
        storage = cls(
            data_dir,
            store,
            index,
            model_name=model_name,
            snapshot_every=snapshot_every,
            lock_file=lock_file,
        )
        storage.last_reconcile = report
        return storage

    # ----------------------------------------------------------------- properties

    @property
    def data_dir(self) -> Path:
        return self._data_dir

    @property
    def model_name(self) -> str:
        return self._model_name

    @property
    def dimension(self) -> int:
        return self._index.dimension

    @property
    def index_type(self) -> str:
        return self._index.index_type

    @property
    def index(self) -> VectorIndex:
        return self._index

    @property
    def store_location(self) -> str:
        """Where the article store is: the SQLite file, or the shared database (without password)."""
        return self._store.location

    @property
    def vector_backend(self) -> str:
        return "faiss" if isinstance(self._index, FaissVectorIndex) else "milvus"

    @property
    def index_ntotal(self) -> int:
        """Live vectors in the index (equals ``count_vectors()`` once writes have been applied)."""
        return self._index.ntotal

    # -------------------------------------------------------------------- writes

    def upsert(
        self,
        article: ArticleInput,
        content_hash: str,
        paragraphs: Sequence[Paragraph],
        embeddings: np.ndarray,
    ) -> UpsertOutcome:
        """Index or replace an article; re-submitting the same content is a no-op (``unchanged``).

        ``embeddings``: L2-normalised float32, one row per content paragraph, in paragraph order.
        """
        vectors = self._check_embeddings(embeddings)
        with self._write_lock:
            self._check_open()
            self._repair_if_behind()
            with self._store.write_guard(article.id):
                outcome = self._store.upsert(article, content_hash, paragraphs, vectors)
                if not outcome.unchanged:
                    self._apply(outcome.removed_ids, outcome.added_ids, vectors)
        return outcome

    def delete(self, article_id: str) -> np.ndarray:
        """Delete an article; returns its removed vector ids. ``NotFoundError`` if the id is unknown."""
        with self._write_lock:
            self._check_open()
            self._repair_if_behind()
            with self._store.write_guard(article_id):
                removed = self._store.delete(article_id)
                self._apply(removed, removed[:0], None)
        return removed

    def snapshot(self) -> None:
        """Save the index now (it is also saved every ``snapshot_every`` changes and on close)."""
        with self._write_lock:
            self._check_open()
            self._save()

    def close(self) -> None:
        """Snapshot the index if it changed, then release the store, the index and the directory lock."""
        with self._write_lock:
            if self._closed:
                return
            self._closed = True
            try:
                if self._pending:
                    self._save()
            finally:
                self._store.close()
                self._index.close()
                _unlock(self._lock_file)
                self._lock_file = None

    def __enter__(self) -> Storage:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --------------------------------------------------------------------- reads

    def search(self, queries: np.ndarray, k: int) -> list[list[SearchHit]]:
        """Top-k paragraphs per query (cosine, best first) as (score, article_id, paragraph_index).

        A hit whose article was deleted between the index search and the lookup is dropped, so a row
        can hold fewer than ``k`` hits.
        """
        if self._index_behind:  # a plain read of a flag on the hot path; the repair is rare
            with self._write_lock:
                self._check_open()
                self._repair_if_behind()
        scores, ids = self._index.search(queries, k)
        found = ids[ids >= 0]
        located = self._store.locate(np.unique(found)) if found.size else {}
        out: list[list[SearchHit]] = []
        for row_scores, row_ids in zip(scores.tolist(), ids.tolist(), strict=True):
            hits = []
            for score, vid in zip(row_scores, row_ids, strict=True):
                where = located.get(vid)
                if where is not None:
                    hits.append(SearchHit(score, where[0], where[1]))
            out.append(hits)
        return out

    def lexical_candidates(
        self, paragraph_fingerprints: Sequence[frozenset[int]], params: LexicalParams
    ) -> list[tuple[str, int]]:
        """Articles sharing rare word pairs with a submitted paragraph (see core/fingerprints.py)."""
        return lexical_candidates(
            paragraph_fingerprints, self._store.fingerprint_postings, self._store.locate, params
        )

    def get(self, article_id: str) -> StoredArticle | None:
        return self._store.get(article_id)

    def paragraphs(self, article_id: str) -> list[Paragraph]:
        return self._store.paragraphs(article_id)

    def content_vectors(self, article_id: str) -> tuple[list[Paragraph], np.ndarray]:
        return self._store.content_vectors(article_id)

    def list_records(self, page_size: int, after_id: str | None = None) -> list[ArticleRecord]:
        return self._store.list_records(page_size, after_id)

    def cached_embeddings(self, text_hashes: Sequence[str]) -> dict[str, np.ndarray]:
        return self._store.cached_embeddings(text_hashes)

    def count_articles(self) -> int:
        return self._store.count_articles()

    def count_paragraphs(self) -> int:
        return self._store.count_paragraphs()

    def count_vectors(self) -> int:
        return self._store.count_vectors()

    # ----------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"storage for {self._data_dir} is closed")

    def _check_embeddings(self, embeddings: np.ndarray) -> np.ndarray:
        arr = np.asarray(embeddings)
        if arr.size == 0:  # an all-boilerplate article: accept np.empty(0) as well as (0, d)
            arr = arr.reshape(0, self.dimension)
        if arr.ndim != 2 or arr.shape[1] != self.dimension:
            raise ValueError(f"embeddings must have shape (n, {self.dimension}), got {arr.shape}")
        vectors = np.ascontiguousarray(arr, dtype=np.float32)
        if vectors.size:
            norms = np.linalg.norm(vectors, axis=1)
            if not np.all(np.abs(norms - 1.0) <= _NORM_TOLERANCE):
                raise ValueError("embeddings must be L2-normalised (inner product is used as cosine)")
        return vectors

    def _apply(self, removed: np.ndarray, added: np.ndarray, vectors: np.ndarray | None) -> None:
        """Mirror a committed store change into the index. Caller holds ``_write_lock``."""
        try:
            if removed.size:
                self._index.remove(removed)
            if added.size and vectors is not None:
                self._index.add(added, vectors)
        except Exception:
            # The store already has the change; the index catches up from it before its next use.
            self._index_behind = True
            log.exception("index update failed after store commit data_dir=%s", self._data_dir)
            raise
        self._pending += int(removed.size + added.size)
        if self._snapshot_every > 0 and self._pending >= self._snapshot_every:
            self._save()

    def _repair_if_behind(self) -> None:
        """After a failed index update, bring the index in line with the store. Caller holds
        ``_write_lock``. Raises (and stays behind) while the index keeps failing, so writes fail before
        they reach the store."""
        if not self._index_behind:
            return
        # A shared index: other replicas must not write between reading the ids and catching up.
        with self._store.reconcile_lock():
            index_ids, store_ids = self._index.ids(), self._store.all_vector_ids()
            orphans = np.setdiff1d(index_ids, store_ids)
            missing = np.setdiff1d(store_ids, index_ids)
            _catch_up(self._index, self._store, orphans, missing, full=False)
        self._index_behind = False
        self._pending += int(orphans.size + missing.size)
        log.warning(
            "index repaired after a failed update data_dir=%s orphans_removed=%d missing_added=%d",
            self._data_dir,
            orphans.size,
            missing.size,
        )

    def _save(self) -> None:
        self._index.save()
        self._pending = 0


# ---------------------------------------------------------------------- helpers


def _recorded_index_type(manifest: Manifest | None) -> str:
    if manifest is not None and manifest.index_type in INDEX_TYPES:
        return manifest.index_type
    return DEFAULT_INDEX_TYPE


def _check_manifest(data_dir: Path, *, model_name: str, dimension: int) -> Manifest | None:
    try:
        manifest = read_manifest(data_dir)
    except ValueError as err:
        # Only a damaged disk tears an atomically written file; the store's own copy of the model name
        # (checked next) still guards against mixing models, so rewrite it rather than refuse to start.
        log.warning("manifest unreadable, rewriting it data_dir=%s error=%s", data_dir, err)
        return None
    if manifest is not None:
        check_compatible(manifest, model_name=model_name, dimension=dimension, data_dir=data_dir)
    return manifest


def _open_store(data_dir: Path, store_url: str, dimension: int) -> ArticleStoreBase:
    if not store_url:
        return ArticleStore(data_dir / STORE_FILE, dimension=dimension)
    # psycopg is an optional extra ([shared]): imported only when a shared store is configured.
    from .postgres_store import PostgresArticleStore

    return PostgresArticleStore(store_url, dimension=dimension)


def _check_shared_index(vector_backend: str, milvus: MilvusOptions | None) -> None:
    """A store shared by replicas needs an index they share: FAISS is per process, and milvus-lite is a
    file one process opens."""
    uri = milvus.uri if milvus is not None else ""
    if vector_backend != "milvus" or not uri.lower().startswith(("http://", "https://")):
        raise ValueError(
            "a shared article store (store_url) needs a shared vector index: vector_backend 'milvus' "
            f"with a Milvus server URI http(s)://host:port; got vector_backend {vector_backend!r}, "
            f"milvus uri {uri!r}"
        )


def _check_store_meta(store: ArticleStoreBase, data_dir: Path, *, model_name: str, dimension: int) -> None:
    """Second line of defence: the store records its model too, in case the manifest was lost. For a
    shared store it is the only line: every replica must embed with the model the store was built with."""
    stored_model = store.get_meta("model_name")
    if store.shared and stored_model is not None:
        stored_dim = int(store.get_meta("dimension") or 0)
        if (stored_model, stored_dim) != (model_name, dimension):
            raise IncompatibleIndexError(
                f"the shared store {store.location} was built with model {stored_model!r} "
                f"({stored_dim}-d vectors), but this replica is configured with model {model_name!r} "
                f"({dimension}-d). Start every replica with model {stored_model!r} (--model / "
                f"REWRITE_DETECTOR_MODEL), or point --store-url at another database, with its own "
                f"--milvus-collection, to build a separate index with {model_name!r}."
            )
        return
    if stored_model is None:
        if store.count_vectors():
            raise IncompatibleIndexError(
                f"data dir {data_dir} holds vectors but neither a manifest nor a recorded model, so it "
                f"cannot be checked against model {model_name!r}; use another --data-dir"
            )
        return
    stored_dim = int(store.get_meta("dimension") or 0)
    existing = Manifest(model_name=stored_model, dimension=stored_dim, index_type="")
    check_compatible(existing, model_name=model_name, dimension=dimension, data_dir=data_dir)


def _open_and_reconcile(
    data_dir: Path,
    store: ArticleStoreBase,
    dimension: int,
    index_type: str,
    options: IndexOptions | None,
    vector_backend: str = "faiss",
    milvus: MilvusOptions | None = None,
) -> tuple[VectorIndex, ReconcileReport]:
    started = time.monotonic()
    index: VectorIndex
    if vector_backend == "milvus":
        index, status, reason, where = _open_milvus(data_dir, store, dimension, index_type, options, milvus)
    else:
        index, status, reason, where = _open_faiss(data_dir, dimension, index_type, options)

    index_ids = index.ids()
    # Sort + neighbour compare: np.unique on 1M ids took 0.9 s of a 3 s start-up (numpy 2 hashes them).
    ordered = np.sort(index_ids)
    if ordered.size and bool(np.any(ordered[1:] == ordered[:-1])):
        reason = f"{where} holds duplicate vector ids"
        log.warning("index inconsistent, rebuilding from the store index=%s reason=%s", where, reason)
        index = _emptied(index, options)
        index_ids = index.ids()
        status = "rebuilt"
    snapshot_vectors = int(index_ids.size) if status == "loaded" else 0

    store_ids = store.all_vector_ids()
    if status == "created" and store_ids.size:
        status, reason = "rebuilt", f"{where} is missing"

    orphans = np.setdiff1d(index_ids, store_ids, assume_unique=True)
    missing = np.setdiff1d(store_ids, index_ids, assume_unique=True)
    try:
        _catch_up(index, store, orphans, missing, full=missing.size == store_ids.size)
    except ValueError as err:
        # The snapshot refuses a stored id (an HNSW tombstone for a live vector): it contradicts the
        # store, so start from an empty index rather than trust any of it.
        reason = f"{where} contradicts the store: {err}"
        log.warning("index inconsistent, rebuilding from the store index=%s reason=%s", where, reason)
        index = _emptied(index, options)
        status, snapshot_vectors, orphans, missing = "rebuilt", 0, orphans[:0], store_ids
        _catch_up(index, store, orphans, missing, full=True)

    report = ReconcileReport(
        index_status=status,
        reason=reason,
        store_vectors=int(store_ids.size),
        snapshot_vectors=snapshot_vectors,
        orphans_removed=int(orphans.size),
        missing_added=int(missing.size),
        seconds=time.monotonic() - started,
    )
    if report.changed or status == "created":
        # Persist the repaired index so the next start does not redo the work.
        index.save()
    log.info(
        "storage opened data_dir=%s backend=%s index_type=%s status=%s store_vectors=%d "
        "snapshot_vectors=%d orphans_removed=%d missing_added=%d seconds=%.3f",
        data_dir,
        vector_backend,
        index_type,
        report.index_status,
        report.store_vectors,
        report.snapshot_vectors,
        report.orphans_removed,
        report.missing_added,
        report.seconds,
    )
    return index, report


def _open_faiss(
    data_dir: Path, dimension: int, index_type: str, options: IndexOptions | None
) -> tuple[FaissVectorIndex, str, str, str]:
    """Load the FAISS snapshot: (index, status, reason, description for messages)."""
    path = data_dir / INDEX_FILE
    status, reason = "loaded", ""
    try:
        index = FaissVectorIndex.load(path, dimension, index_type, options=options)
    except FileNotFoundError:
        index = FaissVectorIndex(dimension, index_type, path=path, options=options)
        status = "created"
    except IndexLoadError as err:
        # Torn, corrupt, or of another type/dimension: never serve it; the store has everything.
        reason = str(err)
        log.warning("index snapshot unusable, rebuilding from the store path=%s reason=%s", path, reason)
        FaissVectorIndex.discard(path)
        index = FaissVectorIndex(dimension, index_type, path=path, options=options)
        status = "rebuilt"
    return index, status, reason, str(path)


def _open_milvus(
    data_dir: Path,
    store: ArticleStoreBase,
    dimension: int,
    index_type: str,
    options: IndexOptions | None,
    milvus: MilvusOptions | None,
) -> tuple[VectorIndex, str, str, str]:
    """Connect to the store's Milvus collection: (index, status, reason, description for messages)."""
    from .milvus_index import MilvusOptions, MilvusVectorIndex

    milvus = milvus or MilvusOptions()
    if not milvus.uri:
        milvus = dataclasses.replace(milvus, uri=str(data_dir / MILVUS_LITE_FILE))
    # The collection is bound to this store (reconciling another store's collection would delete its
    # vectors), so the store needs a stable identity; it is created once and kept in its meta table.
    store_id = store.get_meta("store_id")
    if store_id is None:
        store_id = uuid.uuid4().hex
        store.set_meta("store_id", store_id)
    index = MilvusVectorIndex(milvus, dimension, index_type, owner=store_id, index_options=options)
    return index, index.open_status, index.open_reason, index.location


def _emptied(index: VectorIndex, options: IndexOptions | None) -> VectorIndex:
    """An empty index of the same backend, type and location, to be refilled from the store."""
    if isinstance(index, FaissVectorIndex):
        index.close()
        return FaissVectorIndex(index.dimension, index.index_type, path=index.path, options=options)
    index.clear()  # type: ignore[attr-defined]  # MilvusVectorIndex: drop and recreate the collection
    return index


def _catch_up(
    index: VectorIndex, store: ArticleStoreBase, orphans: np.ndarray, missing: np.ndarray, *, full: bool
) -> None:
    """Remove ``orphans`` from the index and add ``missing`` from the store's embeddings."""
    if orphans.size:
        index.remove(orphans)
    if not missing.size:
        return
    if full:
        # Everything is missing: stream the store in id order instead of looking ids up.
        bulk = index.regrow_deferred() if isinstance(index, FaissVectorIndex) else contextlib.nullcontext()
        with bulk:
            for ids, vectors in store.iter_vectors(_REBUILD_BATCH):
                index.add(ids, vectors)
        return
    for start in range(0, missing.size, _REBUILD_BATCH):
        ids, vectors = store.vectors_by_id(missing[start : start + _REBUILD_BATCH])
        index.add(ids, vectors)


def _lock_data_dir(data_dir: Path) -> IO[bytes] | None:
    if fcntl is None:
        return None
    path = data_dir / LOCK_FILE
    fh = open(path, "a+b")  # noqa: SIM115 - held open for the life of the Storage
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        fh.close()
        raise DataDirInUseError(
            f"data dir {data_dir} is in use by another rewrite-detector process (lock {path}); "
            f"stop that process or use another --data-dir"
        ) from err
    # Record the holder for humans; the lock itself is the flock, released by the kernel on exit.
    with contextlib.suppress(OSError):
        fh.truncate(0)
        fh.write(f"{os.getpid()}\n".encode())
        fh.flush()
    return fh


def _unlock(fh: IO[bytes] | None) -> None:
    if fh is None:
        return
    with contextlib.suppress(OSError):
        if fcntl is not None:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    fh.close()
