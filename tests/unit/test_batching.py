"""The micro-batcher: concurrent callers share model calls and each gets exactly its own rows."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence

import numpy as np
import pytest

from rewrite_detector_models.batching import MicroBatchingEmbedder
from rewrite_detector_models.embedder import HashingEmbedder

WAIT_SECONDS = 10.0


class CountingEmbedder:
    """The hashing embedder, recording every call; ``gate`` (when set) holds the first call open."""

    def __init__(self, gate: threading.Event | None = None, fail_on: str | None = None) -> None:
        self._inner = HashingEmbedder()
        self.calls: list[list[str]] = []
        self.entered = threading.Event()
        self._gate = gate
        self._fail_on = fail_on
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        with self._lock:
            self.calls.append(list(texts))
            first = len(self.calls) == 1
        self.entered.set()
        if first and self._gate is not None:
            assert self._gate.wait(WAIT_SECONDS), "test gate never opened"
        if self._fail_on is not None and self._fail_on in texts:
            raise ValueError(f"cannot embed {self._fail_on!r}")
        return self._inner.embed_batch(texts)


def alone(texts: Sequence[str]) -> np.ndarray:
    return HashingEmbedder().embed_batch(texts)


def wait_until_queued(batcher: MicroBatchingEmbedder, count: int) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while batcher._queue.qsize() < count:
        assert time.monotonic() < deadline, f"{count} requests never reached the queue"
        time.sleep(0.001)


def run_in_threads(batcher: MicroBatchingEmbedder, requests: list[list[str]]) -> list[threading.Thread]:
    results: dict[int, np.ndarray] = {}
    threads = []
    for i, texts in enumerate(requests):
        thread = threading.Thread(target=lambda i=i, t=texts: results.__setitem__(i, batcher.embed_batch(t)))
        thread.results = results  # type: ignore[attr-defined]
        thread.start()
        threads.append(thread)
    return threads


def test_concurrent_callers_share_one_model_call_and_get_their_own_rows() -> None:
    gate = threading.Event()
    model = CountingEmbedder(gate)
    batcher = MicroBatchingEmbedder(model, max_batch=64, max_wait_ms=0)
    # The first caller's call holds the model; seven more arrive meanwhile and must share the next call.
    first = run_in_threads(batcher, [["the first caller's paragraph"]])
    assert model.entered.wait(WAIT_SECONDS)
    requests = [
        [f"caller {i} paragraph {j}" for j in range(i + 1)] + ["a wire copy everyone sends"] for i in range(7)
    ]
    others = run_in_threads(batcher, requests)
    wait_until_queued(batcher, len(requests))
    gate.set()
    for thread in first + others:
        thread.join(WAIT_SECONDS)
    results = others[0].results  # type: ignore[attr-defined]

    assert len(model.calls) == 2, "the seven queued callers did not share one model call"
    shared = model.calls[1]
    assert set(shared) == {t for r in requests for t in r}
    assert shared.count("a wire copy everyone sends") == 1, (
        "a text sent by several callers was embedded twice"
    )
    for i, texts in enumerate(requests):
        assert np.array_equal(results[i], alone(texts)), f"caller {i} got rows that are not its own"
    assert batcher.stats.snapshot()["model_calls"] == 2
    assert batcher.stats.snapshot()["requests"] == 8


def test_a_large_request_is_cut_into_chunks_and_a_small_one_does_not_wait_for_all_of_it() -> None:
    gate = threading.Event()
    model = CountingEmbedder(gate)
    batcher = MicroBatchingEmbedder(model, max_batch=4, max_wait_ms=0)
    bulk = [f"bulk paragraph {i}" for i in range(10)]
    bulk_thread = run_in_threads(batcher, [bulk])
    assert model.entered.wait(WAIT_SECONDS)  # the bulk request's first chunk is in the model
    small_thread = run_in_threads(batcher, [["a small check", "of two paragraphs"]])
    wait_until_queued(batcher, 1)
    gate.set()
    for thread in bulk_thread + small_thread:
        thread.join(WAIT_SECONDS)

    assert all(len(call) <= 4 for call in model.calls)
    # Second call: the bulk request's next two rows and the small request, together.
    assert model.calls[1] == ["bulk paragraph 4", "bulk paragraph 5", "a small check", "of two paragraphs"]
    bulk_rows = bulk_thread[0].results[0]  # type: ignore[attr-defined]
    small_rows = small_thread[0].results[0]  # type: ignore[attr-defined]
    assert np.array_equal(bulk_rows, alone(bulk))
    assert np.array_equal(small_rows, alone(["a small check", "of two paragraphs"]))


def test_repeated_texts_in_one_request_come_back_in_order() -> None:
    batcher = MicroBatchingEmbedder(CountingEmbedder(), max_batch=8)
    texts = ["b", "a", "b", "c", "a"]
    assert np.array_equal(batcher.embed_batch(texts), alone(texts))
    assert batcher.embed_batch([]).shape == (0, 384)


def test_a_model_error_reaches_every_caller_in_the_batch_and_the_batcher_keeps_working() -> None:
    gate = threading.Event()
    model = CountingEmbedder(gate, fail_on="poison")
    batcher = MicroBatchingEmbedder(model, max_batch=64, max_wait_ms=0)
    errors: list[BaseException] = []

    def call(texts: list[str]) -> None:
        try:
            batcher.embed_batch(texts)
        except ValueError as err:
            errors.append(err)

    threads = [threading.Thread(target=call, args=(["first"],))]
    threads[0].start()
    assert model.entered.wait(WAIT_SECONDS)
    for texts in (["poison"], ["innocent bystander"]):
        threads.append(threading.Thread(target=call, args=(texts,)))
        threads[-1].start()
    wait_until_queued(batcher, 2)
    gate.set()
    for thread in threads:
        thread.join(WAIT_SECONDS)

    assert len(errors) == 2 and all("poison" in str(e) for e in errors)  # both shared the failed call
    assert np.array_equal(batcher.embed_batch(["after the failure"]), alone(["after the failure"]))


def test_close_stops_the_worker_and_later_calls_are_refused() -> None:
    batcher = MicroBatchingEmbedder(CountingEmbedder(), max_batch=8)
    batcher.embed_batch(["start the worker"])
    worker = batcher._worker
    assert worker is not None and worker.is_alive()
    batcher.close()
    assert not worker.is_alive()
    with pytest.raises(RuntimeError, match="closed"):
        batcher.embed_batch(["too late"])


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="max_batch"):
        MicroBatchingEmbedder(HashingEmbedder(), max_batch=0)
    with pytest.raises(ValueError, match="max_wait_ms"):
        MicroBatchingEmbedder(HashingEmbedder(), max_wait_ms=-1)


def test_concurrent_checks_through_the_server_share_model_calls(start_server, seeds) -> None:  # type: ignore[no-untyped-def]
    """The service wires the batcher in: concurrent Checks on the real server share model calls."""
    from rewrite_detector import Client

    gate = threading.Event()
    gate.set()  # open while indexing
    model = CountingEmbedder(gate)
    server = start_server(model, embed_cache_size=0)
    server.client.index_article("001", seeds["001"])
    # A closing paragraph no other text has: every Check needs the model, none is answered by the store.
    texts = [seeds[p] + f"\n\nA closing paragraph only check {p} has." for p in ("000", "002", "003", "004")]
    verdicts: dict[int, int] = {}
    clients = [Client(server.target, timeout=60) for _ in texts]

    def check(i: int) -> None:
        verdicts[i] = clients[i].check(texts[i]).verdict

    gate.clear()
    model.calls.clear()
    model.entered.clear()
    first = threading.Thread(target=check, args=(0,))
    first.start()
    assert model.entered.wait(WAIT_SECONDS)
    rest = [threading.Thread(target=check, args=(i,)) for i in range(1, len(texts))]
    for thread in rest:
        thread.start()
    wait_until_queued(server.detector.embedder, len(rest))
    gate.set()
    for thread in [first, *rest]:
        thread.join(60)
    for client in clients:
        client.close()

    assert len(model.calls) == 2, "three concurrent Checks did not share one model call"
    assert len(verdicts) == len(texts)
    for i, text in enumerate(texts):  # the same verdicts as one at a time
        assert server.client.check(text).verdict == verdicts[i]
