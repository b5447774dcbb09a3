"""Vector index: a seam (``VectorIndex``) and its embedded-FAISS implementation.

Vectors are L2-normalised, so the inner-product metric used throughout is cosine similarity.
The index is a derived cache of the article store: anything it loses is replayed from the store's
stored embeddings, which is why loading refuses (raises) rather than serving a file it cannot verify.

Index types (``index_type``):

* ``"flat"`` — ``IndexIDMap2(IndexFlatIP)``: exact; removal compacts in place.
* ``"hnsw"`` — ``IndexIDMap2(IndexHNSWFlat(M=32, METRIC_INNER_PRODUCT))``. HNSW graphs cannot drop
  nodes (``remove_ids`` throws), so removed ids become *tombstones*: an ``IDSelectorNot`` built from them
  is passed to every search, which makes FAISS skip them inside the graph walk (no over-fetch guesswork,
  always ``k`` live results when ``k`` live vectors exist). Tombstones are saved with the snapshot, and
  once they exceed ``hnsw_compact_ratio`` of the graph it is rebuilt from the live vectors.
* ``"ivf-sq8"`` — ``IndexIVFScalarQuantizer`` (8-bit, inner product) with ids stored natively (IVF lists
  keep ids, and ``IndexIDMap`` must not wrap IVF: IVF removal does not renumber, which would desync the
  map). IVF needs training, so the index starts *flat* (exact) and, once ``ivf_train_size`` vectors are
  in, trains on them and moves them over. Lists sized for 50k vectors are too few at 1M (a search scans
  ``nprobe`` lists of ~1 000 vectors each: 22-25 ms of FAISS per Check at 1M with 957 lists and nprobe
  16, half that at the default 8). With
  ``ivf_regrow`` > 0 the index *regrows* once ~4*sqrt(n) reaches that many times its lists: it is
  retrained in a background thread from its own decoded vectors while searches and writes carry on
  against the old one; the writes made meanwhile are replayed onto the new one, which then replaces it
  and is saved. Off by default: it trades recall of the voting neighbours for speed at a fixed
  ``nprobe`` (bench/RESULTS.md, "IVF lists that follow the corpus"), which has not been measured on a
  million real paragraphs.

  With ``ivf_fast_scan`` (off in ``IndexOptions``, on in the service's settings) a trained "ivf-sq8" index
  keeps a second IVF beside the SQ8 one: an ``IndexIVFPQFastScan`` (4-bit PQ, one sub-quantizer per 4
  dimensions: ``PQ96x4fs`` at 384-d) over a copy of the same coarse centroids, trained on the same sample
  and holding the same ids. A search scans the fast-scan lists (same ``nprobe``) for ``4 * k`` candidates
  and re-ranks them by inner product with their SQ8-decoded vectors (``reconstruct_batch`` through the SQ8
  hashtable direct map), so scores and ids are SQ8's and the SQ8 lists are never scanned.
  ``bench/bench_fast_scan.py`` (200k vectors in lists of ~1 045 as at 1M, nprobe 8, one thread, same
  process): a Check's 18 queries cost 3.9-4.9 ms of CPU instead of 11.6-13.8 (x0.34-0.36), ~3 ms of it the
  re-rank (FAISS decodes one candidate at a time, ~4 us each; an SQ8 search restricted to the candidates
  by an ``IDSelector`` is no cheaper, and Python-side ``sa_decode`` of gathered codes is 5x dearer).
  Recall of the top 10: on real embeddings the scratch runs of bench/RESULTS.md ("Stop 16") kept 0.925
  against SQ8's 0.932; on synthetic clustered vectors the bench keeps 0.74 against 0.97 (8 candidates a
  neighbour: 0.89, for 6.8 ms), so real data decided: on the PAN embeddings voting recall 0.927 -> 0.921,
  PAN retrieval at 1M unchanged, served at 1M 8 clients' p50 x0.77 (bench/RESULTS.md, "Stop 17"). Memory:
  +58 bytes a vector (48 of codes, 8 of id, block padding), 468 instead of 410 in the snapshot. Costs:
  every write goes to both IVFs, a ``remove`` scans every fast-scan list (FAISS cannot remove through a
  direct map from fast-scan's block lists: 1.5 ms a call at 200k; at 1M ~7 ms measured for FAISS's scan
  plus ~2.5 ms reading list sizes around it, against 0.03-0.1 ms for SQ8 alone), and the snapshot has a
  second file.

Thread safety: FAISS ``search`` on an index nobody mutates is thread-safe (and releases the GIL, as
does ``reconstruct_batch``); ``add``/``remove`` are not. Searches take the read side of a
writer-preferring readers-writer lock; in-place mutations take the write side. All mutators are
additionally serialised by a mutex, under which slow rebuilds (IVF training, HNSW compaction) run off
to the side while searches continue on the old index; only the final pointer swap takes the write lock.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import faiss
import numpy as np

from ._fsutil import FAST_DIGEST, atomic_write_text, file_digests, fsync_dir, fsync_file

__all__ = [
    "INDEX_TYPES",
    "CorruptIndexError",
    "FaissVectorIndex",
    "IndexLoadError",
    "IndexOptions",
    "VectorIndex",
]

log = logging.getLogger(__name__)

# faiss ships partial type stubs (no DirectMap, SearchParametersHNSW, SWIG ownership flags...); the
# members they miss are reached through this untyped alias rather than silenced line by line.
_faiss: Any = faiss

INDEX_TYPES = ("flat", "hnsw", "ivf-sq8")
# A new data dir's type when none is configured (an existing one keeps the type it records).
DEFAULT_INDEX_TYPE = "flat"
# IVF training: k-means points per list and iterations; vectors decoded per step of a regrow.
_TRAIN_POINTS_PER_LIST = 64
_KMEANS_ITERATIONS = 10
_REGROW_CHUNK = 65_536
SIDECAR_SUFFIX = ".meta.json"
SIDECAR_FORMAT = 1
# The fast-scan part of an "ivf-sq8" snapshot, beside the index file; listed in the sidecar (an older
# build ignores both the key and the file, so the format stays 1).
FAST_SCAN_SUFFIX = ".fastscan"
# Fast-scan PQ: 4-bit sub-quantizers (the only width FAISS fast-scan kernels take) of 4 dimensions each,
# the PQ96x4fs measured at 384-d. PQ192x4fs kept more neighbours before the re-rank but scanned in 4.7
# instead of 2.5 ms per Check, and after the re-rank 96 already matches SQ8 within a point.
_FAST_SCAN_NBITS = 4
_FAST_SCAN_DIMS_PER_CODE = 4
# Candidates the fast scan hands to the SQ8 re-rank per neighbour asked for. 4 kept 0.925 of the voting
# neighbours on real embeddings (SQ8 alone 0.932); 8 kept 0.930 for twice the re-rank, which costs
# ~4 us a candidate (reconstruct_batch), so 4.
_FAST_SCAN_K_FACTOR = 4


class IndexLoadError(Exception):
    """A saved index cannot be used as is (other type or dimension); rebuild it from the store."""


class CorruptIndexError(IndexLoadError):
    """A saved index file is torn, truncated or does not match its sidecar; never serve it."""


@dataclass(frozen=True, slots=True)
class IndexOptions:
    """Tuning knobs; the defaults suit 384-d sentence embeddings."""

    hnsw_m: int = 32
    hnsw_ef_construction: int = 80
    # efSearch 128 gives recall@10 > 0.97 even on unclustered random 384-d data; real embeddings are
    # clustered and easier. Searches use max(hnsw_ef_search, k).
    hnsw_ef_search: int = 128
    # Rebuild the graph when tombstones exceed this share of its nodes (they cost memory and walk time).
    hnsw_compact_ratio: float = 0.25
    # Vectors needed before an "ivf-sq8" index is trained (below it, it is flat and exact).
    ivf_train_size: int = 50_000
    # Lists; default ~4*sqrt(n) at training time, capped so each centroid gets >= 39 training points.
    ivf_nlist: int | None = None
    ivf_nprobe: int = 8
    # With automatic lists: retrain once ~4*sqrt(n) reaches this many times the current lists (1.5 =
    # at ~2.25x the vectors trained for). 0 (the default) keeps the lists trained at ivf_train_size.
    ivf_regrow: float = 0.0
    # Trained "ivf-sq8" indexes also keep a 4-bit PQ fast-scan IVF and search it first, re-ranking its
    # candidates with the SQ8 codes (module docstring). Off unless asked; the service asks by default
    # (config.Settings.ivf_fast_scan, after the A/B at 1M).
    ivf_fast_scan: bool = False

    def __post_init__(self) -> None:
        if self.hnsw_m < 2 or self.hnsw_ef_construction < 1 or self.hnsw_ef_search < 1:
            raise ValueError("hnsw_m must be >= 2 and the ef values >= 1")
        if not 0.0 < self.hnsw_compact_ratio <= 1.0:
            raise ValueError(f"hnsw_compact_ratio must be in (0, 1], got {self.hnsw_compact_ratio}")
        if self.ivf_train_size < 39:
            raise ValueError(
                f"ivf_train_size must be >= 39 (FAISS k-means minimum), got {self.ivf_train_size}"
            )
        if self.ivf_nlist is not None and self.ivf_nlist < 1:
            raise ValueError(f"ivf_nlist must be >= 1, got {self.ivf_nlist}")
        if self.ivf_nprobe < 1:
            raise ValueError(f"ivf_nprobe must be >= 1, got {self.ivf_nprobe}")
        if self.ivf_regrow != 0 and self.ivf_regrow <= 1.0:
            raise ValueError(f"ivf_regrow must be 0 (off) or > 1, got {self.ivf_regrow}")
        if not isinstance(self.ivf_fast_scan, bool):  # a string "false" would switch it on
            raise ValueError(f"ivf_fast_scan must be a bool, got {self.ivf_fast_scan!r}")


@runtime_checkable
class VectorIndex(Protocol):
    """What the storage facade needs from a vector index (``FaissVectorIndex``, ``MilvusVectorIndex``)."""

    @property
    def dimension(self) -> int: ...

    @property
    def index_type(self) -> str:
        """One of ``INDEX_TYPES``."""
        ...

    @property
    def ntotal(self) -> int:
        """Number of live (searchable) vectors."""
        ...

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add int64 ``ids`` with float32 (n, dimension) ``vectors``; the ids must not be present."""
        ...

    def remove(self, ids: np.ndarray) -> int:
        """Remove ids (absent ones are ignored); returns how many were removed."""
        ...

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-k by inner product: (scores float32 (q, k), ids int64 (q, k)); missing slots are id -1."""
        ...

    def ids(self) -> np.ndarray:
        """All live ids, ascending (int64)."""
        ...

    def save(self) -> None: ...

    def close(self) -> None: ...


class _RWLock:
    """Many readers or one writer; waiting writers block new readers so writes cannot starve."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer = False
        self._writers_waiting = 0

    @contextlib.contextmanager
    def read(self) -> Iterator[None]:
        with self._cond:
            while self._writer or self._writers_waiting:
                self._cond.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                if self._readers == 0:
                    self._cond.notify_all()

    @contextlib.contextmanager
    def write(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            try:
                while self._writer or self._readers:
                    self._cond.wait()
            finally:
                self._writers_waiting -= 1
            self._writer = True
        try:
            yield
        finally:
            with self._cond:
                self._writer = False
                self._cond.notify_all()


# Kinds of FAISS structure an index can currently be ("ivf-sq8" is "flat" until trained).
_KINDS_FOR_TYPE = {"flat": ("flat",), "hnsw": ("hnsw",), "ivf-sq8": ("flat", "ivf")}


class FaissVectorIndex:
    """Embedded FAISS implementation of ``VectorIndex`` with atomic, checksummed snapshots.

    On disk: ``<path>`` (``faiss.write_index`` output) and ``<path>.meta.json`` (sidecar: type, dimension,
    ntotal, size, XXH3-128 and SHA-256 of the index file, HNSW tombstones); with ``ivf_fast_scan``, also
    ``<path>.fastscan`` (the fast-scan IVF, with its ntotal, size and XXH3-128 in the sidecar).
    """

    def __init__(
        self,
        dimension: int,
        index_type: str = "flat",
        *,
        path: Path | None = None,
        options: IndexOptions | None = None,
    ) -> None:
        """An empty index; ``path`` is where ``save()`` writes (None: in memory only)."""
        if dimension <= 0:
            raise ValueError(f"dimension must be positive, got {dimension}")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"index_type must be one of {', '.join(INDEX_TYPES)}; got {index_type!r}")
        self._dimension = dimension
        self._index_type = index_type
        self._path = None if path is None else Path(path)
        self._options = options or IndexOptions()
        self._mutate = threading.Lock()
        self._rw = _RWLock()
        self._tombstones: set[int] = set()
        self._alive_sel: Any = None
        self._closed = False
        # While a regrow runs: the writes made since it listed the ids, replayed onto the new index.
        self._regrow_log: list[tuple[str, np.ndarray, np.ndarray | None]] | None = None
        self._regrow_thread: threading.Thread | None = None
        self._regrow_held = 0  # > 0 during a bulk load: regrow once at its end, not at every step
        # The fast-scan IVF beside a trained SQ8 one (ivf_fast_scan), same ids; None otherwise. Swapped
        # and mutated together with ``_index``, under the same locks.
        self._fast: Any = None
        if index_type == "hnsw":
            self._index: Any = self._new_hnsw()
            self._kind = "hnsw"
        else:
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(dimension))
            self._kind = "flat"

    # ----------------------------------------------------------------- loading

    @classmethod
    def load(
        cls,
        path: Path,
        dimension: int,
        index_type: str = "flat",
        *,
        options: IndexOptions | None = None,
    ) -> FaissVectorIndex:
        """Load a snapshot written by ``save``.

        Raises ``FileNotFoundError`` when there is no snapshot at all, ``CorruptIndexError`` when the file
        or its sidecar is missing, torn or inconsistent, and ``IndexLoadError`` when it is intact but of
        another type or dimension. The caller rebuilds from the store in every case.
        """
        path = Path(path)
        sidecar = _sidecar_path(path)
        if not path.exists() and not sidecar.exists():
            raise FileNotFoundError(f"no index snapshot at {path}")
        if not path.exists() or not sidecar.exists():
            missing = path if not path.exists() else sidecar
            raise CorruptIndexError(f"{missing} is missing (a snapshot needs both the index and its sidecar)")
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
            expected_size = int(meta["size"])
            # Sidecars since the XXH3 change carry both digests (SHA-256 for older builds); the fast one
            # is checked when present.
            digest_name = FAST_DIGEST if FAST_DIGEST in meta else "sha256"
            expected_digest = str(meta[digest_name])
            saved_type = str(meta["index_type"])
            saved_dim = int(meta["dimension"])
            saved_kind = str(meta["kind"])
            saved_ntotal = int(meta["ntotal"])
            tombstones = {int(t) for t in meta.get("tombstones", [])}
            fast_entry = meta.get("fast_scan")
            fmt = int(meta["format_version"])
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise CorruptIndexError(f"unreadable index sidecar {sidecar}: {err}") from err
        if fmt != SIDECAR_FORMAT:
            raise IndexLoadError(f"{sidecar} has format {fmt}, this build reads {SIDECAR_FORMAT}")
        if saved_type != index_type:
            raise IndexLoadError(f"{path} is a {saved_type!r} index but {index_type!r} is configured")
        if saved_dim != dimension:
            raise IndexLoadError(f"{path} holds {saved_dim}-d vectors but {dimension}-d are configured")
        # The size first: a truncated file is refused without reading it. The checksum is verified before
        # FAISS parses anything (parsing a damaged file can allocate garbage sizes or crash).
        if path.stat().st_size != expected_size:
            raise CorruptIndexError(
                f"{path} does not match its sidecar (size {path.stat().st_size} vs {expected_size}): "
                "torn or partial write"
            )
        # An older sidecar (SHA-256 only) gets the fast checksum added below, computed in the same read.
        size, digests = file_digests(
            path, (digest_name,) if digest_name == FAST_DIGEST else (digest_name, FAST_DIGEST)
        )
        if size != expected_size or digests[digest_name] != expected_digest:
            raise CorruptIndexError(
                f"{path} does not match its sidecar (size {size} vs {expected_size}, {digest_name} "
                f"{'ok' if digests[digest_name] == expected_digest else 'differs'}): torn or partial write"
            )
        try:
            raw: Any = faiss.read_index(str(path))
        except RuntimeError as err:  # FAISS reports short reads and bad headers as RuntimeError
            raise CorruptIndexError(f"FAISS cannot read {path}: {err}") from err

        loaded = cls(dimension, index_type, path=path, options=options)
        index = _downcast_owned(raw)
        kind = _kind_of(index)
        if kind is None or kind != saved_kind or kind not in _KINDS_FOR_TYPE[index_type]:
            raise CorruptIndexError(f"{path} holds {type(index).__name__}, not a {index_type!r} index")
        if index.d != dimension or index.ntotal != saved_ntotal:
            raise CorruptIndexError(
                f"{path} has d={index.d}, ntotal={index.ntotal}; "
                f"sidecar says d={saved_dim}, ntotal={saved_ntotal}"
            )
        if index.metric_type != faiss.METRIC_INNER_PRODUCT:
            raise CorruptIndexError(f"{path} does not use the inner-product metric")
        if kind == "ivf":
            # Reconstruct-by-id and IDSelectorArray removal need the hashtable direct map.
            if index.direct_map.type != _faiss.DirectMap.Hashtable:
                index.set_direct_map_type(_faiss.DirectMap.Hashtable)
            index.nprobe = loaded._options.ivf_nprobe
        if tombstones and kind != "hnsw":
            raise CorruptIndexError(f"{sidecar} lists tombstones for a {kind} index")
        if fast_entry is not None and kind != "ivf":
            raise CorruptIndexError(f"{sidecar} lists a fast-scan part for a {kind} index")
        sidecar_update: dict[str, Any] = {}
        if digest_name != FAST_DIGEST:
            sidecar_update[FAST_DIGEST] = digests[FAST_DIGEST]
        fast = None
        if kind == "ivf" and loaded._options.ivf_fast_scan:
            if fast_entry is not None:
                # Read, not rebuilt: encoding 1M vectors takes ~17 s of CPU, a start-up takes ~2 s.
                fast = _read_fast_scan(path, fast_entry, index, loaded._options.ivf_nprobe)
            else:
                started = time.monotonic()
                fast = loaded._fast_scan_from(index)
                log.info(
                    "ivf fast-scan part built from the SQ8 codes (the snapshot has none) path=%s "
                    "vectors=%d seconds=%.2f",
                    path,
                    int(fast.ntotal),
                    time.monotonic() - started,
                )
                # Kept, so that the next start reads it instead; the SQ8 file is unchanged and is not
                # rewritten. The file is in place before the sidecar names it, so a crash in between
                # only means building it again.
                fast_path = _fast_scan_path(path)
                try:
                    entry = _write_fast_scan(fast, _tmp_path(fast_path))
                    os.replace(_tmp_path(fast_path), fast_path)
                    sidecar_update["fast_scan"] = entry
                except OSError as err:
                    log.warning("could not keep the fast-scan part path=%s error=%s", fast_path, err)
        elif fast_entry is not None:
            log.info(
                "ivf fast-scan part of the snapshot ignored (ivf_fast_scan is off; the next save drops "
                "it) path=%s",
                _fast_scan_path(path),
            )
        loaded._index = index
        loaded._fast = fast
        loaded._kind = kind
        loaded._tombstones = tombstones
        loaded._alive_sel = _not_in(tombstones)
        if sidecar_update:
            _update_sidecar(sidecar, meta, sidecar_update)
        with loaded._mutate:
            loaded._regrow_if_due()  # a snapshot from a smaller corpus (or an older build)
        return loaded

    @staticmethod
    def discard(path: Path) -> None:
        """Delete a snapshot (index, sidecar and any temp files) so it cannot be loaded again."""
        path = Path(path)
        for p in (path, _sidecar_path(path), _fast_scan_path(path)):
            for q in (p, _tmp_path(p)):
                with contextlib.suppress(FileNotFoundError):
                    q.unlink()

    # -------------------------------------------------------------- properties

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def index_type(self) -> str:
        return self._index_type

    @property
    def kind(self) -> str:
        """Current FAISS structure: "flat", "hnsw" or "ivf" ("ivf-sq8" indexes are "flat" until trained)."""
        return self._kind

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal) - len(self._tombstones)

    @property
    def tombstones(self) -> int:
        return len(self._tombstones)

    @property
    def nlist(self) -> int:
        """IVF lists (0 unless the index is a trained IVF)."""
        return int(self._index.nlist) if self._kind == "ivf" else 0

    @property
    def fast_scan(self) -> bool:
        """Whether searches go through the fast-scan first pass (``ivf_fast_scan`` and trained)."""
        return self._fast is not None

    @contextlib.contextmanager
    def regrow_deferred(self) -> Iterator[None]:
        """Hold regrowing back while a bulk load adds many batches, then regrow once if due: each regrow
        started mid-load would train lists for a size about to be outgrown, and keep every vector added
        meanwhile in its replay log."""
        with self._mutate:
            self._regrow_held += 1
        try:
            yield
        finally:
            with self._mutate:
                self._regrow_held -= 1
                self._regrow_if_due()

    def wait_for_regrow(self, timeout: float | None = None) -> bool:
        """Block until a running regrow has finished (True) or ``timeout`` passed (False)."""
        thread = self._regrow_thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

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
        with self._mutate:
            self._check_open()
            if self._tombstones and not self._tombstones.isdisjoint(ids_arr.tolist()):
                # A tombstoned id would stay hidden by the search filter: ids are never to be reused.
                raise ValueError("cannot re-add a removed vector id; allocate a fresh id")
            if (
                self._index_type == "ivf-sq8"
                and self._kind == "flat"
                and self._index.ntotal + ids_arr.size >= self._options.ivf_train_size
            ):
                self._train_ivf(ids_arr, vecs)
                return
            with self._rw.write():
                if self._kind == "ivf":
                    _ivf_add(self._index, self._fast, vecs, ids_arr)
                else:
                    self._index.add_with_ids(vecs, ids_arr)
            if self._regrow_log is not None:
                self._regrow_log.append(("add", ids_arr, vecs))
            self._regrow_if_due()

    def remove(self, ids: np.ndarray) -> int:
        ids_arr = np.unique(_as_ids(ids))
        if ids_arr.size == 0:
            return 0
        with self._mutate:
            self._check_open()
            if self._kind == "hnsw":
                live = [i for i in ids_arr.tolist() if i not in self._tombstones and self._has(i)]
                if not live:
                    return 0
                tombstones = self._tombstones | set(live)
                sel = _not_in(tombstones)
                with self._rw.write():
                    self._tombstones = tombstones
                    self._alive_sel = sel
                raw = int(self._index.ntotal)
                if len(tombstones) > self._options.hnsw_compact_ratio * raw:
                    self._compact_hnsw()
                return len(live)
            with self._rw.write():
                if self._kind == "ivf":
                    if self._regrow_log is not None:
                        self._regrow_log.append(("remove", ids_arr, None))
                    removed = _ivf_remove(self._index, ids_arr)
                    if removed and self._fast is not None:  # none in SQ8: none there, skip the scan
                        _fast_scan_remove(self._fast, ids_arr)
                    return removed
                return int(
                    self._index.remove_ids(faiss.IDSelectorBatch(ids_arr.size, faiss.swig_ptr(ids_arr)))
                )

    # ------------------------------------------------------------------- reads

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        q = self._as_vectors(queries, "queries")
        scores = np.full((q.shape[0], k), -np.inf, dtype=np.float32)
        labels = np.full((q.shape[0], k), -1, dtype=np.int64)
        with self._rw.read():
            self._check_open()
            live = int(self._index.ntotal) - len(self._tombstones)
            # Never ask FAISS for more than exist: it would allocate (q, k) result heaps for nothing.
            k_eff = min(k, live)
            if k_eff == 0 or q.shape[0] == 0:
                return scores, labels
            if self._kind == "hnsw":
                params = _faiss.SearchParametersHNSW()
                params.efSearch = max(self._options.hnsw_ef_search, k_eff)
                if self._alive_sel is not None:
                    # A fresh params object per call: IndexIDMap temporarily rewrites params.sel.
                    params.sel = self._alive_sel
                dist, found = self._index.search(q, k_eff, params=params)
            elif self._kind == "ivf":
                params = faiss.SearchParametersIVF()
                params.nprobe = self._options.ivf_nprobe
                if self._fast is not None:
                    dist, found = self._fast_scan_search(q, k_eff, live, params)
                else:
                    dist, found = self._index.search(q, k_eff, params=params)
            else:
                dist, found = self._index.search(q, k_eff)
        found = found.astype(np.int64, copy=False)
        labels[:, :k_eff] = found
        scores[:, :k_eff] = np.where(found >= 0, dist, -np.inf)
        return scores, labels

    def _fast_scan_search(
        self, q: np.ndarray, k: int, live: int, params: Any
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` of the fast scan's ``_FAST_SCAN_K_FACTOR * k`` candidates by inner product with their
        SQ8-decoded vectors (the score an SQ8 search gives). Caller holds the read lock, so both IVFs
        hold the same ids; FAISS and the numpy product release the GIL."""
        n_cand = min(k * _FAST_SCAN_K_FACTOR, live)
        _, cand = self._fast.search(q, n_cand, params=params)
        cand = np.ascontiguousarray(cand, dtype=np.int64)
        valid = cand >= 0  # -1: the probed lists held fewer than n_cand vectors
        flat = cand.reshape(-1)
        if valid.all():
            vectors = self._index.reconstruct_batch(flat)
        else:
            vectors = np.zeros((flat.size, self._dimension), dtype=np.float32)
            vectors[valid.reshape(-1)] = self._index.reconstruct_batch(flat[valid.reshape(-1)])
        sims = np.matmul(vectors.reshape(q.shape[0], n_cand, self._dimension), q[:, :, None])[:, :, 0]
        sims[~valid] = -np.inf
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k]
        return np.take_along_axis(sims, order, axis=1), np.take_along_axis(cand, order, axis=1)

    def ids(self) -> np.ndarray:
        with self._rw.read():
            self._check_open()
            if self._kind == "ivf":
                ids = _ivf_ids(self._index)
            else:
                ids = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
            tombstones = np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones))
        if tombstones.size:
            ids = ids[~np.isin(ids, tombstones)]
        return np.sort(ids)

    # --------------------------------------------------------------- snapshots

    def save(self) -> None:
        """Atomically replace the snapshot: temp file, fsync, rename, fsync the directory.

        Index, fast-scan part (if any) and sidecar are renamed one after the other, the sidecar last; a
        crash in between leaves a sidecar whose checksums disagree with the new files, which ``load``
        reports as corrupt, so the caller rebuilds — never a silent mix.
        """
        if self._path is None:
            raise RuntimeError("this index has no path to save to")
        # Mutators are excluded; searches carry on (write_index only reads the index).
        with self._mutate:
            self._save_locked()

    def _save_locked(self) -> None:
        """``save`` for a caller holding ``_mutate``."""
        assert self._path is not None
        path = self._path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp, sidecar = _tmp_path(path), _sidecar_path(path)
        sidecar_tmp = _tmp_path(sidecar)
        self._check_open()
        started = time.monotonic()
        faiss.write_index(self._index, str(tmp))
        fsync_file(tmp)
        # SHA-256 as well, so that a build from before the XXH3 change still accepts this snapshot.
        size, digests = file_digests(tmp, (FAST_DIGEST, "sha256"))
        # Saved rather than rebuilt at load: building it means encoding every vector again (~17 s of
        # CPU at 1M on this machine), against ~58 MB more to write and hash per snapshot.
        fast_path = _fast_scan_path(path)
        fast_entry = None if self._fast is None else _write_fast_scan(self._fast, _tmp_path(fast_path))
        meta = {
            "format_version": SIDECAR_FORMAT,
            "index_type": self._index_type,
            "kind": self._kind,
            "dimension": self._dimension,
            "metric": "ip",
            "ntotal": int(self._index.ntotal),
            "live": self.ntotal,
            "size": size,
            "sha256": digests["sha256"],
            FAST_DIGEST: digests[FAST_DIGEST],
            "tombstones": sorted(self._tombstones),
            "faiss_version": faiss.__version__,
            "saved_at": time.time(),
        }
        if fast_entry is not None:
            meta["fast_scan"] = fast_entry
        with open(sidecar_tmp, "w", encoding="utf-8") as fh:
            json.dump(meta, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
        if fast_entry is not None:
            os.replace(_tmp_path(fast_path), fast_path)
        os.replace(sidecar_tmp, sidecar)
        fsync_dir(path.parent)
        if fast_entry is None:
            # The sidecar no longer names it (option turned off): nothing would ever read it again.
            with contextlib.suppress(FileNotFoundError):
                fast_path.unlink()
        log.debug(
            "index snapshot saved path=%s live=%d bytes=%d seconds=%.3f",
            path,
            meta["live"],
            size,
            time.monotonic() - started,
        )

    def close(self) -> None:
        """Release the FAISS structure; does not save (the owner decides when to snapshot)."""
        with self._mutate, self._rw.write():
            if self._closed:
                return
            self._closed = True
            self._index = faiss.IndexIDMap2(faiss.IndexFlatIP(self._dimension))
            self._fast = None
            self._tombstones = set()
            self._alive_sel = None
            self._regrow_log = None  # a running regrow sees the index closed and drops its work

    # ---------------------------------------------------------------- internals

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("vector index is closed")

    def _as_vectors(self, vectors: np.ndarray, what: str) -> np.ndarray:
        arr = np.asarray(vectors)
        if arr.ndim != 2 or arr.shape[1] != self._dimension:
            raise ValueError(f"{what} must have shape (n, {self._dimension}), got {arr.shape}")
        return np.ascontiguousarray(arr, dtype=np.float32)

    def _new_hnsw(self) -> Any:
        hnsw = faiss.IndexHNSWFlat(self._dimension, self._options.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        hnsw.hnsw.efConstruction = self._options.hnsw_ef_construction
        hnsw.hnsw.efSearch = self._options.hnsw_ef_search
        return faiss.IndexIDMap2(hnsw)

    def _has(self, vector_id: int) -> bool:
        """Whether an IndexIDMap2 holds ``vector_id`` (its rev_map is not exposed to Python)."""
        try:
            self._index.reconstruct(vector_id)
        except RuntimeError:
            return False
        return True

    def _idmap_contents(self) -> tuple[np.ndarray, np.ndarray]:
        """(ids, vectors) of an IndexIDMap2-wrapped index, in insertion order."""
        ids = faiss.vector_to_array(self._index.id_map).astype(np.int64, copy=False)
        inner = faiss.downcast_index(self._index.index)
        vectors = inner.reconstruct_n(0, inner.ntotal) if inner.ntotal else self._empty()
        return ids, np.ascontiguousarray(vectors, dtype=np.float32)

    def _empty(self) -> np.ndarray:
        return np.empty((0, self._dimension), dtype=np.float32)

    def _compact_hnsw(self) -> None:
        """Rebuild the graph without tombstoned nodes. Caller holds ``_mutate``; searches continue."""
        started = time.monotonic()
        ids, vectors = self._idmap_contents()
        keep = ~np.isin(ids, np.fromiter(self._tombstones, dtype=np.int64, count=len(self._tombstones)))
        fresh = self._new_hnsw()
        if keep.any():
            fresh.add_with_ids(vectors[keep], ids[keep])
        with self._rw.write():
            self._index = fresh
            self._tombstones = set()
            self._alive_sel = None
        log.info(
            "hnsw index compacted live=%d dropped=%d seconds=%.2f",
            int(keep.sum()),
            int((~keep).sum()),
            time.monotonic() - started,
        )

    def _train_ivf(self, new_ids: np.ndarray, new_vectors: np.ndarray) -> None:
        """Move a flat "ivf-sq8" index to a trained IVF-SQ8 one. Caller holds ``_mutate``."""
        started = time.monotonic()
        old_ids, old_vectors = self._idmap_contents()
        ids = np.concatenate([old_ids, new_ids])
        vectors = np.concatenate([old_vectors, new_vectors])
        ivf = self._untrained_ivf(ids.shape[0])
        sample = _training_sample(ids.shape[0], ivf.nlist)
        training = np.ascontiguousarray(vectors if sample is None else vectors[sample])
        ivf.train(training)
        fast = self._trained_fast_scan(ivf, training) if self._options.ivf_fast_scan else None
        _ivf_add(ivf, fast, vectors, ids)
        with self._rw.write():
            self._index = ivf
            self._fast = fast
            self._kind = "ivf"
        log.info(
            "ivf-sq8 index trained vectors=%d nlist=%d fast_scan=%s seconds=%.2f",
            ids.shape[0],
            ivf.nlist,
            fast is not None,
            time.monotonic() - started,
        )

    def _untrained_ivf(self, n: int) -> Any:
        nlist = self._options.ivf_nlist or _auto_nlist(n)
        quantizer = faiss.IndexFlatIP(self._dimension)
        ivf = faiss.IndexIVFScalarQuantizer(
            quantizer, self._dimension, nlist, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT
        )
        # 10 k-means iterations instead of FAISS's 25: retraining 4 000 lists at 1M vectors takes about a
        # minute on two cores this way, and the centroids hardly move after the first iterations.
        ivf.cp.niter = _KMEANS_ITERATIONS
        ivf.set_direct_map_type(_faiss.DirectMap.Hashtable)
        ivf.nprobe = self._options.ivf_nprobe
        return ivf

    def _trained_fast_scan(self, sq8: Any, training: np.ndarray) -> Any:
        """An empty fast-scan IVF beside the trained ``sq8``, its PQ trained on ``training``.

        Over a copy of ``sq8``'s coarse quantizer (each IVF owns and saves its own; a shared C++ object
        would save 1.5 MB at 957 lists and complicate ownership): same centroids, so a vector goes to the
        same list in both and a query probes the same lists, and FAISS skips the k-means (the quantizer
        is trained and holds ``nlist`` centroids). No direct map: FAISS 1.15 cannot remove through a
        hashtable from fast-scan's block lists, and nothing is reconstructed from this part.
        """
        d = self._dimension
        fast = faiss.IndexIVFPQFastScan(
            faiss.clone_index(sq8.quantizer),
            d,
            int(sq8.nlist),
            _fast_scan_m(d),
            _FAST_SCAN_NBITS,
            faiss.METRIC_INNER_PRODUCT,
        )
        fast.train(training)
        fast.nprobe = self._options.ivf_nprobe
        return fast

    def _fast_scan_from(self, sq8: Any) -> Any:
        """A fast-scan part for a trained ``sq8`` that has none (a snapshot saved without it), from its
        decoded vectors: PQ trained on a sample chosen as for the lists, then every vector added.

        A decoded vector near a list boundary may land in the neighbouring list (FAISS cannot add to
        fast-scan lists chosen in advance): a candidate found a little less often, never a wrong id.
        """
        ids = _ivf_ids(sq8)
        sample = _training_sample(ids.shape[0], int(sq8.nlist))
        chosen = ids if sample is None else ids[np.sort(sample)]
        fast = self._trained_fast_scan(sq8, sq8.reconstruct_batch(chosen))
        for begin in range(0, ids.shape[0], _REGROW_CHUNK):
            part = np.ascontiguousarray(ids[begin : begin + _REGROW_CHUNK])
            fast.add_with_ids(sq8.reconstruct_batch(part), part)
        return fast

    # ------------------------------------------------------------------ regrow

    def _regrow_if_due(self) -> None:
        """Start a background regrow if the IVF lists are too few for the vectors. Caller holds
        ``_mutate``."""
        regrow = self._options.ivf_regrow
        if (
            self._kind != "ivf"
            or regrow == 0
            or self._options.ivf_nlist is not None
            or self._regrow_thread is not None
            or self._regrow_held
            or self._closed
        ):
            return
        if _auto_nlist(int(self._index.ntotal)) < regrow * self._index.nlist:
            return
        ids = _ivf_ids(self._index)
        self._regrow_log = []
        self._regrow_thread = threading.Thread(
            target=self._regrow, args=(ids,), name="ivf-regrow", daemon=True
        )
        self._regrow_thread.start()

    def _regrow(self, ids: np.ndarray) -> None:
        """Build a new IVF for ``ids`` (the index's contents when the regrow started) off to the side,
        replay the writes made since, swap it in and save it. Searches never wait on the training."""
        started = time.monotonic()
        try:
            with self._mutate:
                if self._closed:
                    return
                old_nlist = int(self._index.nlist)
            fresh = self._untrained_ivf(ids.shape[0])
            sample = _training_sample(ids.shape[0], fresh.nlist)
            chosen = ids if sample is None else ids[np.sort(sample)]
            training = self._decoded(chosen)
            if training is None:
                return
            fresh.train(training[1])
            fresh_fast = self._trained_fast_scan(fresh, training[1]) if self._options.ivf_fast_scan else None
            del training
            for begin in range(0, ids.shape[0], _REGROW_CHUNK):
                part = ids[begin : begin + _REGROW_CHUNK]
                decoded = self._decoded(part)
                if decoded is None:
                    return
                kept, vectors = decoded
                _ivf_add(fresh, fresh_fast, vectors, kept)
            with self._mutate:
                if self._closed or self._regrow_log is None:
                    return
                # Every write since the ids were listed, in order: adds of new ids, removals of any.
                for op, op_ids, op_vectors in self._regrow_log:
                    if op == "add":
                        assert op_vectors is not None
                        _ivf_add(fresh, fresh_fast, op_vectors, op_ids)
                    elif _ivf_remove(fresh, op_ids) and fresh_fast is not None:
                        _fast_scan_remove(fresh_fast, op_ids)
                with self._rw.write():
                    self._index = fresh
                    self._fast = fresh_fast
                self._regrow_log = None
                if self._path is not None:
                    self._save_locked()
            log.info(
                "ivf-sq8 index regrown vectors=%d nlist=%d->%d fast_scan=%s seconds=%.2f",
                int(fresh.ntotal),
                old_nlist,
                int(fresh.nlist),
                fresh_fast is not None,
                time.monotonic() - started,
            )
        except Exception:
            # The old index is intact and keeps serving; the next write tries again.
            log.exception("ivf-sq8 regrow failed; keeping the current lists")
        finally:
            with self._mutate:
                self._regrow_log = None
                self._regrow_thread = None

    def _decoded(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        """(ids, SQ8-decoded vectors) of those ``ids`` not removed since the regrow started, read under
        ``_mutate`` so no write interleaves. None once the index is closed.

        Decoded rather than exact vectors: the index does not see the store. Re-encoding them adds a
        second 8-bit rounding (about 1e-3 of cosine), far below the similarity margins the detector uses.
        """
        with self._mutate:
            if self._closed or self._regrow_log is None:
                return None
            removed = [op_ids for op, op_ids, _ in self._regrow_log if op == "remove"]
            if removed:
                ids = ids[~np.isin(ids, np.concatenate(removed))]
            # Through the direct map (id -> list, offset); the old index is not mutated meanwhile.
            vectors = np.empty((ids.shape[0], self._dimension), dtype=np.float32)
            if ids.shape[0]:
                self._index.reconstruct_batch(ids, vectors)
        return ids, vectors


def _update_sidecar(sidecar: Path, meta: dict[str, Any], update: dict[str, Any]) -> None:
    """Add to a verified sidecar what load computed: the fast digest of a SHA-256-only sidecar, a
    fast-scan part built from the SQ8 codes. Atomic, and only an optimisation: on failure (a read-only
    data dir) the SHA-256 keeps being checked and the fast-scan part is built again at the next start."""
    try:
        atomic_write_text(sidecar, json.dumps({**meta, **update}))
    except OSError as err:
        log.warning("could not update index sidecar path=%s keys=%s error=%s", sidecar, sorted(update), err)


def _downcast_owned(raw: Any) -> Any:
    """``faiss.downcast_index`` of a freshly read index, owning it."""
    index: Any = faiss.downcast_index(raw)
    # downcast_index returns a second, non-owning proxy: hand ownership over, or the C++ index would be
    # freed with ``raw`` while ``index`` still points at it.
    if index is not raw and raw.thisown:
        raw.thisown = False
        index.thisown = True
    return index


def _fast_scan_m(d: int) -> int:
    """PQ sub-quantizers: one per ``_FAST_SCAN_DIMS_PER_CODE`` dimensions (96 at 384-d), or else the
    largest divisor of ``d`` below that (PQ splits the vector into equal parts); 1 below 4 dimensions."""
    most = max(1, d // _FAST_SCAN_DIMS_PER_CODE)
    return max(m for m in range(1, most + 1) if d % m == 0)


def _ivf_add(sq8: Any, fast: Any, vectors: np.ndarray, ids: np.ndarray) -> None:
    """Add to an SQ8 IVF and to its fast-scan part (if any). Should the second add fail, the ids are
    taken out of both: the storage facade repairs a failed write from ``ids()``, which reads SQ8."""
    sq8.add_with_ids(vectors, ids)
    if fast is None:
        return
    try:
        fast.add_with_ids(vectors, ids)
    except BaseException:
        _ivf_remove(sq8, ids)
        _fast_scan_remove(fast, ids)
        raise


def _fast_scan_remove(fast: Any, ids: np.ndarray) -> int:
    """``remove_ids`` on a fast-scan IVF, leaving its lists fit for later adds.

    FAISS 1.15 fills each hole by moving the list's last code into it but leaves the moved codes in the
    freed slots of the last block, while ``add_with_ids`` ORs new 4-bit codes into a block assuming
    free slots hold zeros: a vector added after a removal got a garbled code (found 0.2 of the time
    instead of always). The freed slots are zeroed here through the lists' code packer, whose
    ``pack_1`` masks what it writes.
    """
    invlists = _faiss.downcast_InvertedLists(fast.invlists)  # BlockInvertedLists
    sizes = [invlists.list_size(i) for i in range(fast.nlist)]
    # Without a direct map FAISS scans every list's ids; IDSelectorBatch tests each with a bloom filter
    # and a hash set (IDSelectorArray would search the ids linearly for each).
    removed = int(fast.remove_ids(faiss.IDSelectorBatch(ids.size, faiss.swig_ptr(ids))))
    if removed:
        packer = invlists.packer
        zero = np.zeros(packer.code_size, dtype=np.uint8)
        for list_no, before in enumerate(sizes):
            after = invlists.list_size(list_no)
            # Slots in blocks the list gave up are gone; new blocks are allocated zeroed.
            kept_slots = -(-after // packer.nvec) * packer.nvec
            for slot in range(after, min(before, kept_slots)):
                packer.pack_1_c(faiss.swig_ptr(zero), slot, invlists.get_codes(list_no))
    return removed


def _fast_scan_path(path: Path) -> Path:
    return path.with_name(path.name + FAST_SCAN_SUFFIX)


def _write_fast_scan(fast: Any, tmp: Path) -> dict[str, Any]:
    """Write the fast-scan part to ``tmp`` (fsynced); returns its sidecar entry."""
    faiss.write_index(fast, str(tmp))
    fsync_file(tmp)
    size, digests = file_digests(tmp, (FAST_DIGEST,))
    return {"ntotal": int(fast.ntotal), "size": size, FAST_DIGEST: digests[FAST_DIGEST]}


def _read_fast_scan(path: Path, entry: Any, sq8: Any, nprobe: int) -> Any:
    """The verified fast-scan part of the snapshot at ``path``, for its loaded SQ8 IVF.

    Anything that does not check out raises ``CorruptIndexError``, as for the SQ8 file, so the caller
    rebuilds from the store. That includes a part whose ntotal, lists or centroids disagree with the SQ8
    part though both digests verify: both are written under one lock from one state, so a disagreement
    means a snapshot no code path should write, and the store is the one source trusted then.
    """
    fast_path = _fast_scan_path(path)
    try:
        expected_size = int(entry["size"])
        expected_digest = str(entry[FAST_DIGEST])
        expected_ntotal = int(entry["ntotal"])
    except (KeyError, TypeError, ValueError) as err:
        raise CorruptIndexError(f"unreadable fast-scan entry in the sidecar of {path}: {err!r}") from err
    if not fast_path.exists():
        raise CorruptIndexError(f"{fast_path} is missing (the sidecar lists a fast-scan part)")
    # The size first, then the checksum, both before FAISS parses anything (as for the SQ8 file).
    size, digests = fast_path.stat().st_size, dict[str, str]()
    if size == expected_size:
        size, digests = file_digests(fast_path, (FAST_DIGEST,))
    if size != expected_size or digests.get(FAST_DIGEST) != expected_digest:
        raise CorruptIndexError(
            f"{fast_path} does not match its sidecar (size {size} vs {expected_size}): torn or partial write"
        )
    try:
        fast = _downcast_owned(faiss.read_index(str(fast_path)))
    except RuntimeError as err:
        raise CorruptIndexError(f"FAISS cannot read {fast_path}: {err}") from err
    if not isinstance(fast, faiss.IndexIVFPQFastScan) or fast.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise CorruptIndexError(f"{fast_path} holds {type(fast).__name__}, not an inner-product fast scan")
    if fast.d != sq8.d or fast.nlist != sq8.nlist or not fast.ntotal == expected_ntotal == sq8.ntotal:
        raise CorruptIndexError(
            f"{fast_path} has d={fast.d}, nlist={fast.nlist}, ntotal={fast.ntotal}; the SQ8 part has "
            f"d={sq8.d}, nlist={sq8.nlist}, ntotal={sq8.ntotal}, the sidecar ntotal={expected_ntotal}"
        )
    if not np.array_equal(
        fast.quantizer.reconstruct_n(0, fast.nlist), sq8.quantizer.reconstruct_n(0, sq8.nlist)
    ):
        raise CorruptIndexError(f"{fast_path} has other coarse centroids than its SQ8 part")
    fast.nprobe = nprobe
    return fast


def _kind_of(index: Any) -> str | None:
    if isinstance(index, faiss.IndexIVFScalarQuantizer):
        return "ivf"
    if isinstance(index, faiss.IndexIDMap2):
        inner = faiss.downcast_index(index.index)
        if isinstance(inner, faiss.IndexHNSWFlat):
            return "hnsw"
        if isinstance(inner, faiss.IndexFlat):
            return "flat"
    return None


def _auto_nlist(n: int) -> int:
    """~4*sqrt(n) lists (FAISS's guideline is 4-16*sqrt(n)), each with >= 39 vectors to train on."""
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def _training_sample(n: int, nlist: int) -> np.ndarray | None:
    """Positions of a seeded sample of ``_TRAIN_POINTS_PER_LIST`` per list, or None for all ``n``.

    Seeded so that training is reproducible; FAISS would subsample (and warn) anyway.
    """
    if n <= _TRAIN_POINTS_PER_LIST * nlist:
        return None
    rng = np.random.default_rng(0)
    return rng.choice(n, _TRAIN_POINTS_PER_LIST * nlist, replace=False)


def _ivf_remove(ivf: Any, ids: np.ndarray) -> int:
    # The hashtable direct map only accepts an IDSelectorArray.
    return int(ivf.remove_ids(faiss.IDSelectorArray(ids.size, faiss.swig_ptr(ids))))


def _ivf_ids(ivf: Any) -> np.ndarray:
    invlists = ivf.invlists
    parts = []
    for list_no in range(ivf.nlist):
        size = invlists.list_size(list_no)
        if size:
            ptr = invlists.get_ids(list_no)
            parts.append(faiss.rev_swig_ptr(ptr, size).astype(np.int64))
            invlists.release_ids(list_no, ptr)
    return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)


def _not_in(ids: set[int]) -> Any:
    """Selector of everything but ``ids`` (None when there is nothing to exclude)."""
    if not ids:
        return None
    arr = np.fromiter(ids, dtype=np.int64, count=len(ids))
    batch = faiss.IDSelectorBatch(arr.size, faiss.swig_ptr(arr))  # copies the ids into a hash set
    sel: Any = faiss.IDSelectorNot(batch)
    sel.referenced_batch = batch  # IDSelectorNot holds a raw pointer; keep the batch alive with it
    return sel


def _as_ids(ids: np.ndarray) -> np.ndarray:
    arr = np.asarray(ids)
    if arr.ndim != 1:
        raise ValueError(f"ids must be one-dimensional, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"ids must be integers, got {arr.dtype}")
    return np.ascontiguousarray(arr, dtype=np.int64)


def _sidecar_path(path: Path) -> Path:
    return path.with_name(path.name + SIDECAR_SUFFIX)


def _tmp_path(path: Path) -> Path:
    return path.with_name(path.name + ".tmp")
