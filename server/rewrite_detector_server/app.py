"""Wiring: build the detector from settings, create the gRPC server, run it until a signal arrives."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from pathlib import Path
from types import FrameType
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from rewrite_detector.v1 import detector_pb2, detector_pb2_grpc
from rewrite_detector_models.calibration import load_calibration
from rewrite_detector_models.embedder import Embedder, load_embedder
from rewrite_detector_models.serving import (
    EMBEDDING_CACHE_FILE,
    MODELS_SUBDIR,
    close_serving_embedder,
    serving_embedder,
)
from rewrite_detector_server.auth import (
    AuthInterceptor,
    TokenTable,
    check_exposure,
    exposure_warnings,
    server_credentials,
)
from rewrite_detector_server.config import Settings, check_retrieval_settings, check_storage_settings
from rewrite_detector_server.core.align import AlignmentParams
from rewrite_detector_server.core.detector import Detector, DetectorLimits, RetrievalParams
from rewrite_detector_server.core.fingerprints import LexicalParams
from rewrite_detector_server.core.passages import PassageParams
from rewrite_detector_server.core.scoring import VerdictParams
from rewrite_detector_server.logging_setup import configure_logging
from rewrite_detector_server.match_pool import ProcessMatchRunner, default_match_workers
from rewrite_detector_server.metrics import ServerMetrics
from rewrite_detector_server.observability import ObservabilityInterceptor
from rewrite_detector_server.request_decoding import RequestDecodingInterceptor
from rewrite_detector_server.servicer import DetectorServicer
from rewrite_detector_server.storage import IndexOptions, Storage

logger = logging.getLogger(__name__)

SERVICE_NAME = detector_pb2.DESCRIPTOR.services_by_name["RewriteDetector"].full_name


def build_detector(settings: Settings, embedder: Embedder | None = None) -> Detector:
    """Load the model (unless given), open the data dir, apply the shipped calibration.

    The model (given or loaded) is served behind the embedding LRU and the micro-batcher.
    Raises ``ConfigError`` for storage settings that cannot work together.
    """
    check_storage_settings(settings)
    check_retrieval_settings(settings)
    data_dir = Path(settings.data_dir)
    model = embedder or load_embedder(
        settings.model,
        backend=settings.embed_backend,
        cache_dir=Path(settings.model_cache_dir) if settings.model_cache_dir else data_dir / MODELS_SUBDIR,
        threads=settings.embed_threads,
    )
    embedder = serving_embedder(
        model,
        batch_size=settings.embed_batch_size,
        batch_wait_ms=settings.embed_batch_wait_ms,
        cache_size=settings.embed_cache_size,
        cache_file=data_dir / EMBEDDING_CACHE_FILE,
    )
    milvus = None
    if settings.vector_backend == "milvus":  # pymilvus is an optional extra: import it only when used
        from rewrite_detector_server.storage.milvus_index import MilvusOptions

        milvus = MilvusOptions(
            uri=settings.milvus_uri, collection=settings.milvus_collection, token=settings.milvus_token
        )
    storage = Storage.open(
        Path(settings.data_dir),
        model_name=embedder.name,
        dimension=embedder.dimension,
        index_type=settings.index_type,
        snapshot_every=settings.snapshot_every,
        vector_backend=settings.vector_backend,
        milvus=milvus,
        store_url=settings.store_url,
        index_options=IndexOptions(
            ivf_nprobe=settings.ivf_nprobe,
            ivf_regrow=settings.ivf_regrow,
            ivf_fast_scan=settings.ivf_fast_scan,
        ),
    )
    calibration = load_calibration()
    workers = default_match_workers() if settings.match_workers == -1 else settings.match_workers
    return Detector(
        embedder,
        storage,
        alignment=AlignmentParams(**calibration.get("alignment", {})),
        verdict=VerdictParams(**calibration.get("verdict", {})),
        passages=PassageParams(**calibration.get("passages", {})),
        limits=DetectorLimits(max_text_bytes=settings.max_text_bytes),
        index_type=storage.index_type,
        retrieval=RetrievalParams(lexical=LexicalParams(min_shared=settings.lexical_min_shared)),
        match_runner=ProcessMatchRunner(workers) if workers > 0 else None,
    )


class RunningServer:
    """A started server with its bound port and health servicer (and metrics, when enabled)."""

    def __init__(
        self,
        server: grpc.Server,
        port: int,
        health_servicer: health.HealthServicer,
        metrics: ServerMetrics | None = None,
        metrics_port: int | None = None,
    ) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer
        self.metrics = metrics
        self.metrics_port = metrics_port

    def stop(self, grace: float | None = None) -> None:
        # Tell load balancers first, then drain in-flight calls for `grace` seconds.
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()
        if self.metrics is not None:
            self.metrics.close()


def create_server(detector: Detector, address: str, settings: Settings | None = None) -> RunningServer:
    """Bind `address` (port 0 = ephemeral), register services, start; health says SERVING when done.

    Raises ``AuthConfigError`` for unusable auth/TLS settings, or a non-loopback address without tokens
    (unless ``insecure_no_auth``).
    """
    settings = settings or Settings()
    host = address.rsplit(":", 1)[0]
    tokens = TokenTable.from_settings(settings)
    check_exposure(host, tokens, settings)
    credentials = server_credentials(settings)
    # Metrics (settings.metrics_port > 0) also wire the detector's observer to them.
    metrics = ServerMetrics() if settings.metrics_port else None
    if metrics is not None:
        metrics.watch(detector)
    # Observability outermost, so refused calls get a request id, a log line and a count too. Then auth:
    # a refused call is answered before its payload is even parsed.
    interceptors: list[grpc.ServerInterceptor] = [ObservabilityInterceptor(metrics)]
    if tokens:
        interceptors.append(AuthInterceptor(tokens))
    interceptors.append(RequestDecodingInterceptor())
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=settings.max_workers),
        options=options,
        interceptors=interceptors,
    )
    detector_pb2_grpc.add_RewriteDetectorServicer_to_server(DetectorServicer(detector), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    if credentials is None:
        port = server.add_insecure_port(address)
    else:
        port = server.add_secure_port(address, credentials)
    if port == 0:
        raise OSError(f"could not bind {address}")
    metrics_port = metrics.serve(settings.metrics_port, host.strip("[]")) if metrics is not None else None
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    logger.info(
        "listening address=%s port=%d tls=%s mutual_tls=%s auth=%s",
        address,
        port,
        "on" if credentials else "off",
        "on" if settings.tls_client_ca else "off",
        f"on tokens={len(tokens)}" if tokens else "off",
    )
    for warning in exposure_warnings(host, tokens, settings):
        logger.warning("%s", warning)
    return RunningServer(server, port, health_servicer, metrics, metrics_port)


def serve_forever(
    host: str | None = None,
    port: int | None = None,
    data_dir: str | Path | None = None,
    model: str | None = None,
    index_type: str | None = None,
    **overrides: Any,
) -> None:
    """Run until SIGTERM/SIGINT, then drain in-flight calls and persist the index.

    ``overrides``: any other ``Settings`` field (None = not given), e.g. tokens_file, tls_cert.
    """
    settings = Settings.from_env(
        host=host, port=port, data_dir=data_dir, model=model, index_type=index_type, **overrides
    )
    configure_logging(settings.log_level)
    # Refuse a bad auth/TLS setup before spending seconds loading the model; create_server checks again.
    check_exposure(settings.host, TokenTable.from_settings(settings), settings)
    server_credentials(settings)
    check_storage_settings(settings)
    check_retrieval_settings(settings)
    logger.info(
        "loading model=%s backend=%s data_dir=%s", settings.model, settings.embed_backend, settings.data_dir
    )
    detector = build_detector(settings)
    running = create_server(detector, f"{settings.host}:{settings.port}", settings)
    logger.info(
        "serving address=%s:%d model=%s articles=%d store=%s match_workers=%d",
        settings.host,
        running.port,
        detector.embedder.name,
        detector.storage.count_articles(),
        detector.storage.store_location,
        detector.match_runner.workers,
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info(
            "signal=%s shutting down grace_seconds=%.1f",
            signal.Signals(signum).name,
            settings.shutdown_grace_seconds,
        )
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    running.stop(settings.shutdown_grace_seconds)
    detector.close()
    close_serving_embedder(detector.embedder, cache_file=Path(settings.data_dir) / EMBEDDING_CACHE_FILE)
    logger.info("stopped")
