"""An on-disk embedding cache for benchmark runs: an `Embedder` wrapper keyed by model + text hash.

Embedding the whole PAN 2013 corpus (~5,000 documents, ~70,000 paragraphs) takes hours on two shared
cores; tuning runs re-use the same paragraphs, so each text is embedded once per model, ever. SQLite
(WAL) rather than numpy files because several worker processes read it while the main process writes.
Bench-only: the service has its own embedding store (storage/store.py).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from rewrite_detector_models.embedder import Embedder

_CHUNK = 500  # host parameters per SQL statement, well under SQLite's limit


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class EmbeddingCache:
    """SQLite file of (model, text hash) -> float32 vector, plus each model's dimension."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=120, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS vectors (model TEXT NOT NULL, text_hash BLOB NOT NULL, "
            "vector BLOB NOT NULL, PRIMARY KEY (model, text_hash)) WITHOUT ROWID"
        )
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS models (model TEXT PRIMARY KEY, dimension INTEGER NOT NULL)"
        )
        self._db.commit()

    def dimension(self, model: str) -> int | None:
        with self._lock:
            row = self._db.execute("SELECT dimension FROM models WHERE model = ?", (model,)).fetchone()
        return int(row[0]) if row else None

    def set_dimension(self, model: str, dimension: int) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO models VALUES (?, ?)", (model, dimension))
            self._db.commit()

    def get_many(self, model: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found: dict[bytes, np.ndarray] = {}
        unique = list(dict.fromkeys(keys))
        with self._lock:
            for start in range(0, len(unique), _CHUNK):
                part = unique[start : start + _CHUNK]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT text_hash, vector FROM vectors WHERE model = ? AND text_hash IN ({marks})",
                    (model, *part),
                )
                for key, blob in rows:
                    found[bytes(key)] = np.frombuffer(blob, dtype=np.float32)
        return found

    def put_many(self, model: str, items: Sequence[tuple[bytes, np.ndarray]]) -> None:
        with self._lock:
            self._db.executemany(
                "INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                [(model, key, np.ascontiguousarray(v, dtype=np.float32).tobytes()) for key, v in items],
            )
            self._db.commit()

    def count(self, model: str) -> int:
        with self._lock:
            return int(
                self._db.execute("SELECT COUNT(*) FROM vectors WHERE model = ?", (model,)).fetchone()[0]
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()


class CachingEmbedder:
    """Serves embeddings from an `EmbeddingCache`; loads the real model only on the first miss."""

    def __init__(
        self, model_key: str, name: str, loader: Callable[[], Embedder], cache: EmbeddingCache
    ) -> None:
        self.model_key = model_key
        self._name = name
        self._loader = loader
        self._inner: Embedder | None = None
        self.cache = cache
        self.hits = 0
        self.misses = 0
        self.embed_seconds = 0.0

    def _model(self) -> Embedder:
        if self._inner is None:
            self._inner = self._loader()
            self.cache.set_dimension(self.model_key, self._inner.dimension)
        return self._inner

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        known = self.cache.dimension(self.model_key)
        return known if known is not None else self._model().dimension

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        keys = [text_key(t) for t in texts]
        found = self.cache.get_many(self.model_key, keys)
        missing = list(dict.fromkeys(t for t, k in zip(texts, keys, strict=True) if k not in found))
        self.hits += len(texts) - len(missing)
        self.misses += len(missing)
        if missing:
            started = time.perf_counter()
            fresh = self._model().embed_batch(missing)
            self.embed_seconds += time.perf_counter() - started
            items = [(text_key(t), fresh[i]) for i, t in enumerate(missing)]
            self.cache.put_many(self.model_key, items)
            found.update(items)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[k] for k in keys]).astype(np.float32, copy=False)
