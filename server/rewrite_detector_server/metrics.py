"""Prometheus metrics of one server: RPCs, embedding work, index size; and the /metrics endpoint.

Names follow the conventions of go-grpc-prometheus / py-grpc-prometheus (``grpc_server_handled_total``,
``grpc_server_handling_seconds`` with ``grpc_type``/``grpc_service``/``grpc_method``/``grpc_code`` labels) so
existing gRPC dashboards work; the latency histogram also carries ``grpc_code`` so slow failures and slow
successes can be told apart. Labels only ever hold registered method names and status-code names: an
unknown method is answered UNIMPLEMENTED by gRPC before it reaches us, so callers cannot inflate label
cardinality.

Each ``ServerMetrics`` has its own registry (not prometheus_client's global one), so several servers in
one process — tests do this — keep separate counts.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

    from rewrite_detector_server.core.detector import Detector

__all__ = ["ServerMetrics"]

log = logging.getLogger(__name__)

_RPC_LABELS = ("grpc_type", "grpc_service", "grpc_method")
# Seconds: a Compare is milliseconds, a Check of a long article against a large index can take seconds,
# a bulk IndexArticles stream minutes.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)
# Texts per model call: one paragraph up to a whole long article (detector limit: 20,000 paragraphs).
_BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096, 16384)


class ServerMetrics:
    """The metrics, the detector observer that feeds them, and the optional HTTP endpoint."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.rpc_started = Counter(
            "grpc_server_started_total", "RPCs started on the server.", _RPC_LABELS, registry=r
        )
        self.rpc_handled = Counter(
            "grpc_server_handled_total",
            "RPCs completed on the server, by status code.",
            (*_RPC_LABELS, "grpc_code"),
            registry=r,
        )
        self.rpc_seconds = Histogram(
            "grpc_server_handling_seconds",
            "Time from the start of an RPC to its status (streams: to their last message), by status code.",
            (*_RPC_LABELS, "grpc_code"),
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.embed_batch_size = Histogram(
            "rewrite_detector_embed_batch_size",
            "Texts per embedding request of the detector: one article's or check's paragraphs that the "
            "store's embedding cache lacked. The micro-batcher may merge concurrent requests into larger "
            "model calls (rewrite_detector_model_texts_total / rewrite_detector_model_calls_total).",
            buckets=_BATCH_BUCKETS,
            registry=r,
        )
        self.embedding_cache = Counter(
            "rewrite_detector_embedding_cache_lookups_total",
            "Paragraph embeddings looked up in the store (embeddings of indexed paragraph texts) before "
            "asking the embedder, by result (hit/miss).",
            ("result",),
            registry=r,
        )
        self.articles = Gauge("rewrite_detector_articles", "Articles in the store.", registry=r)
        self.stored_vectors = Gauge(
            "rewrite_detector_stored_vectors",
            "Paragraph embeddings in the store (the source of truth).",
            registry=r,
        )
        self.index_vectors = Gauge(
            "rewrite_detector_index_vectors",
            "Vectors searchable in the vector index (equals stored vectors once writes are applied).",
            registry=r,
        )
        self._http: WSGIServer | None = None
        self._http_thread: threading.Thread | None = None

    # ----------------------------------------------------------- detector observer

    def on_embed_batch(self, size: int) -> None:
        self.embed_batch_size.observe(size)

    def on_embedding_cache(self, hits: int, misses: int) -> None:
        if hits:
            self.embedding_cache.labels(result="hit").inc(hits)
        if misses:
            self.embedding_cache.labels(result="miss").inc(misses)

    def watch(self, detector: Detector) -> None:
        """Feed the detector's observations into these metrics; read index sizes at scrape time."""
        detector.observer = self
        self.registry.register(_EmbedderStackCollector(detector.embedder))
        self.registry.register(_MatchPoolCollector(detector.match_runner))
        storage = detector.storage
        self.articles.set_function(_or_nan(storage.count_articles))
        self.stored_vectors.set_function(_or_nan(storage.count_vectors))
        self.index_vectors.set_function(_or_nan(lambda: storage.index_ntotal))

    # ------------------------------------------------------------------ RPC hooks

    def rpc_start(self, rpc_type: str, service: str, method: str) -> None:
        self.rpc_started.labels(rpc_type, service, method).inc()

    def rpc_done(
        self, rpc_type: str, service: str, method: str, code: grpc.StatusCode, seconds: float
    ) -> None:
        self.rpc_handled.labels(rpc_type, service, method, code.name).inc()
        self.rpc_seconds.labels(rpc_type, service, method, code.name).observe(seconds)

    # ------------------------------------------------------------------- endpoint

    def serve(self, port: int, host: str) -> int:
        """Serve ``/metrics`` over HTTP on ``host:port`` (port 0 = any free port); returns the port."""
        httpd, thread = start_http_server(port, addr=host, registry=self.registry)
        self._http, self._http_thread = httpd, thread
        bound = int(httpd.server_port)
        log.info("metrics endpoint listening address=%s port=%d path=/metrics", host, bound)
        return bound

    def close(self) -> None:
        """Stop the HTTP endpoint (if serving)."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._http_thread is not None:
            self._http_thread.join(timeout=5)
            self._http_thread = None


class _EmbedderStackCollector(Collector):
    """Counters of the serving embedder stack (``rewrite_detector_models.serving``: LRU cache, then
    micro-batcher, then model), read at scrape time. Duck-typed on the wrappers' public counters so a
    stack without them (batching or cache disabled) simply exports less."""

    def __init__(self, embedder: object) -> None:
        self._embedder = embedder

    def collect(self) -> Iterator[Metric]:
        lru = _find_in_stack(self._embedder, lambda e: hasattr(e, "hits") and hasattr(e, "misses"))
        if lru is not None:
            lookups = CounterMetricFamily(
                "rewrite_detector_embedding_lru_lookups",
                "Texts looked up in the embedder's in-memory LRU cache, by result (hit/miss).",
                labels=("result",),
            )
            lookups.add_metric(("hit",), float(lru.hits))  # type: ignore[attr-defined]
            lookups.add_metric(("miss",), float(lru.misses))  # type: ignore[attr-defined]
            yield lookups
        batcher = _find_in_stack(self._embedder, lambda e: hasattr(getattr(e, "stats", None), "snapshot"))
        if batcher is not None:
            snap = batcher.stats.snapshot()  # type: ignore[attr-defined]
            yield CounterMetricFamily(
                "rewrite_detector_model_calls",
                "Calls of the embedding model (each runs one micro-batch).",
                value=snap["model_calls"],
            )
            yield CounterMetricFamily(
                "rewrite_detector_model_texts",
                "Texts embedded by the model; divided by model calls it is the mean model batch size.",
                value=snap["texts_embedded"],
            )
            yield GaugeMetricFamily(
                "rewrite_detector_model_largest_batch",
                "Largest micro-batch the model has run since start.",
                value=snap["largest_batch"],
            )


class _MatchPoolCollector(Collector):
    """Counters of the match worker pool (``match_pool.ProcessMatchRunner``), read at scrape time; a
    detector building its matches in-process exports none."""

    def __init__(self, runner: object) -> None:
        self._runner = runner

    def collect(self) -> Iterator[Metric]:
        runner = self._runner
        if not hasattr(runner, "pooled_jobs"):
            return
        jobs = CounterMetricFamily(
            "rewrite_detector_match_jobs",
            "Per-source matches built, by where: by a match worker process, or in the serving process "
            "(a request alone there builds its first source itself; also a broken or closed pool's jobs).",
            labels=("where",),
        )
        jobs.add_metric(("worker",), float(runner.pooled_jobs))  # type: ignore[attr-defined]
        jobs.add_metric(("serving_process",), float(runner.local_jobs))  # type: ignore[attr-defined]
        yield jobs
        yield CounterMetricFamily(
            "rewrite_detector_match_pool_restarts",
            "Match worker pools replaced because a worker died.",
            value=float(runner.restarts),  # type: ignore[attr-defined]
        )
        yield GaugeMetricFamily(
            "rewrite_detector_match_workers",
            "Match worker processes configured (MATCH_WORKERS).",
            value=float(runner.workers),  # type: ignore[attr-defined]
        )


def _find_in_stack(embedder: object, matches: Callable[[object], bool]) -> object | None:
    """The first wrapper in the ``.inner`` chain that ``matches``."""
    current: object | None = embedder
    for _ in range(8):  # the stack is two or three deep; bounded in case of a cycle
        if current is None:
            return None
        if matches(current):
            return current
        current = getattr(current, "inner", None)
    return None


def _or_nan(read: Callable[[], int]) -> Callable[[], float]:
    """A scrape must not fail because the storage is closing: report NaN instead."""

    def value() -> float:
        try:
            return float(read())
        except Exception:
            log.debug("index size unavailable for metrics", exc_info=True)
            return math.nan

    return value
