"""Dynamic micro-batching: concurrent callers of ``embed_batch`` share model calls.

A transformer on a CPU embeds a batch of 64 paragraphs far faster than 64 batches of one (one pass of
big matrix products instead of many small ones, and the cores stay busy). gRPC handlers arrive one
article at a time on many threads; this wrapper queues their texts and one worker thread runs the
model on everything that is waiting — up to ``max_batch`` texts, or what arrived within
``max_wait_ms`` of the first — then hands every caller exactly its own rows. Under load the queue
fills while the model runs, so each call is a full batch and throughput approaches the model's raw
batch rate; when idle, a caller waits at most ``max_wait_ms`` extra.

Hand-written (a queue and a thread) because the libraries that do this (Triton, Ray Serve, TorchServe)
are servers of their own, not something to put inside a gRPC handler.

Requests larger than ``max_batch`` are cut into chunks that take turns with other callers' texts, so a
bulk upload cannot hold a small Check behind one huge model call. Identical texts in one model call
(wire copies submitted concurrently) are embedded once.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
import weakref
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rewrite_detector_models.embedder import Embedder, EmbedderWrapper

__all__ = ["BatcherStats", "MicroBatchingEmbedder"]

logger = logging.getLogger(__name__)


@dataclass
class BatcherStats:
    """Counters since start: model calls made, caller requests served, texts sent to the model."""

    model_calls: int = 0
    requests: int = 0
    texts_embedded: int = 0
    largest_batch: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {
                "model_calls": self.model_calls,
                "requests": self.requests,
                "texts_embedded": self.texts_embedded,
                "largest_batch": self.largest_batch,
            }


class _Request:
    __slots__ = ("done", "error", "next_row", "result", "rows_left", "texts")

    def __init__(self, texts: list[str], dimension: int) -> None:
        self.texts = texts
        self.result = np.empty((len(texts), dimension), dtype=np.float32)
        self.next_row = 0  # first row not yet handed to the model
        self.rows_left = len(texts)  # rows not yet filled
        self.error: BaseException | None = None
        self.done = threading.Event()


_STOP = object()


class MicroBatchingEmbedder(EmbedderWrapper):
    """An ``Embedder`` that funnels concurrent calls into shared ``inner.embed_batch`` calls."""

    def __init__(self, inner: Embedder, *, max_batch: int = 64, max_wait_ms: float = 2.0) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        self._inner = inner
        self._max_batch = max_batch
        self._max_wait = max_wait_ms / 1000.0
        self._queue: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._start_lock = threading.Lock()
        self._worker: threading.Thread | None = None
        self._closed = False
        self.stats = BatcherStats()
        # The worker holds no reference to self, so an unused batcher is collected and its thread ends.
        self._finalizer = weakref.finalize(self, self._queue.put, _STOP)

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        self._ensure_worker()
        request = _Request(list(texts), self.dimension)
        self._queue.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        """Stop the worker after the requests already queued; later calls raise RuntimeError."""
        with self._start_lock:
            self._closed = True
            worker = self._worker
        self._finalizer()  # enqueues the stop marker (once)
        if worker is not None:
            worker.join()

    def _ensure_worker(self) -> None:
        with self._start_lock:
            if self._closed:
                raise RuntimeError("the embedding batcher is closed")
            if self._worker is None or not self._worker.is_alive():
                self._worker = threading.Thread(
                    target=_run_worker,
                    args=(self._queue, self._inner, self._max_batch, self._max_wait, self.stats),
                    name="embed-batcher",
                    daemon=True,
                )
                self._worker.start()


def _run_worker(
    inbox: queue.SimpleQueue[object],
    inner: Embedder,
    max_batch: int,
    max_wait: float,
    stats: BatcherStats,
) -> None:
    pending: deque[_Request] = deque()  # requests with rows not yet handed to the model, oldest first
    try:
        _serve(inbox, pending, inner, max_batch, max_wait, stats)
    except BaseException as err:  # a bug here must not leave callers waiting forever
        logger.exception("embedding batcher worker failed; the next call starts a new one")
        for request in pending:
            request.error = RuntimeError(f"the embedding batcher failed: {err!r}")
            request.done.set()
        raise


def _serve(
    inbox: queue.SimpleQueue[object],
    pending: deque[_Request],
    inner: Embedder,
    max_batch: int,
    max_wait: float,
    stats: BatcherStats,
) -> None:
    stopping = False
    while not (stopping and not pending):
        if not pending:
            item = inbox.get()
            if item is _STOP:
                stopping = True
                continue
            pending.append(item)  # type: ignore[arg-type]
        # Gather more callers: everything queued now (so they get their fair share even next to a
        # bulk request), then, while the batch is not full, whatever arrives within max_wait.
        deadline = time.monotonic() + max_wait
        while not stopping:
            if sum(len(r.texts) - r.next_row for r in pending) < max_batch:
                timeout = deadline - time.monotonic()
            else:
                timeout = 0.0
            try:
                item = inbox.get(timeout=timeout) if timeout > 0 else inbox.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stopping = True
            else:
                pending.append(item)  # type: ignore[arg-type]
        _run_one_batch(pending, inner, max_batch, stats)
    # A caller that raced close() must not wait forever.
    while True:
        try:
            item = inbox.get_nowait()
        except queue.Empty:
            return
        if isinstance(item, _Request):
            item.error = RuntimeError("the embedding batcher is closed")
            item.done.set()


def _run_one_batch(pending: deque[_Request], inner: Embedder, max_batch: int, stats: BatcherStats) -> None:
    # Fair shares: every waiting request gets up to max_batch / len(pending) of its next rows, then any
    # room left goes to the oldest requests first.
    requests = list(pending)
    takes = [0] * len(requests)
    room = max_batch
    share = max(1, max_batch // len(requests))
    for fill_to in (share, max_batch):
        for i, request in enumerate(requests):
            extra = min(room, fill_to - takes[i], len(request.texts) - request.next_row - takes[i])
            if extra > 0:
                takes[i] += extra
                room -= extra
    slices: list[tuple[_Request, int, int]] = []
    for request, take in zip(requests, takes, strict=True):
        if take:
            slices.append((request, request.next_row, request.next_row + take))
            request.next_row += take
    for request, _, _ in slices:
        if request.next_row == len(request.texts):
            pending.remove(request)

    unique: dict[str, int] = {}
    for request, start, stop in slices:
        for text in request.texts[start:stop]:
            unique.setdefault(text, len(unique))
    try:
        vectors = inner.embed_batch(list(unique))
        failure: BaseException | None = None
    except BaseException as err:  # handed to every caller in the batch, in its own thread
        vectors, failure = None, err

    requests_done = 0
    for request, start, stop in slices:
        if failure is not None:
            request.error = failure
        elif request.error is None:
            rows = [unique[text] for text in request.texts[start:stop]]
            request.result[start:stop] = vectors[rows]  # type: ignore[index]
        request.rows_left -= stop - start
        if request.rows_left == 0 or request.error is not None:
            if request.error is not None and request in pending:
                pending.remove(request)  # a failed request gets no more model time
            if not request.done.is_set():
                requests_done += 1
                request.done.set()
    with stats._lock:
        stats.model_calls += 1
        stats.requests += requests_done
        stats.texts_embedded += len(unique)
        stats.largest_batch = max(stats.largest_batch, len(unique))
