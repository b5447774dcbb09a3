"""Persistence and nearest-neighbour search for the detection core.

``Storage`` (see ``facade.py``) is the entry point: a SQLite article store (source of truth, embeddings
included) plus a FAISS vector index (a rebuildable cache), reconciled on open.
"""

from .facade import DataDirInUseError, ReconcileReport, SearchHit, Storage
from .manifest import Manifest
from .store import ArticleStore, StoredArticle, UpsertOutcome, text_hash
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
