"""Persistence and nearest-neighbour search for the detection core.

``Storage`` (see ``facade.py``) is the entry point: an article store (source of truth, embeddings
included) plus a vector index (a rebuildable cache), reconciled on open. Stores implement
``ArticleStoreBase``: SQLite in the data dir (``ArticleStore``), or PostgreSQL shared by several replicas
(``postgres_store.PostgresArticleStore``, imported only when used: psycopg is an optional extra).
"""

from .facade import DataDirInUseError, ReconcileReport, SearchHit, Storage
from .manifest import Manifest
from .store import ArticleStore, StoredArticle, UpsertOutcome, text_hash
from .store_base import ArticleStoreBase
from .vector_index import (
    INDEX_TYPES,
    CorruptIndexError,
    FaissVectorIndex,
    IndexLoadError,
    IndexOptions,
    VectorIndex,
)

__all__ = [
    "INDEX_TYPES",
    "ArticleStore",
    "ArticleStoreBase",
    "CorruptIndexError",
    "DataDirInUseError",
    "FaissVectorIndex",
    "IndexLoadError",
    "IndexOptions",
    "Manifest",
    "ReconcileReport",
    "SearchHit",
    "Storage",
    "StoredArticle",
    "UpsertOutcome",
    "VectorIndex",
    "text_hash",
]
