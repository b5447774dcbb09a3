"""Build a Check's per-source matches in worker processes.

One serving process runs its Python one thread at a time (the GIL): at 1M indexed paragraphs and 8
concurrent clients the server used 1.33 of the 2 cores, the GIL held ~20 ms per Check, and about 60 % of
that was the per-source alignment and passage search (bench/RESULTS.md, stop 15). That work is a pure
function of its inputs (core/matching.py), so it runs here in a pool of worker processes while the
serving process keeps the model, the index and the store. Jobs of one Check run in parallel too.

concurrent.futures' ProcessPoolExecutor does the process management; this wraps it to (1) start the
workers in the background when the server starts, not on the first Check, (2) survive a worker that
dies (OOM killer, a crash in a C extension): the executor is replaced and the jobs it lost are built in
this process, so the request still gets its answer, and (3) take the workers down with the serving
process, however it ends.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection

from rewrite_detector_server.core.matching import MatchJob, SourceMatchResult, build_match

logger = logging.getLogger(__name__)


# Not fork: the serving process has gRPC, ONNX Runtime and OpenMP threads running, which a forked child
# would inherit in an undefined state. The fork server is a clean process started once (per serving
# process) that has imported the matching code already: each worker is a fork of it, milliseconds instead
# of the ~0.4 s a spawned worker spends importing numpy and the core.
_CONTEXT = multiprocessing.get_context("forkserver")
_CONTEXT.set_forkserver_preload(["rewrite_detector_server.core.matching"])


def default_match_workers() -> int:
    """One worker per usable core; none on a single core, where a worker only adds the hand-over."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return cores if cores > 1 else 0


def _exit_with_server(server_alive: Connection) -> None:
    """Worker initializer: exit when the serving process does, however it ends.

    A pool's workers wait on a pipe they also hold the write end of, and the fork server (their parent)
    stays up while they do (each child also holds its "alive" pipe), so a serving process killed with
    SIGKILL (the OOM killer, a crash) would leave them waiting forever. ``server_alive`` is the read end of
    a pipe whose only write end the serving process holds: it reads EOF the moment that process is gone.
    """

    def watch() -> None:
        with contextlib.suppress(EOFError, OSError):
            server_alive.recv()
        os._exit(0)  # nothing to clean up: a worker holds nothing but its caches

    threading.Thread(target=watch, name="match-worker-server-watch", daemon=True).start()


def _ready() -> int:
    # A no-op job: submitting it is what makes the executor start a worker.
    return os.getpid()


class ProcessMatchRunner:
    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers must be >= 1, got {workers}")
        self.workers = workers
        self._lock = threading.Lock()
        self._closed = False
        # Never written to: its read end tells the workers when this process is gone (_exit_with_server).
        self._server_alive, self._server_alive_writer = _CONTEXT.Pipe(duplex=False)
        self._requests = 0  # requests in flight (request())
        # Read by the metrics at scrape time: jobs built by the workers and here, executors replaced.
        self.pooled_jobs = 0
        self.local_jobs = 0
        self.restarts = 0
        self._executor = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        executor = concurrent.futures.ProcessPoolExecutor(
            max_workers=self.workers,
            mp_context=_CONTEXT,
            initializer=_exit_with_server,
            initargs=(self._server_alive,),
        )
        # Workers start on the first submit, and the first one waits for the fork server to import the
        # matching code (~0.4 s): done from a thread, so that serving starts without waiting for it and
        # the first Check finds the workers up.
        threading.Thread(target=self._warm, args=(executor,), name="match-pool-start", daemon=True).start()
        return executor

    def _warm(self, executor: concurrent.futures.ProcessPoolExecutor) -> None:
        try:
            for future in [executor.submit(_ready) for _ in range(self.workers)]:
                future.result()
        except (BrokenProcessPool, RuntimeError):  # closed before it was up, or a worker died: run() copes
            pass

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        with self._lock:
            self._requests += 1
        try:
            yield
        finally:
            with self._lock:
                self._requests -= 1

    def run(self, jobs: Sequence[MatchJob]) -> list[SourceMatchResult]:
        # Alone in the process the GIL is free: the first job is built here while the workers build the
        # rest. The hand-over (pickling both articles, two process hops) costs ~2.5 ms a job, which only
        # pays when this thread would otherwise wait for the GIL or leave a core idle (at 1M, one client's
        # p50 went 28 -> 35 ms with every job sent to the workers; with this rule it is unchanged).
        local = list(jobs[:1]) if self._requests <= 1 else []
        remote = jobs[len(local) :]
        futures: list[concurrent.futures.Future[SourceMatchResult]] = []
        with self._lock:
            executor = self._executor
        if remote:
            try:
                futures = [executor.submit(build_match, job) for job in remote]
            except RuntimeError:  # shut down (closing) or broken (BrokenProcessPool is a RuntimeError)
                self._replace(executor)
                return self._build_here(jobs)
        results = self._build_here(local)
        for job, future in zip(remote, futures, strict=True):
            try:
                results.append(future.result())
                with self._lock:
                    self.pooled_jobs += 1
            except BrokenProcessPool:
                self._replace(executor)
                results.extend(self._build_here([job]))
        return results

    def _build_here(self, jobs: Sequence[MatchJob]) -> list[SourceMatchResult]:
        with self._lock:
            self.local_jobs += len(jobs)
        return [build_match(job) for job in jobs]

    def _replace(self, broken: concurrent.futures.ProcessPoolExecutor) -> None:
        with self._lock:
            if self._closed or self._executor is not broken:  # closing, or another thread replaced it
                return
            logger.warning(
                "match worker pool broken (a worker died); starting a new one workers=%d", self.workers
            )
            broken.shutdown(wait=False, cancel_futures=True)
            self._executor = self._start()
            self.restarts += 1

    def close(self) -> None:
        with self._lock:
            self._closed = True
            executor = self._executor
        executor.shutdown(wait=True, cancel_futures=True)
        self._server_alive_writer.close()
