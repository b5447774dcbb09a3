"""Shared fixtures: seed texts, embedders, and a real gRPC server on 127.0.0.1:0 with a temp data dir."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
SEEDS_DIR = ROOT / "seeds"


def seed_path(prefix: str) -> Path:
    (path,) = SEEDS_DIR.glob(f"{prefix}_*.txt")
    return path


def seed_text(prefix: str) -> str:
    # newline="" keeps \r and \n as they are, so spans index the file's real characters.
    with seed_path(prefix).open(encoding="utf-8", newline="") as handle:
        return handle.read()


@pytest.fixture(scope="session")
def seeds() -> dict[str, str]:
    return {p: seed_text(p) for p in ("000", "001", "002", "003", "004")}


@pytest.fixture(scope="session")
def real_embedder():  # type: ignore[no-untyped-def]
    """The bundled all-MiniLM-L6-v2, loaded once per test session."""
    from rewrite_detector_models import SentenceTransformerEmbedder

    return SentenceTransformerEmbedder()


@pytest.fixture
def hashing_embedder():  # type: ignore[no-untyped-def]
    from rewrite_detector_models import HashingEmbedder

    return HashingEmbedder()


@dataclass
class ServerHandle:
    """A real server bound to an ephemeral loopback port, plus a client connected to it."""

    running: object
    detector: object
    client: object
    data_dir: Path

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.running.port}"  # type: ignore[attr-defined]

    def stop(self) -> None:
        self.client.close()  # type: ignore[attr-defined]
        self.running.stop(None)  # type: ignore[attr-defined]
        self.detector.storage.close()  # type: ignore[attr-defined]


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerHandle]]:
    """Factory: start_server(embedder, data_dir=None, **settings) -> ServerHandle; all stopped at teardown."""
    from rewrite_detector import Client
    from rewrite_detector_server.app import build_detector, create_server
    from rewrite_detector_server.config import Settings

    handles: list[ServerHandle] = []

    def start(embedder: object, data_dir: Path | None = None, **overrides: object) -> ServerHandle:
        settings = Settings(data_dir=data_dir or tmp_path / "data", **overrides)  # type: ignore[arg-type]
        detector = build_detector(settings, embedder)  # type: ignore[arg-type]
        running = create_server(detector, "127.0.0.1:0", settings)
        client = Client(f"127.0.0.1:{running.port}", timeout=60)
        handle = ServerHandle(running, detector, client, settings.data_dir)
        handles.append(handle)
        return handle

    yield start
    for handle in handles:
        # A handle the test already stopped (restart scenarios) raises on a second stop.
        with contextlib.suppress(Exception):
            handle.stop()


class MilvusServer:
    """milvus-lite run as a standalone Milvus server on a fixed loopback port: reached over http:// like a
    Milvus cluster, and stoppable/restartable (same port, same data) to stage a real outage."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = str(data_dir)
        self.port = 0
        self.running = False
        self.start()

    def start(self) -> None:
        from milvus_lite.adapter.grpc.server import start_server_in_thread

        self._server, self._db, self.port = start_server_in_thread(self.data_dir, port=self.port)
        self.running = True

    def stop(self) -> None:
        if self.running:
            self._server.stop(grace=None).wait()
            self._db.close()
            self.running = False

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture
def milvus_server(tmp_path: Path) -> Iterator[MilvusServer]:
    server = MilvusServer(tmp_path / "milvus-server")
    yield server
    server.stop()
