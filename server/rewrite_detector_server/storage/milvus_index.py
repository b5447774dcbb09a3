"""Milvus implementation of ``VectorIndex``: the vectors live in a Milvus collection, not in this process.

One collection holds one data directory's vectors: an INT64 primary key (the store's vector id) and a
FLOAT_VECTOR of the model's dimension, searched by inner product (cosine on the L2-normalised
embeddings). The ``index_type`` maps to Milvus' own index of the same kind: ``flat`` -> FLAT, ``hnsw`` ->
HNSW, ``ivf-sq8`` -> IVF_SQ8 (Milvus trains IVF per sealed segment itself).

``uri`` selects the deployment, through pymilvus' own rule:

* a local path ending in ``.db`` (default: ``<data_dir>/milvus.db``) runs milvus-lite embedded in this
  process — no server to operate, same API;
* ``http(s)://host:19530`` connects to a Milvus standalone server or cluster (``token`` = ``user:password``
  or an API key).

The article store stays the source of truth (see ``facade.py``): on open the facade reconciles this
collection with it exactly as it does a FAISS snapshot. Because reconciliation deletes ids the store does
not know, a collection is *bound* to the store that created it (the store's id is saved as a collection
property) and opening it from another data directory is refused instead of silently emptying it.

Consistency: the collection is created with ``consistency_level="Strong"``, so a search sees every
write acknowledged before it (an article is findable as soon as ``IndexArticle`` returns).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import numpy as np
from pymilvus import DataType, MilvusClient, MilvusException

from ..errors import IncompatibleIndexError, IndexUnavailableError
from .vector_index import INDEX_TYPES, IndexOptions

__all__ = ["DEFAULT_COLLECTION", "ForeignCollectionError", "MilvusOptions", "MilvusVectorIndex", "redact_uri"]

log = logging.getLogger(__name__)


def _route_pymilvus_logs_to_root() -> None:
    """pymilvus configures its own stderr handlers at import, with ``propagate=False``: its lines would
    bypass the service's key=value format and request ids. Hand its records back to the root logger
    (levels stay as pymilvus set them)."""
    for name in ("pymilvus", "pymilvus.milvus_client", "pymilvus.bulk_writer"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
        logger.propagate = True


_route_pymilvus_logs_to_root()

DEFAULT_COLLECTION = "rewrite_detector"

_ID_FIELD = "id"
_VECTOR_FIELD = "vector"
_OWNER_PROPERTY = "rewrite_detector.store_id"
_INDEX_TYPE_PROPERTY = "rewrite_detector.index_type"
_MILVUS_INDEX_TYPE = {"flat": "FLAT", "hnsw": "HNSW", "ivf-sq8": "IVF_SQ8"}
# Milvus caps nq (queries per request) and topk at 16384; stay well below so one request stays small.
_QUERIES_PER_SEARCH = 1024
_ROWS_PER_INSERT = 2048
# Ids per "id in [...]" expression: the expression is parsed server-side, keep it short.
_IDS_PER_EXPRESSION = 1000
_IDS_PER_PAGE = 10_000
# Milvus' ErrCollectionNotLoaded (milvus-lite uses the same code).
_COLLECTION_NOT_LOADED = 101

_T = TypeVar("_T")


class ForeignCollectionError(IncompatibleIndexError):
    """The collection exists but was not created for this data directory's store; never touch it."""


@dataclass(frozen=True, slots=True, repr=False)
class MilvusOptions:
    """Where the Milvus collection lives. ``uri`` empty = milvus-lite file inside the data directory."""

    uri: str = ""
    collection: str = DEFAULT_COLLECTION
    token: str = ""  # "user:password" or an API key; never in a repr or a log line
    timeout_seconds: float = 30.0

    def __repr__(self) -> str:
        return (
            f"MilvusOptions(uri={redact_uri(self.uri)!r}, collection={self.collection!r}, "
            f"token={'***' if self.token else ''!r}, timeout_seconds={self.timeout_seconds})"
        )

    def __post_init__(self) -> None:
        name = self.collection
        # Milvus' own rule, checked here so a typo fails at start-up with the setting's name in it.
        if not name or not (name[0].isalpha() or name[0] == "_") or not name.replace("_", "").isalnum():
            raise ValueError(
                f"milvus collection name {name!r} is invalid: use letters, digits and underscores, "
                "starting with a letter or underscore"
            )
        if self.timeout_seconds <= 0:
            raise ValueError(f"milvus timeout must be positive, got {self.timeout_seconds}")


def is_local_uri(uri: str) -> bool:
    """pymilvus treats anything that is not a URL as a milvus-lite database path."""
    return urlsplit(uri).scheme.lower() not in ("http", "https", "tcp", "grpc", "unix")


def redact_uri(uri: str) -> str:
    """The URI without any ``user:password@`` part, for log lines and error messages."""
    parts = urlsplit(uri)
    if parts.username is None and parts.password is None:
        return uri
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


class _LiteServers:
    """Reference counts of the milvus-lite servers this process started, one per ``.db`` path.

    pymilvus starts an in-process milvus-lite server the first time a path is opened and keeps it until
    the interpreter exits. Releasing it when the last index on that path closes makes a close/reopen a
    real reopen from disk (as a process restart would be) and frees the files for another process.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def acquire(self, path: str) -> None:
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1

    def release(self, path: str) -> None:
        with self._lock:
            left = self._counts.get(path, 0) - 1
            if left > 0:
                self._counts[path] = left
                return
            self._counts.pop(path, None)
        from milvus_lite.server_manager import server_manager_instance

        server_manager_instance.release_server(path)


_LITE_SERVERS = _LiteServers()


class MilvusVectorIndex:
    """``VectorIndex`` over one Milvus collection. Thread-safe (pymilvus' gRPC channel is).

    Opening creates the collection if needed and records how it went in ``open_status`` ("created",
    "loaded", or "rebuilt" when an existing collection of this store had another dimension or index type
    and was dropped; the facade then refills it from the store) and ``open_reason``.
    """

    def __init__(
        self,
        options: MilvusOptions,
        dimension: int,
        index_type: str = "flat",
        *,
        owner: str,
        index_options: IndexOptions | None = None,
    ) -> None:
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {', '.join(INDEX_TYPES)}; got {index_type!r}")
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if not options.uri:
            raise ValueError("MilvusOptions.uri is empty: give a .db path (milvus-lite) or http://host:port")
        if not owner:
            raise ValueError("owner (the store id) must be non-empty")
        self._options = options
        self._dimension = dimension
        self._index_type = index_type
        self._owner = owner
        self._index_options = index_options or IndexOptions()
        self._collection = options.collection
        self._timeout = options.timeout_seconds
        self._closed = False
        self._lite_path: str | None = None
        self.open_status = "loaded"
        self.open_reason = ""
        started = time.monotonic()
        with self._milvus_errors("open the collection"):
            self._client = self._connect()
            try:
                self._ensure_collection()
            except BaseException:
                self._disconnect()
                raise
        log.info(
            "milvus collection opened uri=%s collection=%s status=%s index_type=%s seconds=%.3f",
            redact_uri(options.uri),
            self._collection,
            self.open_status,
            index_type,
            time.monotonic() - started,
        )

    # -------------------------------------------------------------- properties

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def index_type(self) -> str:
        return self._index_type

    @property
    def location(self) -> str:
        """Human description for log lines and errors (credentials removed)."""
        return f"milvus collection {self._collection!r} at {redact_uri(self._options.uri)}"

    @property
    def ntotal(self) -> int:
        self._check_open()
        with self._milvus_errors("count vectors"):
            rows = self._loaded(
                self._client.query,
                self._collection,
                filter="",
                output_fields=["count(*)"],
                timeout=self._timeout,
            )
        return int(rows[0]["count(*)"]) if rows else 0

    # ------------------------------------------------------------------ writes

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        ids_arr = _as_ids(ids)
        vecs = self._as_vectors(vectors, "vectors")
        if vecs.shape[0] != ids_arr.shape[0]:
            raise ValueError(f"{ids_arr.shape[0]} ids for {vecs.shape[0]} vectors")
        if ids_arr.size == 0:
            return
        if np.any(ids_arr < 0):
            raise ValueError("vector ids must be >= 0 (-1 marks an empty search slot)")
        self._check_open()
        for start in range(0, ids_arr.size, _ROWS_PER_INSERT):
            rows = [
                {_ID_FIELD: int(vid), _VECTOR_FIELD: vec}
                for vid, vec in zip(
                    ids_arr[start : start + _ROWS_PER_INSERT].tolist(),
                    vecs[start : start + _ROWS_PER_INSERT],
                    strict=True,
                )
            ]
            with self._milvus_errors("add vectors"):
                self._client.insert(self._collection, rows, timeout=self._timeout)

    def remove(self, ids: np.ndarray) -> int:
        ids_arr = np.unique(_as_ids(ids))
        if ids_arr.size == 0:
            return 0
        self._check_open()
        # Milvus' delete reports the ids it was given, not the rows it removed; count the present ones
        # first so the return value means what the protocol says.
        with self._milvus_errors("remove vectors"):
            present = self._present(ids_arr)
            if present:
                self._client.delete(self._collection, ids=present, timeout=self._timeout)
        return len(present)

    def clear(self) -> None:
        """Drop every vector (drop and recreate the collection); the facade refills it from the store."""
        self._check_open()
        with self._milvus_errors("recreate the collection"):
            self._client.drop_collection(self._collection, timeout=self._timeout)
            self._create_collection()

    # ------------------------------------------------------------------- reads

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        q = self._as_vectors(queries, "queries")
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        labels = np.full((q.shape[0], k), -1, dtype=np.int64)
        if q.shape[0] == 0:
            return scores, labels
        self._check_open()
        params = self._search_params(k)
        for start in range(0, q.shape[0], _QUERIES_PER_SEARCH):
            batch = q[start : start + _QUERIES_PER_SEARCH]
            with self._milvus_errors("search"):
                results = self._loaded(
                    self._client.search,
                    self._collection,
                    data=list(batch),
                    limit=min(k, 16_384),
                    output_fields=[_ID_FIELD],  # without it milvus-lite returns the vectors too
                    search_params=params,
                    timeout=self._timeout,
                )
            for row, hits in enumerate(results, start=start):
                for col, hit in enumerate(hits[:k]):
                    labels[row, col] = int(hit["id"])
                    scores[row, col] = float(hit["distance"])
        return scores, labels

    def ids(self) -> np.ndarray:
        self._check_open()
        parts: list[np.ndarray] = []
        with self._milvus_errors("list vector ids"):
            iterator = self._loaded(
                self._client.query_iterator,
                self._collection,
                batch_size=_IDS_PER_PAGE,
                output_fields=[_ID_FIELD],
                timeout=self._timeout,
            )
            try:
                while page := iterator.next():
                    parts.append(
                        np.fromiter((row[_ID_FIELD] for row in page), dtype=np.int64, count=len(page))
                    )
            finally:
                iterator.close()
        return np.sort(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)

    # --------------------------------------------------------------- lifecycle

    def save(self) -> None:
        """Flush: seal the growing segment so Milvus persists it. Acknowledged inserts are already in
        Milvus' write-ahead log; flushing bounds replay work, it is not needed for durability."""
        self._check_open()
        with self._milvus_errors("flush"):
            self._client.flush(self._collection, timeout=self._timeout)

    def close(self) -> None:
        """Disconnect; the collection and its vectors stay in Milvus."""
        if self._closed:
            return
        self._closed = True
        self._disconnect()

    # ---------------------------------------------------------------- internals

    def _loaded(self, call: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        """``call(*args, **kwargs)``, loading the collection and retrying once if Milvus says it is not
        loaded (milvus-lite, and Milvus after some restarts, come back with collections released)."""
        try:
            return call(*args, **kwargs)
        except MilvusException as err:
            if err.code != _COLLECTION_NOT_LOADED:
                raise
            log.info("milvus collection not loaded, loading it index=%s", self.location)
            self._client.load_collection(self._collection, timeout=self._timeout)
            return call(*args, **kwargs)

    @contextlib.contextmanager
    def _milvus_errors(self, action: str) -> Iterator[None]:
        """Milvus failures become ``IndexUnavailableError`` (UNAVAILABLE to gRPC callers, who may retry).

        Every failure is treated as "unavailable", including ones that are not about connectivity:
        from the caller's side the index cannot serve the request either way, and the reason Milvus
        gave is kept in the message and logged.
        """
        try:
            yield
        except MilvusException as err:
            log.warning("milvus call failed action=%r index=%s error=%s", action, self.location, err.message)
            raise IndexUnavailableError(
                f"the vector index ({self.location}) could not {action}: {err.message}. "
                "Check that Milvus is up and reachable; retry later"
            ) from err

    def _connect(self) -> MilvusClient:
        uri = self._options.uri
        if is_local_uri(uri):
            # pymilvus resolves the .db path relative to the working directory; pin it now.
            path = Path(uri).expanduser().resolve()
            if path.suffix != ".db":
                raise ValueError(f"milvus-lite needs a path ending in .db, got {uri!r}")
            path.parent.mkdir(parents=True, exist_ok=True)
            uri = str(path)
            _LITE_SERVERS.acquire(uri)
            self._lite_path = uri
        try:
            # A milvus-lite server lives only while an index holds its path (_LiteServers), so its
            # connection must not outlive it either: pymilvus keeps shared connections in a registry keyed
            # by address and never drops them, and when a later lite server came up on a recycled port,
            # pymilvus "recovered" the dead server's idle connection instead of connecting anew, and the
            # reconnect was refused while the new server was still starting (a CI run under load).
            # A dedicated connection is closed with the client.
            return MilvusClient(
                uri=uri,
                token=self._options.token,
                timeout=self._timeout,
                dedicated=self._lite_path is not None,
            )
        except BaseException:
            self._release_lite()
            raise

    def _disconnect(self) -> None:
        try:
            with contextlib.suppress(Exception):
                self._client.close()
        finally:
            self._release_lite()

    def _release_lite(self) -> None:
        if self._lite_path is not None:
            path, self._lite_path = self._lite_path, None
            _LITE_SERVERS.release(path)

    def _ensure_collection(self) -> None:
        client = self._client
        if not client.has_collection(self._collection, timeout=self._timeout):
            self._create_collection()
            self.open_status = "created"
            return
        described = client.describe_collection(self._collection, timeout=self._timeout)
        properties = described.get("properties") or {}
        owner = properties.get(_OWNER_PROPERTY)
        if owner != self._owner:
            whose = f"the data dir with store id {owner}" if owner else "another application"
            raise ForeignCollectionError(
                f"{self.location} was created by {whose}, not by this data dir (store id {self._owner}); "
                "opening it would delete vectors this store does not know. Give each data dir its own "
                "collection (--milvus-collection / REWRITE_DETECTOR_MILVUS_COLLECTION), or drop that "
                "collection if its data dir is gone for good"
            )
        problem = self._schema_problem(described, properties)
        if problem:
            log.warning("milvus collection unusable, recreating it %s reason=%s", self.location, problem)
            client.drop_collection(self._collection, timeout=self._timeout)
            self._create_collection()
            self.open_status, self.open_reason = "rebuilt", problem
            return
        client.load_collection(self._collection, timeout=self._timeout)

    def _schema_problem(self, described: dict[str, Any], properties: dict[str, Any]) -> str:
        vector_fields = [f for f in described.get("fields", []) if f.get("name") == _VECTOR_FIELD]
        dim = int(vector_fields[0].get("params", {}).get("dim", 0)) if vector_fields else 0
        if dim != self._dimension:
            return f"{self.location} has dimension {dim}, the model has {self._dimension}"
        saved_type = properties.get(_INDEX_TYPE_PROPERTY)
        if saved_type != self._index_type:
            return f"{self.location} has index type {saved_type!r}, configured {self._index_type!r}"
        return ""

    def _create_collection(self) -> None:
        client = self._client
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field(_ID_FIELD, DataType.INT64, is_primary=True)
        schema.add_field(_VECTOR_FIELD, DataType.FLOAT_VECTOR, dim=self._dimension)
        index_params = client.prepare_index_params()
        index_params.add_index(
            _VECTOR_FIELD,
            index_type=_MILVUS_INDEX_TYPE[self._index_type],
            metric_type="IP",
            params=self._build_params(),
        )
        client.create_collection(
            self._collection,
            schema=schema,
            consistency_level="Strong",
            properties={_OWNER_PROPERTY: self._owner, _INDEX_TYPE_PROPERTY: self._index_type},
            timeout=self._timeout,
        )
        # sync=False: the collection is empty, there is nothing to wait for, and the wait's timestamp
        # call (AllocTimestamp) is one milvus-lite does not implement.
        client.create_index(self._collection, index_params, timeout=self._timeout, sync=False)
        client.load_collection(self._collection, timeout=self._timeout)

    def _build_params(self) -> dict[str, int]:
        opts = self._index_options
        if self._index_type == "hnsw":
            return {"M": opts.hnsw_m, "efConstruction": opts.hnsw_ef_construction}
        if self._index_type == "ivf-sq8":
            return {"nlist": opts.ivf_nlist or 1024}
        return {}

    def _search_params(self, k: int) -> dict[str, Any]:
        opts = self._index_options
        if self._index_type == "hnsw":
            return {"metric_type": "IP", "params": {"ef": max(opts.hnsw_ef_search, k)}}
        if self._index_type == "ivf-sq8":
            return {"metric_type": "IP", "params": {"nprobe": opts.ivf_nprobe}}
        return {"metric_type": "IP"}

    def _present(self, ids: np.ndarray) -> list[int]:
        found: list[int] = []
        values = ids.tolist()
        for start in range(0, len(values), _IDS_PER_EXPRESSION):
            chunk = values[start : start + _IDS_PER_EXPRESSION]
            rows = self._loaded(
                self._client.query,
                self._collection,
                ids=chunk,
                output_fields=[_ID_FIELD],
                timeout=self._timeout,
            )
            found.extend(int(row[_ID_FIELD]) for row in rows)
        return sorted(set(found))

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("vector index is closed")

    def _as_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.ndim != 2 or arr.shape[1] != self._dimension:
            raise ValueError(f"{what} must have shape (n, {self._dimension}), got {arr.shape}")
        return np.ascontiguousarray(arr, dtype=np.float32)


def _as_ids(ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)
