"""Check latency, index memory, recall and cold start as the index grows to 10k, 100k and 1M paragraphs.

    python bench/bench_scale.py --sizes 10000,100000,1000000 --types flat,ivf-sq8,ivf-pq

The index holds the real seed article 001 and real PAN 2013 source documents (indexed through the
detector with the default backend), topped up with synthetic articles of 20 paragraphs whose vectors
are random unit vectors (written through ``Storage.upsert``, the same store + index path as indexing,
minus the model). Sizes grow in one data dir (bench/out/scale/data, reused by later runs).

For each size and index type:
- the index is (re)built from the store by ``Storage.open`` and snapshotted;
- memory: RSS growth of a fresh process loading the snapshot, per paragraph (goal <= 0.5 KB at 1M);
- recall@10 against exact search (computed here) for (a) near-duplicate queries — a stored vector plus
  noise, cosine ~0.8 to it — and (b) the real seed paragraphs; plus recall of the neighbours that can
  vote (cosine >= 0.5, RetrievalParams.vote_similarity);
- cold start: seconds from spawning ``rewrite-detector serve`` until it answers health checks, with
  nothing re-embedded (the log's reconcile line must say missing_added=0) (goal <= 3 s at 1M);
- Check latency through gRPC for the seed articles 000/002/003/004 (~18 paragraphs each) against the
  index: 1 client and 8 concurrent clients, (warm) repeated texts, whose embeddings the LRU answers,
  and (fresh) every paragraph new, so every request runs the model (goal at 1M with 8 clients:
  p50 <= 100 ms, p99 <= 300 ms).
With --pan-suspicious N at the largest size, PAN retrieval-mode plagdet per index type (the loss
against flat, goal <= 1 point).

Writes bench/out/scale.json.

Serving only, on a data dir that is already filled (the 1M fill takes long), against a baseline:

    git archive <commit> | tar -x -C /tmp/baseline
    python bench/bench_scale.py --serve-data-dir bench/out/scale/data --index-type ivf-sq8 \
        --baseline-tree /tmp/baseline --alternations 3

measures cold start and the Check latency rows for the baseline tree's server and this tree's in turn,
on the same data dir (the baseline's server runs with PYTHONPATH pointing into its tree), and prints
this tree's figures as ratios to the baseline's from the same run. ``--baseline-data-dir`` gives the
baseline its own copy (an index the baseline's code built, when the change is in how the index is built).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
import numpy as np
from _speed import MODEL_CACHE, OUT, PAN, ServedProcess, percentiles, run_header, seed_texts, tree_env

from rewrite_detector import Client
from rewrite_detector_models.cache import CachingEmbedder
from rewrite_detector_models.embedder import DEFAULT_EMBED_BACKEND, DEFAULT_MODEL_NAME, load_embedder
from rewrite_detector_server.core.types import ArticleInput, Paragraph
from rewrite_detector_server.storage import Storage
from rewrite_detector_server.storage.facade import INDEX_FILE, STORE_FILE
from rewrite_detector_server.storage.vector_index import FAST_SCAN_SUFFIX, INDEX_TYPES

DIMENSION = 384
PARAGRAPHS_PER_ARTICLE = 20
QUERY_SEEDS = ("000", "002", "003", "004")
_RECONCILE = re.compile(
    r"storage opened .*status=(\w+) store_vectors=(\d+).* missing_added=(\d+) seconds=([\d.]+)"
)


# -- filling the data dir ----------------------------------------------------------------------------


def index_real_articles(data_dir: Path, pan_sources: int) -> dict[str, Any]:
    """Seed 001 and PAN source documents, through the detector (real segmentation and model)."""
    from rewrite_detector_server.app import build_detector
    from rewrite_detector_server.config import Settings
    from rewrite_detector_server.evaluation.pan import PanCorpus
    from rewrite_detector_server.evaluation.run import index_sources

    settings = Settings(data_dir=data_dir, model_cache_dir=str(MODEL_CACHE), snapshot_every=0)
    detector = build_detector(settings)
    try:
        detector.index(ArticleInput(id="001", text=seed_texts()["001"]))
        corpus = PanCorpus(PAN)
        sources = sorted({p.source_id for p in pan_pairs(corpus, pan_sources)})
        index_sources(detector, corpus, sources)
        return {"articles": detector.storage.count_articles(), "vectors": detector.storage.count_vectors()}
    finally:
        detector.close()


def pan_pairs(corpus: Any, n: int) -> list[Any]:
    """Derived pairs of a stratified subset: their sources get indexed, their documents checked."""
    return [p for p in corpus.subset(max(n * 2, 1), 7) if p.is_derived][:n]


def synthetic_article(
    number: int, rng: np.random.Generator
) -> tuple[ArticleInput, list[Paragraph], np.ndarray]:
    texts = [f"Synthetic paragraph {j} of filler article {number}." for j in range(PARAGRAPHS_PER_ARTICLE)]
    paragraphs, offset = [], 0
    for j, text in enumerate(texts):
        paragraphs.append(Paragraph(index=j, start=offset, end=offset + len(text), text=text))
        offset += len(text) + 2
    vectors = rng.standard_normal((PARAGRAPHS_PER_ARTICLE, DIMENSION)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return ArticleInput(id=f"filler-{number:07d}", text="\n\n".join(texts)), paragraphs, vectors


def fill_to(data_dir: Path, target: int) -> dict[str, Any]:
    """Add synthetic articles until the store holds ``target`` vectors (flat index while filling)."""
    started = time.perf_counter()
    storage = Storage.open(data_dir, model_name=DEFAULT_MODEL_NAME, dimension=DIMENSION, snapshot_every=0)
    # Bench set-up only: the filler's commits skip fsync (what is measured is reading the store back).
    storage._store._conn.execute("PRAGMA synchronous=OFF")
    try:
        have = storage.count_vectors()
        number = storage.count_articles()  # grows with every filler, so filler ids never repeat
        rng = np.random.default_rng(have)
        added = 0
        while storage.count_vectors() + PARAGRAPHS_PER_ARTICLE <= target:
            article, paragraphs, vectors = synthetic_article(number, rng)
            storage.upsert(article, f"filler-{number}", paragraphs, vectors)
            number += 1
            added += PARAGRAPHS_PER_ARTICLE
            if added % 100_000 == 0:
                print(f"  filled {storage.count_vectors()} vectors", flush=True)
        return {
            "vectors": storage.count_vectors(),
            "added": added,
            "seconds": round(time.perf_counter() - started, 1),
        }
    finally:
        storage.close()


def build_index(data_dir: Path, index_type: str) -> dict[str, Any]:
    """Open with ``index_type`` (rebuilding the index from the store when it is another type) and save."""
    started = time.perf_counter()
    storage = Storage.open(
        data_dir, model_name=DEFAULT_MODEL_NAME, dimension=DIMENSION, index_type=index_type, snapshot_every=0
    )
    report = storage.last_reconcile
    storage.snapshot()
    storage.close()
    return {
        "status": report.index_status if report else "?",
        "seconds": round(time.perf_counter() - started, 1),
    }


# -- measurements -------------------------------------------------------------------------------------


_MEMORY_PROBE = """
import json, sys
from pathlib import Path
from rewrite_detector_server.storage.vector_index import FaissVectorIndex, IndexOptions
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
before = rss()
options = IndexOptions(ivf_fast_scan=sys.argv[4] == "1")
index = FaissVectorIndex.load(Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3], options=options)
print(json.dumps({"rss_bytes": rss() - before, "ntotal": index.ntotal, "kind": index.kind,
                  "fast_scan": index.fast_scan}))
"""


def index_memory(data_dir: Path, index_type: str) -> dict[str, Any]:
    """The snapshot loaded as the server loads it (with the service's default ``IVF_FAST_SCAN``)."""
    from rewrite_detector_server.config import Settings

    path = data_dir / INDEX_FILE
    fast_scan = "1" if Settings().ivf_fast_scan else "0"
    done = subprocess.run(
        [sys.executable, "-c", _MEMORY_PROBE, str(path), str(DIMENSION), index_type, fast_scan],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    n = max(1, probe["ntotal"])
    files = [path, path.with_name(path.name + FAST_SCAN_SUFFIX)] if probe["fast_scan"] else [path]
    return {
        "kind": probe["kind"],
        "fast_scan": probe["fast_scan"],
        "file_bytes_per_paragraph": round(sum(f.stat().st_size for f in files) / n, 1),
        "rss_bytes_per_paragraph": round(probe["rss_bytes"] / n, 1),
        "rss_kb_per_paragraph": round(probe["rss_bytes"] / n / 1024, 3),
    }


def all_vectors(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    storage = Storage.open(data_dir, model_name=DEFAULT_MODEL_NAME, dimension=DIMENSION, snapshot_every=0)
    try:
        parts = list(storage._store.iter_vectors(65536))
    finally:
        storage.close()
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def recall_queries(
    ids: np.ndarray, vectors: np.ndarray, seed_vectors: np.ndarray, rng: np.random.Generator
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    picked = rng.choice(ids.size, 200, replace=False)
    # noise of norm ~0.75 on a unit vector: cosine ~0.8 to the original after normalising
    noisy = vectors[picked] + rng.standard_normal((200, DIMENSION)).astype(np.float32) * (
        0.75 / np.sqrt(DIMENSION)
    )
    noisy /= np.linalg.norm(noisy, axis=1, keepdims=True)
    return {
        "near-duplicate": (noisy, ids[picked]),
        "seed paragraphs": (seed_vectors, np.full(len(seed_vectors), -1)),
    }


def exact_neighbours(
    ids: np.ndarray, vectors: np.ndarray, queries: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    flat = faiss.IndexFlatIP(DIMENSION)
    flat.add(vectors)
    scores, rows = flat.search(queries, k)
    return scores, ids[rows]


def recall_figures(found: np.ndarray, true_ids: np.ndarray, true_scores: np.ndarray) -> dict[str, Any]:
    """recall@10 against exact search, and recall of the exact neighbours that can vote (cosine >= 0.5,
    RetrievalParams.vote_similarity): those elect the candidate sources."""
    hits = [len(set(f.tolist()) & set(t.tolist())) / 10 for f, t in zip(found, true_ids, strict=True)]
    voting = [
        (set(f.tolist()), {i for i, s in zip(t.tolist(), ts.tolist(), strict=True) if s >= 0.5})
        for f, t, ts in zip(found, true_ids, true_scores, strict=True)
    ]
    voters = sum(len(v) for _, v in voting)
    return {
        "recall_at_10": round(float(np.mean(hits)), 4),
        "recall_of_voting_neighbours": round(sum(len(f & v) for f, v in voting) / voters, 4)
        if voters
        else None,
        "voting_neighbours": voters,
    }


def recall(data_dir: Path, index_type: str, queries: dict[str, Any], truth: dict[str, Any]) -> dict[str, Any]:
    from rewrite_detector_server.storage.vector_index import FaissVectorIndex

    index = FaissVectorIndex.load(data_dir / INDEX_FILE, DIMENSION, index_type)
    out = {}
    try:
        for name, (q, origin) in queries.items():
            true_scores, true_ids = truth[name]
            started = time.perf_counter()
            _, found = index.search(q, 10)
            search_ms = (time.perf_counter() - started) * 1000 / len(q)
            entry = {
                "queries": len(q),
                **recall_figures(found, true_ids, true_scores),
                "search_ms_per_query": round(search_ms, 3),
            }
            if (origin >= 0).any():
                entry["original_in_top10"] = round(
                    float(np.mean([o in f for o, f in zip(origin, found, strict=True)])), 4
                )
            out[name] = entry
    finally:
        index.close()
    return out


def latency(
    served: ServedProcess, texts: list[str], clients: int, requests_per_client: int, fresh: bool
) -> dict[str, Any]:
    counter = iter(range(10**9))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[BaseException] = []

    def worker(number: int) -> None:
        with Client(served.target, timeout=300) as client:
            for r in range(requests_per_client):
                text = texts[(number + r) % len(texts)]
                if fresh:
                    with lock:
                        tag = next(counter)
                    # A tag on every line: every paragraph is text the server has never seen.
                    text = "\n".join(
                        f"{line} (ref {tag}-{i})" if line.strip() else line
                        for i, line in enumerate(text.split("\n"))
                    )
                started = time.perf_counter()
                try:
                    client.check(text)
                except BaseException as err:
                    errors.append(err)
                    return
                latencies.append((time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(clients)]
    cpu_before = served.cpu_seconds()
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    cpu = served.cpu_seconds() - cpu_before
    if errors:
        raise errors[0]
    return {
        **percentiles(latencies),
        "clients": clients,
        "requests_per_s": round(len(latencies) / wall, 1),
        "server_cpu_ms_per_request": round(cpu * 1000 / max(1, len(latencies)), 1),
    }


def serve_and_measure(
    data_dir: Path,
    index_type: str,
    args: argparse.Namespace,
    log: Path,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    queries = [seed_texts()[k] for k in QUERY_SEEDS]
    out: dict[str, Any] = {}
    offset = log.stat().st_size if log.exists() else 0
    with ServedProcess(
        data_dir, log, "--index-type", index_type, "--backend", args.backend, env=env
    ) as served:
        out["cold_start_seconds"] = round(served.wait_ready(), 2)
        out["cold_start_cpu_seconds"] = round(served.cpu_seconds(), 2)
        opened = _RECONCILE.findall(log.read_text(errors="replace")[offset:])
        if opened:
            status, store_vectors, missing, seconds = opened[-1]
            out["startup_storage"] = {
                "status": status,
                "store_vectors": int(store_vectors),
                "re_embedded_or_re_added": int(missing),
                "seconds": float(seconds),
            }
        with Client(served.target, timeout=300) as client:
            verdicts = {k: client.check(t).verdict for k, t in zip(QUERY_SEEDS, queries, strict=True)}
            out["seed_verdicts"] = {k: int(v) for k, v in verdicts.items()}
        out["warm_1_client"] = latency(served, queries, 1, args.requests, fresh=False)
        out["warm_8_clients"] = latency(served, queries, 8, args.requests, fresh=False)
        out["fresh_1_client"] = latency(served, queries, 1, max(4, args.requests // 3), fresh=True)
        out["fresh_8_clients"] = latency(served, queries, 8, max(2, args.requests // 6), fresh=True)
    return out


def pan_plagdet(data_dir: Path, index_type: str, n: int, embedder: Any, **settings: Any) -> dict[str, Any]:
    """PAN retrieval plagdet of ``n`` derived pairs whose sources are in the data dir; ``settings``
    override the server's (e.g. ``lexical_min_shared=0``)."""
    from rewrite_detector_server.app import build_detector
    from rewrite_detector_server.config import Settings
    from rewrite_detector_server.evaluation.pan import PanCorpus
    from rewrite_detector_server.evaluation.run import ENTIRE, plagdet_by_label, run_suspicious

    corpus = PanCorpus(PAN)
    pairs = pan_pairs(corpus, n)
    detector = build_detector(
        Settings(data_dir=data_dir, index_type=index_type, snapshot_every=0, **settings), embedder
    )
    try:
        outcomes = [
            run_suspicious(detector, corpus, s, max_sources=100)
            for s in dict.fromkeys(p.suspicious_id for p in pairs)
        ]
    finally:
        detector.close()
    scored = plagdet_by_label(pairs, [d for o in outcomes for d in o.detections])
    return {
        "suspicious_documents": len(outcomes),
        "pairs": len(pairs),
        "plagdet": round(scored[ENTIRE].plagdet, 4),
        "recall": round(scored[ENTIRE].recall, 4),
    }


# The figures compared between the baseline and this tree (lower is better for all).
_COMPARED = {
    "cold_start_seconds": ("cold_start_seconds",),
    "cold_start_cpu_seconds": ("cold_start_cpu_seconds",),
    **{
        f"{row}_{figure}": (row, figure)
        for row in ("warm_1_client", "warm_8_clients", "fresh_1_client", "fresh_8_clients")
        for figure in ("p50_ms", "p99_ms", "server_cpu_ms_per_request")
    },
}


def _figure(run: dict[str, Any], path: tuple[str, ...]) -> float:
    value: Any = run
    for key in path:
        value = value[key]
    return float(value)


def serve_against_baseline(args: argparse.Namespace, results: dict[str, Any]) -> None:
    """Alternate the baseline tree's server and this tree's on one filled data dir; medians and ratios."""
    data_dir = args.serve_data_dir
    log = args.work_dir / "server-ab.log"
    this_tree = tree_env(args.tree.resolve()) if args.tree else None
    if args.this_env:
        # One setting switched for this tree's server only: with --baseline-tree at the same commit,
        # an A/B of a configuration rather than of code.
        this_tree = {**(this_tree or {}), **dict(spec.split("=", 1) for spec in args.this_env)}
    variants = {"this tree": this_tree}
    if args.baseline_tree:
        variants = {"baseline": tree_env(args.baseline_tree.resolve()), "this tree": this_tree}
    data_dirs = {"baseline": args.baseline_data_dir or data_dir, "this tree": data_dir}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    for alternation in range(args.alternations):
        for name, env in variants.items():
            run = serve_and_measure(data_dirs[name], args.index_type, args, log, env)
            runs[name].append(run)
            print(alternation + 1, name, json.dumps(run), flush=True)
            results["serve_runs"] = runs
            args.out.write_text(json.dumps(results, indent=2) + "\n")
    medians = {
        name: {figure: float(np.median([_figure(r, path) for r in rs])) for figure, path in _COMPARED.items()}
        for name, rs in runs.items()
    }
    results["medians"] = medians
    if "baseline" in medians:
        results["ratio_this_tree_to_baseline"] = {
            figure: round(medians["this tree"][figure] / medians["baseline"][figure], 3)
            for figure in _COMPARED
            if medians["baseline"][figure]
        }
    summary = {k: results[k] for k in ("medians", "ratio_this_tree_to_baseline") if k in results}
    print(json.dumps(summary, indent=2))


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--types", default="flat,ivf-sq8", help=f"index types, of {', '.join(INDEX_TYPES)}")
    parser.add_argument(
        "--large-types", default="", help="types only for the largest size (default: --types)"
    )
    parser.add_argument("--requests", type=int, default=24, help="warm requests per client")
    parser.add_argument("--pan-sources", type=int, default=40, help="PAN pairs whose sources are indexed")
    parser.add_argument(
        "--pan-suspicious", type=int, default=0, help="PAN plagdet per type at the largest size"
    )
    parser.add_argument("--backend", default=DEFAULT_EMBED_BACKEND)
    parser.add_argument("--serve-flat-up-to", type=int, default=100_000, help="largest flat index to serve")
    parser.add_argument("--work-dir", type=Path, default=OUT / "scale")
    parser.add_argument("--max-seconds", type=float, default=5400, help="skip remaining steps after this")
    parser.add_argument("--out", type=Path, default=OUT / "scale.json")
    parser.add_argument(
        "--serve-data-dir",
        type=Path,
        default=None,
        help="only measure serving (cold start, latency) on this already filled data dir",
    )
    parser.add_argument("--index-type", default="ivf-sq8", help="index type of --serve-data-dir")
    parser.add_argument(
        "--baseline-tree",
        type=Path,
        default=None,
        help="with --serve-data-dir: a source tree whose server is measured in turn with this tree's",
    )
    parser.add_argument(
        "--tree",
        type=Path,
        default=None,
        help="with --serve-data-dir: measure this source tree's server instead of this checkout's",
    )
    parser.add_argument("--alternations", type=int, default=3, help="with --serve-data-dir")
    parser.add_argument(
        "--this-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="with --serve-data-dir: environment for this tree's server only (repeatable), e.g. "
        "REWRITE_DETECTOR_IVF_FAST_SCAN=1",
    )
    parser.add_argument(
        "--baseline-data-dir",
        type=Path,
        default=None,
        help="with --baseline-tree: the baseline's server serves this data dir (default --serve-data-dir), "
        "e.g. a copy whose index the baseline built",
    )
    args = parser.parse_args()
    if bad := [spec for spec in args.this_env if "=" not in spec]:
        parser.error(f"--this-env wants KEY=VALUE, got {', '.join(bad)}")
    started = time.monotonic()
    sizes = [int(s) for s in args.sizes.split(",")]
    types = args.types.split(",")
    large_types = args.large_types.split(",") if args.large_types else types
    data_dir = args.work_dir / "data"
    args.work_dir.mkdir(parents=True, exist_ok=True)
    log = args.work_dir / "server.log"
    results: dict[str, Any] = {**run_header("bench_scale.py"), "backend": args.backend, "sizes": {}}
    if args.serve_data_dir:
        results["serve_data_dir"] = str(args.serve_data_dir)
        serve_against_baseline(args, results)
        results["seconds"] = round(time.monotonic() - started, 1)
        args.out.write_text(json.dumps(results, indent=2) + "\n")
        return 0

    if not (data_dir / STORE_FILE).exists():
        results["real_articles"] = index_real_articles(data_dir, args.pan_sources)
        print("real articles indexed:", results["real_articles"], flush=True)
    embedder = load_embedder(backend=args.backend, cache_dir=MODEL_CACHE)
    # One model-call cache for every PAN run: each index type checks the same documents.
    pan_embedder = CachingEmbedder(embedder, 500_000)
    seed_vectors = embedder.embed_batch([p for k in QUERY_SEEDS for p in _paragraphs(seed_texts()[k])])
    for size in sizes:
        if time.monotonic() - started > args.max_seconds:
            print(f"time limit: skipping size {size}", flush=True)
            break
        entry: dict[str, Any] = {"fill": fill_to(data_dir, size), "types": {}}
        print(size, "fill", entry["fill"], flush=True)
        ids, vectors = all_vectors(data_dir)
        rng = np.random.default_rng(size)
        queries = recall_queries(ids, vectors, seed_vectors, rng)
        truth = {name: exact_neighbours(ids, vectors, q, 10) for name, (q, _) in queries.items()}
        del vectors
        for index_type in large_types if size == sizes[-1] else types:
            if time.monotonic() - started > args.max_seconds:
                print(f"time limit: skipping {index_type} at {size}", flush=True)
                continue
            row: dict[str, Any] = {"build": build_index(data_dir, index_type)}
            row["memory"] = index_memory(data_dir, index_type)
            row["recall"] = recall(data_dir, index_type, queries, truth)
            print(size, index_type, json.dumps(row), flush=True)
            if index_type == "flat" and size > args.serve_flat_up_to:
                # Exact search reads every vector for every query: its per-query time above (recall) says
                # why flat is not served at this size; timing Checks on it would only burn the budget.
                row["service"] = "not measured: flat above --serve-flat-up-to"
            else:
                row["service"] = serve_and_measure(data_dir, index_type, args, log)
            print(size, index_type, json.dumps(row["service"]), flush=True)
            if args.pan_suspicious and size == sizes[-1]:
                row["pan"] = pan_plagdet(data_dir, index_type, args.pan_suspicious, pan_embedder)
                print(size, index_type, "pan", row["pan"], flush=True)
            entry["types"][index_type] = row
            results["sizes"][str(size)] = entry
            args.out.write_text(json.dumps(results, indent=2) + "\n")  # partial results survive a stop
        results["sizes"][str(size)] = entry
    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} in {results['seconds']} s")
    return 0


def _paragraphs(text: str) -> list[str]:
    from _speed import paragraphs_of

    return paragraphs_of([text])


if __name__ == "__main__":
    raise SystemExit(main())
