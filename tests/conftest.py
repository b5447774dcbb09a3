"""Shared fixtures: seed texts, embedders, and a real gRPC server on 127.0.0.1:0 with a temp data dir."""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

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
        self.detector.close()  # type: ignore[attr-defined]


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


def free_port() -> int:
    """A loopback port that was free a moment ago (for servers that cannot report the port they bound)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# What to install when the PostgreSQL server binaries are missing (Debian/Ubuntu; CI's image has them).
POSTGRES_INSTALL_HINT = "apt-get install postgresql (PostgreSQL server binaries: initdb, postgres)"


def postgres_bin_dir() -> Path | None:
    """Directory holding ``initdb`` and ``postgres``: on PATH, else Debian's /usr/lib/postgresql/<v>/bin."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("postgres"):
        return Path(initdb).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


class PostgresServer:
    """A throwaway PostgreSQL cluster: ``initdb`` into a temp dir, ``postgres`` on an ephemeral loopback
    port, durability off (test data only). As root it runs as the ``postgres`` system user, because
    ``initdb`` and ``postgres`` refuse to run as root."""

    SUPERUSER = "rewrite_detector_test"

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self._run_as: dict[str, Any] = {}
        if os.geteuid() == 0:
            try:
                account = pwd.getpwnam("postgres")
            except KeyError:
                pytest.skip(
                    "PostgreSQL refuses to run as root and there is no 'postgres' user to run it as: "
                    f"{POSTGRES_INSTALL_HINT} creates one"
                )
            self._run_as = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
        self.root = Path(tempfile.mkdtemp(prefix="rewrite-detector-pg-"))
        if self._run_as:
            os.chown(self.root, self._run_as["user"], self._run_as["group"])
        self.port = 0
        self._process: subprocess.Popen[str] | None = None
        self._databases = 0
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                *("-D", str(self.root / "data"), "-U", self.SUPERUSER, "-A", "trust"),
                *("-E", "UTF8", "--no-locale", "--no-sync"),
            ],
            check=True,
            capture_output=True,
            text=True,
            **self._run_as,
        )
        self.start()

    def start(self) -> None:
        import psycopg

        for _attempt in range(3):  # the port is picked before postgres binds it: retry if taken meanwhile
            self.port = free_port()
            log = open(self.root / "postgres.log", "a")  # noqa: SIM115 - postgres writes it while it runs
            settings = {
                "listen_addresses": "127.0.0.1",
                "unix_socket_directories": str(self.root),
                "fsync": "off",
                "synchronous_commit": "off",
                "full_page_writes": "off",
                "max_connections": "200",
            }
            options = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
            command = [str(self.bin_dir / "postgres"), "-D", str(self.root / "data"), "-p", str(self.port)]
            self._process = subprocess.Popen(
                [*command, *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
                **self._run_as,
            )
            log.close()
            deadline = time.monotonic() + 30
            while self._process.poll() is None and time.monotonic() < deadline:
                try:
                    psycopg.connect(self.url("postgres"), connect_timeout=2).close()
                    return
                except psycopg.OperationalError:
                    time.sleep(0.05)
            self.stop()
        raise RuntimeError(f"postgres did not start: {(self.root / 'postgres.log').read_text()[-2000:]}")

    def url(self, database: str) -> str:
        return f"postgresql://{self.SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def new_database(self) -> str:
        """A fresh, empty database; returns its URL."""
        import psycopg

        self._databases += 1
        name = f"test_{self._databases}"
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {name}")
        return self.url(name)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()  # SIGTERM = "smart" shutdown; SIGINT would be "fast"
            try:
                self._process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        self._process = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL per test session; tests take their own database from it (``postgres_url``)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        pytest.skip(f"PostgreSQL server binaries not found: {POSTGRES_INSTALL_HINT}")
    pytest.importorskip("psycopg", reason="pip install -e '.[dev]' (psycopg[binary,pool])")
    server = PostgresServer(bin_dir)
    yield server
    server.remove()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> str:
    """URL of a fresh, empty database on the session's PostgreSQL."""
    return postgres_server.new_database()


@pytest.fixture
def held_regrow(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Any]]:
    """Stops a background IVF regrow right after it starts (before it decodes anything) until released,
    so a test can write while it runs. Yields (started, release) events."""
    import threading

    from rewrite_detector_server.storage import vector_index

    started, release = threading.Event(), threading.Event()
    real = vector_index._training_sample

    def holding(n: int, nlist: int) -> Any:
        if threading.current_thread().name == "ivf-regrow":
            started.set()
            assert release.wait(30)
        return real(n, nlist)

    monkeypatch.setattr(vector_index, "_training_sample", holding)
    yield started, release
    release.set()
