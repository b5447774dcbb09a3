"""A rewrite-detector server in a child process, for the reliability scripts (kill, load, fuzz).

The child runs the real CLI (``python -m rewrite_detector serve``) on 127.0.0.1 with port 0; the bound
port is read from its "serving address=..." log line, so there is no race for a free port. Loopback only:
these scripts hammer the server and must never aim at another machine.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

_SERVING = re.compile(r"serving address=127\.0\.0\.1:(\d+)")
_OPENED = re.compile(
    r"storage opened .* status=(\w+) store_vectors=(\d+) snapshot_vectors=(\d+) "
    r"orphans_removed=(\d+) missing_added=(\d+) seconds=([\d.]+)"
)


class ServerExited(RuntimeError):
    """The child stopped before it was ready (or while it was expected to be serving)."""


class ServerProcess:
    """``python -m rewrite_detector serve --host 127.0.0.1 --port 0`` with its log in ``log_path``."""

    def __init__(
        self,
        data_dir: Path,
        log_path: Path,
        *,
        model: str = "hashing",
        env: dict[str, str] | None = None,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.data_dir = Path(data_dir)
        self.log_path = Path(log_path)
        self.model = model
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env or {})}
        self.extra_args = extra_args
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0
        self._log_offset = 0

    # ------------------------------------------------------------------ lifecycle

    def spawn(self) -> None:
        """Start the child without waiting for it (a kill can then land during start-up)."""
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        command = [
            sys.executable,
            "-m",
            "rewrite_detector",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--data-dir",
            str(self.data_dir),
            "--model",
            self.model,
            *self.extra_args,
        ]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        self.port = 0

    def wait_serving(self, timeout: float = 120.0) -> int:
        """Block until the child logs its port; returns it. ``ServerExited`` if it dies first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = _SERVING.search(self.log_since_spawn())
            if found:
                self.port = int(found.group(1))
                return self.port
            if self.process is not None and self.process.poll() is not None:
                raise ServerExited(f"server exited with {self.process.returncode}:\n{self.log_tail()}")
            time.sleep(0.02)
        raise TimeoutError(f"server not serving after {timeout}s:\n{self.log_tail()}")

    def start(self, timeout: float = 120.0) -> int:
        self.spawn()
        return self.wait_serving(timeout)

    def kill(self) -> None:
        """SIGKILL: no handler runs, nothing is flushed or snapshotted."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=30)

    def terminate(self, timeout: float = 60.0) -> int:
        """SIGTERM (graceful: drain, snapshot, exit); returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def rss_bytes(self) -> int:
        """Resident set size of the child (Linux /proc), 0 if unknown."""
        if self.process is None:
            return 0
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return 0
        found = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) * 1024 if found else 0

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.alive():
            self.kill()

    # ------------------------------------------------------------------ logs

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def log_since_spawn(self) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_since_spawn().splitlines()[-lines:])

    def reconcile_report(self) -> dict[str, str] | None:
        """What start-up found in the data dir (the "storage opened" line), or None if not logged yet."""
        found = _OPENED.search(self.log_since_spawn())
        if not found:
            return None
        keys = ("status", "store_vectors", "snapshot_vectors", "orphans_removed", "missing_added", "seconds")
        return dict(zip(keys, found.groups(), strict=True))


def index_store_disagreement(
    data_dir: Path, dimension: int = 384, index_type: str = "flat"
) -> tuple[int, int]:
    """(orphans, missing): vector ids in the saved index but not the store, and the reverse.

    Reads the files directly, without ``Storage.open`` (which would reconcile and hide a disagreement);
    the server must be stopped. A snapshot that fails its checksum raises ``CorruptIndexError``.
    """
    import numpy as np

    from rewrite_detector_server.storage import ArticleStore, FaissVectorIndex
    from rewrite_detector_server.storage.facade import INDEX_FILE, STORE_FILE

    index = FaissVectorIndex.load(Path(data_dir) / INDEX_FILE, dimension, index_type)
    store = ArticleStore(Path(data_dir) / STORE_FILE, dimension=dimension)
    try:
        index_ids, store_ids = index.ids(), store.all_vector_ids()
    finally:
        store.close()
        index.close()
    return int(np.setdiff1d(index_ids, store_ids).size), int(np.setdiff1d(store_ids, index_ids).size)
