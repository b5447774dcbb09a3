"""Wiring: build the detector from settings, create the gRPC server, run it until a signal arrives."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures
from pathlib import Path
from types import FrameType

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from rewrite_detector.v1 import detector_pb2, detector_pb2_grpc

from rewrite_detector_models.calibration import load_calibration
from rewrite_detector_models.embedder import Embedder, load_embedder
from rewrite_detector_server.config import Settings
from rewrite_detector_server.core.align import AlignmentParams
from rewrite_detector_server.core.detector import Detector, DetectorLimits
from rewrite_detector_server.core.scoring import VerdictParams
from rewrite_detector_server.servicer import DetectorServicer
from rewrite_detector_server.storage import Storage

logger = logging.getLogger(__name__)

SERVICE_NAME = detector_pb2.DESCRIPTOR.services_by_name["RewriteDetector"].full_name


def build_detector(settings: Settings, embedder: Embedder | None = None) -> Detector:
    """Load the model (unless given), open the data dir, apply the shipped calibration."""
    embedder = embedder or load_embedder(settings.model)
    storage = Storage.open(
        Path(settings.data_dir),
        model_name=embedder.name,
        dimension=embedder.dimension,
        index_type=settings.index_type,
    )
    calibration = load_calibration()
    return Detector(
        embedder,
        storage,
        alignment=AlignmentParams(**calibration.get("alignment", {})),
        verdict=VerdictParams(**calibration.get("verdict", {})),
        limits=DetectorLimits(max_text_bytes=settings.max_text_bytes),
        index_type=settings.index_type,
    )


class RunningServer:
    """A started server with its bound port and health servicer."""

    def __init__(self, server: grpc.Server, port: int, health_servicer: health.HealthServicer) -> None:
        self.server = server
        self.port = port
        self.health = health_servicer

    def stop(self, grace: float | None = None) -> None:
        # Tell load balancers first, then drain in-flight calls for `grace` seconds.
        self.health.enter_graceful_shutdown()
        self.server.stop(grace).wait()


def create_server(detector: Detector, address: str, settings: Settings | None = None) -> RunningServer:
    """Bind `address` (port 0 = ephemeral), register services, start; health says SERVING when done."""
    settings = settings or Settings()
    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
    ]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=settings.max_workers), options=options)
    detector_pb2_grpc.add_RewriteDetectorServicer_to_server(DetectorServicer(detector), server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME),
        server,
    )
    port = server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind {address}")
    server.start()
    health_servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_servicer.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, port, health_servicer)


def serve_forever(
    host: str | None = None,
    port: int | None = None,
    data_dir: str | Path | None = None,
    model: str | None = None,
    index_type: str | None = None,
) -> None:
    """Run until SIGTERM/SIGINT, then drain in-flight calls and persist the index."""
    settings = Settings.from_env(host=host, port=port, data_dir=data_dir, model=model, index_type=index_type)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
    )
    logger.info("loading model=%s data_dir=%s", settings.model, settings.data_dir)
    detector = build_detector(settings)
    running = create_server(detector, f"{settings.host}:{settings.port}", settings)
    logger.info(
        "serving address=%s:%d model=%s articles=%d",
        settings.host,
        running.port,
        detector.embedder.name,
        detector.storage.count_articles(),
    )
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        logger.info("signal=%s shutting down grace_seconds=%.1f", signal.Signals(signum).name, settings.shutdown_grace_seconds)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    running.stop(settings.shutdown_grace_seconds)
    detector.storage.close()
    logger.info("stopped")
