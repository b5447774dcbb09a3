"""ivf-sq8 with and without the fast-scan first pass (``IVF_FAST_SCAN``): CPU per Check, recall, bytes.

    python bench/bench_fast_scan.py [--n 200000] [--data uniform,clustered]

Builds two ``FaissVectorIndex`` "ivf-sq8" indexes over the same N synthetic 384-d unit vectors, in this
process: SQ8 alone, and SQ8 plus the 4-bit PQ fast-scan pass re-ranked with the SQ8 codes. The lists
are sized as at 1M (957 lists for 1M vectors, scaled to N: ~1 045 vectors a list), so a probed list
costs what it costs at 1M; nprobe 8, one FAISS thread, as the server searches. For each data set:

* CPU (process time) per Check-sized batch of 18 near-duplicate queries (a stored vector plus noise,
  cosine ~0.8), both variants alternated for ``--rounds`` rounds; and the fast-scan pass alone;
* recall@10 of each against exact float32 search, on 500 such queries;
* CPU per ``remove`` of 4 ids (an article's paragraphs): the fast-scan part scans its lists;
* snapshot bytes per vector (index file, fast-scan file);
* with ``--k-factors``, CPU and recall with other numbers of candidates per neighbour than the
  built-in 4 (``vector_index._FAST_SCAN_K_FACTOR``, rebound for the measurement).

"uniform" vectors have no structure, the worst case for 4-bit PQ; "clustered" ones (Gaussian clouds
around N/200 centres) are closer to sentence embeddings. Neither is a real corpus: the real-embedding
figures are in bench/RESULTS.md. Prints only; writes nothing under bench/out. Takes ~1-2 minutes.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import faiss
import numpy as np
from bench_ivf_lists import CHECK_BATCH
from bench_scale import DIMENSION

from rewrite_detector_server.storage import vector_index
from rewrite_detector_server.storage.vector_index import FaissVectorIndex, IndexOptions

K = 10
LISTS_AT_1M = 957  # the 1M data dir's lists (trained at ~57k vectors)


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def make_base(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    if kind == "uniform":
        return unit_rows(rng.standard_normal((n, DIMENSION), dtype=np.float32))
    centres = unit_rows(rng.standard_normal((max(1, n // 200), DIMENSION), dtype=np.float32))
    # Noise of norm ~0.8: a vector is at cosine ~0.78 to its centre, ~0.6 to its cloud's other members.
    noise = (0.8 / np.sqrt(DIMENSION)) * rng.standard_normal((n, DIMENSION), dtype=np.float32)
    return unit_rows(centres[rng.integers(0, centres.shape[0], n)] + noise)


def near_duplicates(base: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """Stored vectors plus noise of norm 0.75 (cosine ~0.8 to their source)."""
    picked = base[rng.choice(base.shape[0], count, replace=False)]
    noise = (0.75 / np.sqrt(DIMENSION)) * rng.standard_normal(picked.shape, dtype=np.float32)
    return unit_rows(picked + noise)


def exact_top(base: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for start in range(0, queries.shape[0], 100):
        sims = queries[start : start + 100] @ base.T
        top = np.argpartition(-sims, k, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(sims, top, axis=1), axis=1)
        out[start : start + 100] = np.take_along_axis(top, order, axis=1)
    return out


def recall(found: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(t)) / truth.shape[1] for f, t in zip(found, truth, strict=True)]))


def cpu_ms_per_batch(search: object, batches: list[np.ndarray]) -> float:
    started = time.process_time()
    for batch in batches:
        search(batch)  # type: ignore[operator]
    return 1e3 * (time.process_time() - started) / len(batches)


def run(kind: str, args: argparse.Namespace, workdir: Path) -> None:
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    base = make_base(kind, args.n, rng)
    ids = np.arange(args.n, dtype=np.int64)
    nlist = args.nlist or max(1, round(LISTS_AT_1M * args.n / 1_000_000))
    indexes = {}
    for label, fast in (("sq8", False), ("fast", True)):
        options = IndexOptions(
            ivf_train_size=args.n, ivf_nlist=nlist, ivf_nprobe=args.nprobe, ivf_fast_scan=fast
        )
        built = time.perf_counter()
        index = FaissVectorIndex(
            DIMENSION, "ivf-sq8", path=workdir / f"{kind}-{label}.faiss", options=options
        )
        index.add(ids, base)
        assert index.kind == "ivf" and index.fast_scan == fast
        indexes[label] = index
        print(f"[{kind}] built {label}: {time.perf_counter() - built:.1f} s", flush=True)
    sq8, fast = indexes["sq8"], indexes["fast"]

    queries = near_duplicates(base, 500, rng)
    truth = exact_top(base, queries, K)
    recall_sq8 = recall(sq8.search(queries, K)[1], truth)
    recall_fast = recall(fast.search(queries, K)[1], truth)
    overlap = recall(fast.search(queries, K)[1], sq8.search(queries, K)[1])

    batches = [near_duplicates(base, CHECK_BATCH, rng) for _ in range(args.batches)]
    params = faiss.SearchParametersIVF()
    params.nprobe = args.nprobe
    # The first pass alone, through the private part: how much of the total is the re-rank.
    fast_pass = fast._fast
    times: dict[str, list[float]] = {"sq8": [], "fast": [], "pass": []}
    for _ in range(args.rounds):
        times["sq8"].append(cpu_ms_per_batch(lambda q: sq8.search(q, K), batches))
        times["fast"].append(cpu_ms_per_batch(lambda q: fast.search(q, K), batches))
        times["pass"].append(cpu_ms_per_batch(lambda q: fast_pass.search(q, 4 * K, params=params), batches))
    ms = {name: float(np.median(values)) for name, values in times.items()}
    sweep = {}
    built_in = vector_index._FAST_SCAN_K_FACTOR
    for factor in [int(f) for f in args.k_factors.split(",") if f and int(f) != built_in]:
        vector_index._FAST_SCAN_K_FACTOR = factor
        try:
            cpu = [cpu_ms_per_batch(lambda q: fast.search(q, K), batches) for _ in range(args.rounds)]
            sweep[factor] = (float(np.median(cpu)), recall(fast.search(queries, K)[1], truth))
        finally:
            vector_index._FAST_SCAN_K_FACTOR = built_in

    removes = {}
    for label, index in indexes.items():
        gone = rng.choice(args.n, 4 * 20, replace=False).astype(np.int64).reshape(20, 4)
        t0 = time.process_time()
        for group in gone:
            assert index.remove(group) == 4
        removes[label] = 1e3 * (time.process_time() - t0) / len(gone)

    sizes = {}
    for label, index in indexes.items():
        index.save()
        assert index.path is not None
        fast_file = index.path.with_name(index.path.name + ".fastscan")
        sizes[label] = (
            index.path.stat().st_size / index.ntotal,
            fast_file.stat().st_size / index.ntotal if fast_file.exists() else 0.0,
        )
        FaissVectorIndex.discard(index.path)
        index.close()

    print(
        f"[{kind}] n={args.n} nlist={nlist} (~{args.n // nlist} vectors a list) nprobe={args.nprobe} "
        f"k={K} batch={CHECK_BATCH} batches={args.batches} rounds={args.rounds} (median of rounds)"
    )
    print(
        f"[{kind}]   CPU per batch   sq8 {ms['sq8']:.2f} ms | fast-scan+re-rank {ms['fast']:.2f} ms "
        f"(of which the fast-scan pass {ms['pass']:.2f} ms) | ratio {ms['fast'] / ms['sq8']:.3f}"
    )
    rounds = {name: [round(v, 2) for v in values] for name, values in times.items()}
    print(f"[{kind}]   rounds sq8 {rounds['sq8']} fast {rounds['fast']}")
    print(
        f"[{kind}]   recall@10 vs exact   sq8 {recall_sq8:.3f} | fast-scan+re-rank {recall_fast:.3f} "
        f"| overlap with sq8's top-10 {overlap:.3f}"
    )
    for factor, (cpu, rec) in sweep.items():
        print(f"[{kind}]   k_factor {factor}: CPU per batch {cpu:.2f} ms, recall@10 {rec:.3f}")
    print(
        f"[{kind}]   CPU per remove of 4 ids   sq8 {removes['sq8']:.2f} ms | "
        f"with fast-scan {removes['fast']:.2f} ms"
    )
    print(
        f"[{kind}]   snapshot bytes/vector   sq8 {sizes['sq8'][0]:.1f} | "
        f"with fast-scan {sizes['fast'][0]:.1f} + {sizes['fast'][1]:.1f} = {sum(sizes['fast']):.1f}"
    )
    print(f"[{kind}]   wall {time.perf_counter() - started:.0f} s", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n", type=int, default=200_000)
    parser.add_argument("--nlist", type=int, default=0, help="0: 957 lists per 1M vectors")
    parser.add_argument("--nprobe", type=int, default=8)
    parser.add_argument("--data", default="uniform,clustered")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k-factors", default="8,16", help="also measure these candidates per neighbour")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # the server's Check searches run one query batch per thread
    with tempfile.TemporaryDirectory(prefix="bench-fast-scan-") as tmp:
        for kind in args.data.split(","):
            run(kind, args, Path(tmp))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
