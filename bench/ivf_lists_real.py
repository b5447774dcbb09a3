"""IVF lists sized for 1/20 of a corpus vs for all of it, on real embeddings: recall and search cost.

    python bench/ivf_lists_real.py --cache bench/out/cache/embeddings.sqlite3

The 1M index of bench_scale.py is 99.9 % random filler, on which IVF recall says little about real
corpora; this asks the regrow question (`IVF_REGROW`, storage/vector_index.py) of real sentence
embeddings instead: every distinct PAN 2013 paragraph embedding in the evaluation cache (filled by
`bench/eval_pan.py --cache-dir bench/out/cache`), 1 000 held out as queries. Lists trained on a 1/20
sample with ~4*sqrt(n/20) lists (capped at 39 training points per list, as the index does) against lists
for all of it (~4*sqrt(n)), IVF-SQ8, nprobe 8 and 16; recall against exact search (recall@10 and of the
neighbours that can vote, cosine >= 0.5) and the search time per query for Check-sized batches of 18,
one thread. Writes bench/out/ivf-lists-real.json.
"""

from __future__ import annotations

import argparse
import json
import math
import sqlite3
import time
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from _speed import OUT, run_header, write_results
from bench_ivf_lists import CHECK_BATCH
from bench_scale import DIMENSION, recall_figures


def load_cache(path: Path) -> np.ndarray:
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT vector FROM vectors").fetchall()
    vectors = np.stack([np.frombuffer(r[0], dtype=np.float32) for r in rows]).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def trained_ivf(base: np.ndarray, nlist: int, training: np.ndarray) -> Any:
    ivf = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(DIMENSION),
        DIMENSION,
        nlist,
        faiss.ScalarQuantizer.QT_8bit,
        faiss.METRIC_INNER_PRODUCT,
    )
    ivf.cp.niter = 10  # as FaissVectorIndex trains
    ivf.train(training)
    ivf.add(base)
    return ivf


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cache", type=Path, default=OUT / "cache" / "embeddings.sqlite3")
    parser.add_argument("--queries", type=int, default=1000)
    parser.add_argument("--out", type=Path, default=OUT / "ivf-lists-real.json")
    args = parser.parse_args()
    rng = np.random.default_rng(7)
    vectors = load_cache(args.cache)
    order = rng.permutation(len(vectors))
    queries, base = vectors[order[: args.queries]], vectors[order[args.queries :]]
    n = len(base)
    exact = faiss.IndexFlatIP(DIMENSION)
    exact.add(base)
    true_scores, true_rows = exact.search(queries, 10)
    small = n // 20
    variants = {
        "trained at n/20": (
            max(1, min(int(4 * math.sqrt(small)), small // 39)),
            base[rng.choice(n, small, replace=False)],
        ),
    }
    full_lists = int(4 * math.sqrt(n))
    variants["regrown for n"] = (full_lists, base[rng.choice(n, min(n, 64 * full_lists), replace=False)])
    results: dict[str, Any] = {
        **run_header("ivf_lists_real.py"),
        "vectors": n,
        "queries": len(queries),
        "runs": {},
    }
    faiss.omp_set_num_threads(1)  # the server's Check searches run one query batch per thread
    for name, (nlist, training) in variants.items():
        ivf = trained_ivf(base, nlist, training)
        for nprobe in (8, 16):
            ivf.nprobe = nprobe
            started = time.perf_counter()
            for i in range(0, len(queries), CHECK_BATCH):
                ivf.search(queries[i : i + CHECK_BATCH], 10)
            ms = (time.perf_counter() - started) * 1000 / len(queries)
            _, found = ivf.search(queries, 10)
            run = {
                "nlist": nlist,
                "nprobe": nprobe,
                **recall_figures(found, true_rows, true_scores),
                "search_ms_per_query": round(ms, 4),
            }
            results["runs"][f"{name} nprobe={nprobe}"] = run
            print(name, json.dumps(run), flush=True)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
