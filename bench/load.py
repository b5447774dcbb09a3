"""Bounded load test: N concurrent clients mixing Check / IndexArticle / Compare against a local server.

Loopback only: the server is a child process on 127.0.0.1 started by this script. Phases:

1. baseline: one client, sequential calls of each kind (the latency of an idle server);
2. warm-up: every request of the pool once, spread over the clients (not measured);
3. load: ``--clients`` threads (each with its own channel) for ``--seconds``, drawing from the pool:
   60% Check, 20% IndexArticle (upserts over 64 ids), 20% Compare. Server RSS is sampled every 0.5 s.

Why a fixed pool of requests: the server keeps bounded caches (embeddings, word lists) that grow with
every distinct paragraph until they are full. With a pool every cache is full after the warm-up, so RSS
growth in the load phase can only be a leak. Distinct traffic instead grows RSS until the caches fill;
``--distinct`` runs that variant.

Prints per-kind p50/p99 (and p50 ratios to the idle baseline), errors, throughput, and the server's RSS
at the start and the end of the load phase (medians of the first and last fifth of the samples). Exits 1
on any error.

    python bench/load.py --seconds 60 --clients 32            # bundled model
    python bench/load.py --seconds 10 --clients 32 --model hashing
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from _server import ServerProcess

from rewrite_detector import Client, errors

_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "do", "pe", "an", "or", "el", "ut", "is"]
KINDS = ("Check", "IndexArticle", "Compare")
WEIGHTS = (0.6, 0.2, 0.2)
SOURCE_ARTICLES = 200
INDEX_IDS = 64


class Texts:
    """Synthetic articles: 4-8 paragraphs of 30-60 pseudo-words (deterministic per seed)."""

    def __init__(self, seed: int) -> None:
        rng = random.Random(seed)
        self.vocabulary = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(5000)
        ]

    def article(self, rng: random.Random) -> str:
        return "\n\n".join(
            " ".join(rng.choices(self.vocabulary, k=rng.randint(30, 60))) + "."
            for _ in range(rng.randint(4, 8))
        )

    @staticmethod
    def rewrite(text: str, rng: random.Random) -> str:
        """A partial copy: some paragraphs dropped, the rest lightly edited."""
        kept = [p for p in text.split("\n\n") if rng.random() < 0.7] or [text.split("\n\n")[0]]
        return "\n\n".join(" ".join(w for w in p.split() if rng.random() < 0.9) or p for p in kept)


@dataclass(frozen=True)
class Request:
    kind: str
    args: tuple[str, ...]

    def bind(self, client: Client) -> Callable[[], Any]:
        if self.kind == "Check":
            return lambda: client.check(*self.args)
        if self.kind == "IndexArticle":
            return lambda: client.index_article(*self.args)
        return lambda: client.compare(*self.args)


class Workload:
    """The requests: from a fixed pool, or freshly generated each time (``distinct``)."""

    def __init__(self, texts: Texts, sources: list[str], rng: random.Random, *, distinct: bool) -> None:
        self.texts, self.sources, self.distinct = texts, sources, distinct
        self.pool = {
            "Check": [self._fresh("Check", rng) for _ in range(300)],
            "IndexArticle": [self._fresh("IndexArticle", rng) for _ in range(INDEX_IDS * 3)],
            "Compare": [self._fresh("Compare", rng) for _ in range(150)],
        }

    def _fresh(self, kind: str, rng: random.Random) -> Request:
        source = rng.choice(self.sources)
        if kind == "Check":
            text = self.texts.rewrite(source, rng) if rng.random() < 0.8 else self.texts.article(rng)
            return Request(kind, (text,))
        if kind == "IndexArticle":
            return Request(kind, (f"load-{rng.randrange(INDEX_IDS)}", self.texts.article(rng)))
        return Request(kind, (self.texts.rewrite(source, rng), source))

    def next(self, rng: random.Random) -> Request:
        kind = rng.choices(KINDS, WEIGHTS)[0]
        return self._fresh(kind, rng) if self.distinct else rng.choice(self.pool[kind])

    def all_pooled(self) -> list[Request]:
        return [r for kind in KINDS for r in self.pool[kind]]


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def summarize(latencies: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        kind: {
            "count": len(latencies.get(kind, [])),
            "p50": round(percentile(latencies.get(kind, []), 50), 2),
            "p99": round(percentile(latencies.get(kind, []), 99), 2),
        }
        for kind in KINDS
    }


def run_clients(target: str, clients: int, body: Callable[[Client, int], None]) -> None:
    def run(n: int) -> None:
        with Client(target, timeout=120, retries=0) as client:
            body(client, n)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--model", default="default", help="server model: default (bundled) or hashing")
    parser.add_argument("--baseline-calls", type=int, default=20, help="sequential calls per kind")
    parser.add_argument("--distinct", action="store_true", help="every request new (no pool, no warm-up)")
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.seconds <= 0 or args.clients < 1:
        parser.error("--seconds must be > 0 and --clients >= 1")

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="load-"))
    texts = Texts(args.seed)
    rng = random.Random(args.seed)
    sources = [texts.article(rng) for _ in range(SOURCE_ARTICLES)]
    workload = Workload(texts, sources, rng, distinct=args.distinct)
    latencies: dict[str, list[float]] = defaultdict(list)
    failures: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    rss: list[tuple[float, int]] = []

    with ServerProcess(workdir / "data", workdir / "server.log", model=args.model) as server:
        server.start()
        with Client(server.target, timeout=300) as setup:
            for response in setup.index_articles(
                {"id": f"src-{n}", "text": text} for n, text in enumerate(sources)
            ):
                if response.error_code:
                    raise SystemExit(f"seeding failed: {response.error_message}")
            baseline: dict[str, list[float]] = defaultdict(list)
            for kind in KINDS:
                for request in workload.pool[kind][: args.baseline_calls]:
                    call = request.bind(setup)
                    started = time.perf_counter()
                    call()
                    baseline[kind].append((time.perf_counter() - started) * 1000)

        warm_up_seconds = 0.0
        if not args.distinct:
            pending: queue.SimpleQueue[Request] = queue.SimpleQueue()
            for request in workload.all_pooled():
                pending.put(request)

            def warm(client: Client, _n: int) -> None:
                while True:
                    try:
                        request = pending.get_nowait()
                    except queue.Empty:
                        return
                    try:
                        request.bind(client)()
                    except errors.RewriteDetectorError as err:
                        with lock:
                            failures.append(f"warm-up {request.kind}: {err}")

            began = time.monotonic()
            run_clients(server.target, args.clients, warm)
            warm_up_seconds = time.monotonic() - began

        def load(client: Client, n: int) -> None:
            own_rng = random.Random(args.seed * 1000 + n)
            while not stop.is_set():
                request = workload.next(own_rng)
                call = request.bind(client)
                started = time.perf_counter()
                try:
                    call()
                except errors.RewriteDetectorError as err:
                    with lock:
                        failures.append(f"{request.kind}: {err}")
                    continue
                elapsed = (time.perf_counter() - started) * 1000
                with lock:
                    latencies[request.kind].append(elapsed)

        def sample_rss() -> None:
            began = time.monotonic()
            while not stop.is_set():
                rss.append((time.monotonic() - began, server.rss_bytes()))
                stop.wait(0.5)

        sampler = threading.Thread(target=sample_rss)
        sampler.start()
        timer = threading.Timer(args.seconds, stop.set)
        timer.start()
        began = time.monotonic()
        run_clients(server.target, args.clients, load)
        elapsed = time.monotonic() - began
        sampler.join(timeout=10)
        alive = server.alive()
        exit_code = server.terminate()

    values = [r for _, r in rss if r]
    fifth = max(1, len(values) // 5)
    rss_start = statistics.median(values[:fifth]) if values else 0
    rss_end = statistics.median(values[-fifth:]) if values else 0
    total = sum(len(v) for v in latencies.values())
    load_summary = summarize(latencies)
    base_summary = summarize(baseline)
    report = {
        "model": args.model,
        "clients": args.clients,
        "workload": "distinct" if args.distinct else "pool",
        "warm_up_seconds": round(warm_up_seconds, 1),
        "seconds": round(elapsed, 1),
        "requests": total,
        "errors": len(failures),
        "error_examples": failures[:5],
        "throughput_rps": round(total / elapsed, 1),
        "latency_ms": load_summary,
        "baseline_ms": base_summary,
        "p50_vs_baseline": {
            k: round(load_summary[k]["p50"] / base_summary[k]["p50"], 2) if base_summary[k]["p50"] else None
            for k in KINDS
        },
        "rss_start_mb": round(rss_start / 2**20, 1),
        "rss_end_mb": round(rss_end / 2**20, 1),
        "rss_peak_mb": round(max(values, default=0) / 2**20, 1),
        "rss_growth_ratio": round(rss_end / rss_start, 3) if rss_start else None,
        # About ten evenly spaced samples over the load phase: (seconds, MB).
        "rss_timeline_mb": [
            (round(t, 1), round(r / 2**20, 1)) for t, r in rss[:: max(1, len(rss) // 10)] if r
        ],
        # The machine is shared: a high load average means the figures include other processes' CPU.
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        "server_alive_at_end": alive,
        "server_exit_code": exit_code,
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print_report(report)
    ok = not failures and alive and exit_code == 0 and total > 0
    return 0 if ok else 1


def print_report(report: dict[str, Any]) -> None:
    print(
        f"{report['clients']} clients, {report['seconds']} s ({report['workload']} workload, warm-up "
        f"{report['warm_up_seconds']} s), model {report['model']}: {report['requests']} requests "
        f"({report['throughput_rps']}/s), {report['errors']} errors"
    )
    print(f"{'kind':<13} {'count':>7} {'p50 ms':>9} {'p99 ms':>9} {'idle p50':>9} {'p50 ratio':>9}")
    for kind in KINDS:
        load, base = report["latency_ms"][kind], report["baseline_ms"][kind]
        print(
            f"{kind:<13} {load['count']:>7} {load['p50']:>9} {load['p99']:>9} {base['p50']:>9} "
            f"{report['p50_vs_baseline'][kind]!s:>9}"
        )
    print(
        f"server RSS: {report['rss_start_mb']} MB at start, {report['rss_end_mb']} MB at end "
        f"(x{report['rss_growth_ratio']}), peak {report['rss_peak_mb']} MB"
    )
    print("RSS over time (s: MB): " + ", ".join(f"{t:g}: {mb:g}" for t, mb in report["rss_timeline_mb"]))
    print(f"load average at end (1, 5, 15 min): {report['load_average_at_end']}")
    for example in report["error_examples"]:
        print(f"error: {example}")


if __name__ == "__main__":
    sys.exit(main())
