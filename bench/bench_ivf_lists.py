"""IVF lists sized at training time vs regrown for the corpus: recall and search cost, same run.

    python bench/bench_ivf_lists.py --baseline-data-dir DIR_A --data-dir DIR_B

Both data dirs hold the same store (a copy); DIR_A's ivf-sq8 index has the lists it was trained with
when it reached ``ivf_train_size`` (the build before regrowing), DIR_B's the lists it was regrown to
(``FaissVectorIndex`` regrows on load; run ``--regrow`` once to do that and save it). For each index and
nprobe: recall@10 against exact search over the store's float32 vectors, recall of the neighbours that
can vote (cosine >= 0.5), and the search time per query for Check-sized batches (18 queries, one
thread, as the server runs them), for near-duplicate queries (a stored vector plus noise, cosine ~0.8)
and the real seed paragraphs. Prints DIR_B's figures as ratios to DIR_A's. With ``--pan-pairs 40``, PAN
retrieval plagdet of the derived pairs whose sources the fill indexed, on both, with the lexical
candidate sources on (the default) and off. Writes bench/out/ivf-lists.json.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
import numpy as np
from _speed import MODEL_CACHE, OUT, run_header, seed_texts, write_results
from bench_scale import (
    DIMENSION,
    QUERY_SEEDS,
    _paragraphs,
    exact_neighbours,
    pan_plagdet,
    recall_figures,
    recall_queries,
)

from rewrite_detector_models.cache import CachingEmbedder
from rewrite_detector_models.embedder import DEFAULT_EMBED_BACKEND, DEFAULT_MODEL_NAME, load_embedder
from rewrite_detector_server.storage import Storage
from rewrite_detector_server.storage.facade import INDEX_FILE, STORE_FILE
from rewrite_detector_server.storage.store import ArticleStore
from rewrite_detector_server.storage.vector_index import FaissVectorIndex, IndexOptions

CHECK_BATCH = 18  # paragraphs of a seed article, searched together by one Check


def regrow(data_dir: Path) -> dict[str, Any]:
    """Open the data dir with regrowing on, wait for it, and close (the regrown index is saved)."""
    started = time.perf_counter()
    storage = Storage.open(data_dir, model_name=DEFAULT_MODEL_NAME, dimension=DIMENSION, index_type="ivf-sq8")
    index = storage.index
    assert isinstance(index, FaissVectorIndex)
    before = index.nlist
    index.wait_for_regrow()
    after = index.nlist
    storage.close()
    return {"nlist_before": before, "nlist_after": after, "seconds": round(time.perf_counter() - started, 1)}


def stored_vectors(data_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The store's exact vectors, read from the store alone (opening a ``Storage`` with another index
    type would rebuild the index under test)."""
    store = ArticleStore(data_dir / STORE_FILE, dimension=DIMENSION)
    try:
        parts = list(store.iter_vectors(65536))
    finally:
        store.close()
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def measure(
    data_dir: Path, nprobe: int, queries: dict[str, Any], truth: dict[str, Any], rounds: int
) -> dict[str, Any]:
    options = IndexOptions(ivf_nprobe=nprobe, ivf_regrow=0)  # measure the lists as saved
    index = FaissVectorIndex.load(data_dir / INDEX_FILE, DIMENSION, "ivf-sq8", options=options)
    out: dict[str, Any] = {"nlist": index.nlist}
    try:
        for name, (q, _) in queries.items():
            true_scores, true_ids = truth[name]
            _, found = index.search(q, 10)
            batches = [q[i : i + CHECK_BATCH] for i in range(0, len(q), CHECK_BATCH)]
            timings = []
            for _ in range(rounds):
                started = time.perf_counter()
                for batch in batches:
                    index.search(batch, 10)
                timings.append((time.perf_counter() - started) * 1000 / len(q))
            out[name] = {
                **recall_figures(found, true_ids, true_scores),
                "search_ms_per_query": round(float(np.median(timings)), 4),
            }
    finally:
        index.close()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-data-dir", type=Path, required=True)
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--regrow", action="store_true", help="first regrow --data-dir's index and save it")
    parser.add_argument("--nprobes", default="8,16,32")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--pan-pairs",
        type=int,
        default=0,
        help="also PAN retrieval plagdet of this many derived pairs (their sources must be in the data dirs, "
        "as bench_scale.py fills them), lexical candidates on and off",
    )
    parser.add_argument("--out", type=Path, default=OUT / "ivf-lists.json")
    args = parser.parse_args()
    faiss.omp_set_num_threads(1)  # the server's Check searches run one query batch per thread
    results: dict[str, Any] = {**run_header("bench_ivf_lists.py"), "runs": {}}
    if args.regrow:
        results["regrow"] = regrow(args.data_dir)
        print("regrow", results["regrow"], flush=True)
    embedder = load_embedder(backend=DEFAULT_EMBED_BACKEND, cache_dir=MODEL_CACHE)
    seed_vectors = embedder.embed_batch([p for k in QUERY_SEEDS for p in _paragraphs(seed_texts()[k])])
    ids, vectors = stored_vectors(args.baseline_data_dir)
    queries = recall_queries(ids, vectors, seed_vectors, np.random.default_rng(len(ids)))
    truth = {name: exact_neighbours(ids, vectors, q, 10) for name, (q, _) in queries.items()}
    del vectors
    for nprobe in [int(n) for n in args.nprobes.split(",")]:
        for label, data_dir in (("baseline", args.baseline_data_dir), ("this", args.data_dir)):
            run = measure(data_dir, nprobe, queries, truth, args.rounds)
            results["runs"][f"{label} nprobe={nprobe}"] = run
            print(label, f"nprobe={nprobe}", json.dumps(run), flush=True)
        base, this = results["runs"][f"baseline nprobe={nprobe}"], results["runs"][f"this nprobe={nprobe}"]
        results["runs"][f"ratio nprobe={nprobe}"] = {
            name: round(this[name]["search_ms_per_query"] / base[name]["search_ms_per_query"], 3)
            for name in queries
        }
        print("ratio", f"nprobe={nprobe}", results["runs"][f"ratio nprobe={nprobe}"], flush=True)
    if args.pan_pairs:
        cached = CachingEmbedder(embedder, 500_000)  # the same documents are checked four times
        for lexical in ("on", "off"):
            extra = {} if lexical == "on" else {"lexical_min_shared": 0}
            for label, data_dir in (("baseline", args.baseline_data_dir), ("this", args.data_dir)):
                run = pan_plagdet(data_dir, "ivf-sq8", args.pan_pairs, cached, **extra)
                results["runs"][f"{label} pan lexical={lexical}"] = run
                print(label, f"PAN lexical candidates {lexical}", json.dumps(run), flush=True)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
