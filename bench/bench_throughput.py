"""Throughput of the running service against the raw model, measured in the same run.

    python bench/bench_throughput.py --ingest-articles 120 --check-articles 96 --clients 8,16,32

Two figures, each a ratio of rates measured here on the same paragraphs (real text: PAN 2013 source
documents, all distinct), with service and baseline runs alternating so other load on the two shared
cores hits both alike:

1. ingest: content paragraphs/s indexed through the service (``rewrite-detector serve`` in a child
   process, default settings; 8 client threads calling IndexArticle) vs stock
   ``SentenceTransformer.encode`` (torch fp32, batch_size 32) in this process. Goal >= 2.5x.
2. concurrency: content paragraphs/s checked by N concurrent clients (N in --clients; ~20-paragraph
   articles, every paragraph new to the server, so nothing is answered by a cache) vs the raw
   single-caller encode rate of the service's own backend (``embed_batch`` on all the paragraphs at
   once, in this process while the server idles). Goal >= 0.9.

With ``--baseline-tree DIR`` (a ``git archive`` of another commit), a second server runs that tree's
code (PYTHONPATH into it) on its own data dir, and each part of both runs goes to both servers in turn
(the same articles indexed, the same texts checked): the baseline's ratios and this tree's come from the
same run, and "vs baseline" is this tree's throughput over the baseline's.

Writes bench/out/throughput.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _speed import MODEL_CACHE, OUT, ServedProcess, pan_articles, paragraphs_of, run_header, tree_env

from rewrite_detector import Client
from rewrite_detector_models.embedder import DEFAULT_EMBED_BACKEND, default_model_path, load_embedder


def run_concurrently(jobs: Sequence[Callable[[], None]], threads: int) -> float:
    """Run ``jobs`` on ``threads`` threads (each takes the next job); returns wall seconds."""
    lock = threading.Lock()
    pending = list(jobs)
    errors: list[BaseException] = []

    def worker() -> None:
        while True:
            with lock:
                if not pending or errors:
                    return
                job = pending.pop(0)
            try:
                job()
            except BaseException as err:
                errors.append(err)

    started = time.perf_counter()
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return time.perf_counter() - started


def timed_check(client: Client, text: str, latencies_ms: list[float]) -> None:
    started = time.perf_counter()
    client.check(text)
    latencies_ms.append((time.perf_counter() - started) * 1000)


def chunks(items: Sequence[Any], parts: int) -> list[Sequence[Any]]:
    size = -(-len(items) // parts)
    return [items[i : i + size] for i in range(0, len(items), size)]


def alternating_runs(
    servers: dict[str, ServedProcess],
    articles: Sequence[str],
    clients: int,
    alternations: int,
    request: Callable[[str, Client, str, str], None],
    reference: Callable[[list[str]], None],
) -> tuple[int, dict[str, float], float]:
    """Send each part of ``articles`` from ``clients`` concurrent clients to every server in turn, then time
    ``reference`` on the part's paragraphs; returns (paragraphs, seconds per server, reference seconds).

    ``request(server name, client, request key, text)`` makes one call. Each server goes first in every
    other part, so neither always runs after the other.
    """
    pools = {name: [Client(s.target, timeout=600) for _ in range(clients)] for name, s in servers.items()}
    service_s = dict.fromkeys(servers, 0.0)
    reference_s = 0.0
    total = 0
    try:
        for part_no, part in enumerate(chunks(articles, alternations)):
            paragraphs = paragraphs_of(part)
            total += len(paragraphs)
            for name in list(servers)[:: 1 if part_no % 2 == 0 else -1]:
                jobs = [
                    partial(request, name, pools[name][i % clients], f"{part_no}-{i}", text)
                    for i, text in enumerate(part)
                ]
                service_s[name] += run_concurrently(jobs, clients)
            t0 = time.perf_counter()
            reference(paragraphs)
            reference_s += time.perf_counter() - t0
    finally:
        for pool in pools.values():
            for c in pool:
                c.close()
    return total, service_s, reference_s


def rates_against(
    reference_rate: float, total: int, service_s: dict[str, float], goal: str
) -> dict[str, Any]:
    """Each server's paragraphs/s and its ratio to ``reference_rate``; this tree's ratio against the goal."""
    out: dict[str, Any] = {}
    for name, seconds in service_s.items():
        rate = total / seconds
        out[name] = {"service_paragraphs_per_s": round(rate, 1), "ratio": round(rate / reference_rate, 2)}
    out["ratio"] = out["this tree"]["ratio"]
    out["goal"] = goal
    if "baseline" in service_s:
        out["vs_baseline"] = round(service_s["baseline"] / service_s["this tree"], 2)
    return out


def ingest(
    servers: dict[str, ServedProcess], articles: Sequence[str], stock: Any, alternations: int
) -> dict[str, Any]:
    """Content paragraphs/s indexed by 8 clients on each server vs stock encode, parts alternating."""
    for server in servers.values():
        with Client(server.target, timeout=600) as client:
            client.check("warm up the server's model and caches.")
    total, service_s, stock_s = alternating_runs(
        servers,
        articles,
        8,
        alternations,
        lambda _name, client, key, text: client.index_article(f"ingest-{key}", text),
        lambda paragraphs: stock.encode(paragraphs, batch_size=32),
    )
    stock_rate = total / stock_s
    result: dict[str, Any] = {
        "articles": len(articles),
        "content_paragraphs": total,
        "stock_encode_paragraphs_per_s": round(stock_rate, 1),
        **rates_against(stock_rate, total, service_s, ">= 2.5"),
    }
    for name, server in servers.items():
        with Client(server.target, timeout=600) as client:
            result[name]["server_vector_count"] = client.stats().vector_count
    return result


def check_level(
    servers: dict[str, ServedProcess], articles: Sequence[str], n: int, raw: Any, alternations: int
) -> dict[str, Any]:
    """Check throughput of ``n`` concurrent clients on each server, parts alternating with the raw encode."""
    latencies: dict[str, list[float]] = {name: [] for name in servers}
    total, service_s, raw_s = alternating_runs(
        servers,
        articles,
        n,
        alternations,
        lambda name, client, _key, text: timed_check(client, text, latencies[name]),
        raw.embed_batch,
    )
    raw_rate = total / raw_s
    level: dict[str, Any] = {
        "articles": len(articles),
        "content_paragraphs": total,
        "raw_single_caller_encode_paragraphs_per_s": round(raw_rate, 1),
        **rates_against(raw_rate, total, service_s, ">= 0.9"),
    }
    for name in servers:
        level[name]["check_latency_p50_ms"] = round(statistics.median(latencies[name]), 1)
    return level


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ingest-articles", type=int, default=120, help="PAN source documents to index")
    parser.add_argument("--check-articles", type=int, default=96, help="~20-paragraph articles per level")
    parser.add_argument("--clients", default="8,16,32", help="concurrency levels for the check run")
    parser.add_argument("--alternations", type=int, default=3, help="service/baseline alternations")
    parser.add_argument("--backend", default=DEFAULT_EMBED_BACKEND)
    parser.add_argument("--max-seconds", type=float, default=1500, help="skip remaining levels after this")
    parser.add_argument("--out", type=Path, default=OUT / "throughput.json")
    parser.add_argument(
        "--baseline-tree", type=Path, default=None, help="source tree of the baseline server (git archive)"
    )
    args = parser.parse_args()
    started = time.monotonic()
    levels = [int(x) for x in args.clients.split(",")]
    results: dict[str, Any] = run_header("bench_throughput.py")
    results["backend"] = args.backend

    ingest_articles = pan_articles(args.ingest_articles)
    check_sets = {
        n: pan_articles(args.check_articles, skip=args.ingest_articles + 400 * i, paragraphs_per_article=20)
        for i, n in enumerate(levels)
    }
    print(f"texts ready: {len(ingest_articles)} ingest articles; check sets {list(check_sets)}", flush=True)

    from sentence_transformers import SentenceTransformer

    stock = SentenceTransformer(default_model_path(), device="cpu")
    raw = load_embedder(backend=args.backend, cache_dir=MODEL_CACHE)
    stock.encode(["warm up"])
    raw.embed_batch(["warm up"])

    with contextlib.ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-throughput-")))
        OUT.mkdir(parents=True, exist_ok=True)
        served = stack.enter_context(
            ServedProcess(tmp / "data", OUT / "throughput-server.log", "--backend", args.backend)
        )
        baseline = None
        if args.baseline_tree:
            results["baseline_tree"] = str(args.baseline_tree)
            baseline = stack.enter_context(
                ServedProcess(
                    tmp / "baseline-data",
                    OUT / "throughput-baseline-server.log",
                    "--backend",
                    args.backend,
                    env=tree_env(args.baseline_tree.resolve()),
                )
            )
            baseline.wait_ready()
        results["server_ready_seconds"] = round(served.wait_ready(), 1)
        servers = {"this tree": served} if baseline is None else {"baseline": baseline, "this tree": served}
        # -- 1. ingest: service vs stock encode, alternating parts -----------------------------------
        results["ingest"] = ingest(servers, ingest_articles, stock, args.alternations)
        print(json.dumps(results["ingest"], indent=1), flush=True)

        # -- 2. concurrent checks vs the raw single-caller encode rate ------------------------------
        results["concurrency"] = {}
        for n, articles in check_sets.items():
            if time.monotonic() - started > args.max_seconds:
                print(f"time limit: skipping {n} clients", flush=True)
                continue
            results["concurrency"][str(n)] = check_level(servers, articles, n, raw, args.alternations)
            print(n, json.dumps(results["concurrency"][str(n)]), flush=True)

    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
