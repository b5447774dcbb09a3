"""Shared pieces of the speed benchmarks (bench_backends, bench_throughput, bench_scale)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
PAN = REPO.parent / "shared" / "data" / "pan13-train"
OUT = REPO / "bench" / "out"
# ONNX exports shared by every benchmark data dir (the server default is <data_dir>/models).
MODEL_CACHE = OUT / "models"


def seed_texts() -> dict[str, str]:
    texts = {}
    for path in sorted(SEEDS.glob("*_*.txt")):
        with path.open(encoding="utf-8", newline="") as handle:
            texts[path.name[:3]] = handle.read()
    return texts


def paragraphs_of(texts: Sequence[str]) -> list[str]:
    from rewrite_detector_server.core.segment import segment

    return [p.text for t in texts for p in segment(t).content_paragraphs]


def pan_articles(count: int, skip: int = 0, paragraphs_per_article: int = 0) -> list[str]:
    """Distinct real texts from PAN 2013 source documents (sorted ids, from ``skip``).

    ``paragraphs_per_article`` > 0 regroups the documents' paragraphs into articles of that size.
    """
    from rewrite_detector_server.evaluation.pan import PanCorpus

    corpus = PanCorpus(PAN)
    ids = sorted({p.source_id for p in corpus.pairs})
    if not paragraphs_per_article:
        return [corpus.read_source(i) for i in ids[skip : skip + count]]
    articles: list[str] = []
    seen: set[str] = set()
    buffer: list[str] = []
    for source_id in ids[skip:]:
        for paragraph in paragraphs_of([corpus.read_source(source_id)]):
            if paragraph in seen:
                continue
            seen.add(paragraph)
            buffer.append(paragraph)
            if len(buffer) == paragraphs_per_article:
                articles.append("\n\n".join(buffer))
                buffer = []
                if len(articles) == count:
                    return articles
    return articles


def git(*args: str) -> str:
    done = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, check=False)
    return done.stdout.strip()


def run_header(script: str) -> dict[str, Any]:
    return {
        "command": " ".join(["python", f"bench/{script}", *sys.argv[1:]]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": git("rev-parse", "--short", "HEAD"),
        "uncommitted_changes": bool(git("status", "--porcelain", "--untracked-files=no")),
        "cpu_count": os.cpu_count(),
        # Two cores shared with other work: the load at the start says how contended the run was.
        "load_average_1_5_15_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def percentiles(values_ms: Sequence[float]) -> dict[str, float]:
    arr = np.asarray(values_ms, dtype=np.float64)
    return {
        "n": int(arr.size),
        "p50_ms": round(float(np.percentile(arr, 50)), 1),
        "p90_ms": round(float(np.percentile(arr, 90)), 1),
        "p99_ms": round(float(np.percentile(arr, 99)), 1),
        "max_ms": round(float(arr.max()), 1),
    }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def write_results(path: Path, results: dict[str, Any]) -> None:
    """Write a benchmark's results as indented JSON (creating its directory) and say where."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")
    print("wrote", path)


def tree_env(tree: Path) -> dict[str, str]:
    """Environment that makes a child Python import the packages of another source tree first."""
    paths = [str(tree / part) for part in ("client", "server", "models")]
    return {"PYTHONPATH": os.pathsep.join(paths)}


class ServedProcess:
    """``rewrite-detector serve`` in a child process on 127.0.0.1 (its own GIL, like production)."""

    def __init__(self, data_dir: Path, log_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.log_path = log_path
        command = [
            sys.executable,
            "-m",
            "rewrite_detector",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--data-dir",
            str(data_dir),
            *args,
        ]
        environment = {
            **os.environ,
            "HF_HUB_OFFLINE": "1",
            "REWRITE_DETECTOR_MODEL_CACHE_DIR": str(MODEL_CACHE),
            **(env or {}),
        }
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.started = time.perf_counter()
        self.process = subprocess.Popen(command, env=environment, stdout=self._log, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 300.0) -> float:
        """Seconds from spawn until the server's health service says SERVING.

        Polls every 20 ms on a channel whose reconnect back-off is capped at 50 ms: gRPC's default
        back-off (1 s, growing) would add up to seconds to a start-up measurement.
        """
        import grpc
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        options = [
            ("grpc.initial_reconnect_backoff_ms", 20),
            ("grpc.min_reconnect_backoff_ms", 20),
            ("grpc.max_reconnect_backoff_ms", 50),
        ]
        deadline = time.perf_counter() + timeout
        with grpc.insecure_channel(self.target, options=options) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            while time.perf_counter() < deadline:
                if self.process.poll() is not None:
                    raise RuntimeError(f"server exited with {self.process.returncode}; see {self.log_path}")
                try:
                    reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.5)
                    if reply.status == health_pb2.HealthCheckResponse.SERVING:
                        return time.perf_counter() - self.started
                except grpc.RpcError:
                    pass
                time.sleep(0.02)
        raise TimeoutError(f"server not serving after {timeout} s; see {self.log_path}")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the server process and its live descendants (the match workers and
        their fork server) have used so far.

        Unlike wall-clock latency, this does not grow when other work shares the cores, so CPU per
        request is the figure to compare between runs on a busy machine.
        """
        return sum(_process_cpu_ticks(pid) for pid in _with_descendants(self.process.pid)) / os.sysconf(
            "SC_CLK_TCK"
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()

    def __enter__(self) -> ServedProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _process_cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:  # exited meanwhile
        return 0
    return int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of proc(5))


def _with_descendants(pid: int) -> list[int]:
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            try:
                pending.extend(int(child) for child in children.read_text().split())
            except FileNotFoundError:
                continue
    return found
