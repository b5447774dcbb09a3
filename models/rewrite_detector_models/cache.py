"""A bounded in-memory LRU of embeddings by text, in front of the model.

News is full of wire copies: the same paragraph arrives in many submissions. The article store
already reuses the stored embedding of any *indexed* paragraph (``Detector._embed`` →
``Storage.cached_embeddings``, on disk, so it survives restarts); this cache covers texts that were only
*submitted* (Check, Compare), which the store never keeps. It lives in memory and is lost on restart,
unless the server saves it on shutdown (``save``/``load``, done by the app at graceful stop and start).

Keyed by a 128-bit BLAKE2b digest of the exact text (collisions are negligible at 2^-64 for 2^32
entries) so the cache holds 16 bytes per key rather than the text. Memory is about
``dimension * 4 + 100`` bytes per entry: the default 20,000 entries of 384-d vectors take ~33 MB.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import zipfile
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from rewrite_detector_models.embedder import Embedder, EmbedderWrapper

__all__ = ["CachingEmbedder", "text_key"]

logger = logging.getLogger(__name__)

CACHE_FILE_FORMAT = 1


def text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CachingEmbedder(EmbedderWrapper):
    """An ``Embedder`` that answers repeated texts from an LRU of up to ``max_entries`` vectors."""

    def __init__(self, inner: Embedder, max_entries: int = 20_000) -> None:
        if max_entries < 1:
            raise ValueError(
                f"max_entries must be >= 1 (to disable the cache, leave it out), got {max_entries}"
            )
        self._inner = inner
        self._max_entries = max_entries
        self._entries: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.empty((len(texts), self.dimension), dtype=np.float32)
        keys = [text_key(t) for t in texts]
        missing: dict[bytes, str] = {}
        with self._lock:
            for row, key in enumerate(keys):
                vector = self._entries.get(key)
                if vector is None:
                    missing.setdefault(key, texts[row])
                else:
                    self._entries.move_to_end(key)
                    out[row] = vector
            self.hits += len(keys) - sum(1 for k in keys if k in missing)
            self.misses += len(missing)
        if not missing:
            return out
        # The model runs outside the lock: other callers' hits are not held up by this call's misses.
        fresh = self._inner.embed_batch(list(missing.values()))
        found = dict(zip(missing, fresh, strict=True))
        with self._lock:
            for key, vector in found.items():
                self._put(key, vector)
        for row, key in enumerate(keys):
            if key in found:
                out[row] = found[key]
        return out

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if callable(close):
            close()

    # ------------------------------------------------------------------------------ persistence

    def save(self, path: str | Path, *, backend: str) -> int:
        """Write the cache to ``path`` (temp file + rename); returns the number of entries written."""
        path = Path(path)
        with self._lock:
            keys = list(self._entries)
            vectors = np.stack(list(self._entries.values())) if keys else self._no_vectors()
        meta = self._meta(backend)
        tmp = path.with_name(path.name + ".tmp")
        with open(tmp, "wb") as handle:
            np.savez(
                handle,
                meta=np.array(json.dumps(meta)),
                # Raw uint8 rows, not a bytes ("S16") array: numpy strips trailing NUL bytes from those.
                keys=np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16),
                vectors=vectors.astype(np.float32, copy=False),
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
        return len(keys)

    def load(self, path: str | Path, *, backend: str) -> int:
        """Fill the cache from a file written by ``save`` for the same model and backend.

        Returns the entries loaded; a missing, unreadable or mismatched file loads nothing (it is only
        a cache) and is logged.
        """
        path = Path(path)
        if not path.exists():
            return 0
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                keys, vectors = data["keys"], data["vectors"]
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            logger.warning("embedding cache file unreadable, ignored path=%s error=%s", path, err)
            return 0
        shapes_ok = keys.shape == (len(keys), 16) and vectors.shape == (len(keys), self.dimension)
        if meta != self._meta(backend) or not shapes_ok:
            logger.info("embedding cache file is for another model or backend, ignored path=%s", path)
            return 0
        with self._lock:
            # Oldest first in the file: the most recent entries stay when max_entries shrank.
            for key, vector in zip(keys, vectors, strict=True):
                self._put(key.tobytes(), vector)
        return min(len(keys), self._max_entries)

    def _meta(self, backend: str) -> dict[str, object]:
        return {
            "format": CACHE_FILE_FORMAT,
            "model": self.name,
            "dimension": self.dimension,
            "backend": backend,
        }

    def _no_vectors(self) -> np.ndarray:
        return np.empty((0, self.dimension), dtype=np.float32)

    def _put(self, key: bytes, vector: np.ndarray) -> None:
        """Insert as most recent, evicting the least recent beyond capacity. Caller holds the lock."""
        stored = np.array(vector, dtype=np.float32)  # a private copy callers cannot mutate
        stored.setflags(write=False)
        self._entries[key] = stored
        self._entries.move_to_end(key)
        while len(self._entries) > self._max_entries:
            self._entries.popitem(last=False)
