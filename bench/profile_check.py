"""Where a Check's CPU goes: in-process Checks against a bench data dir, timed and profiled.

    python bench/profile_check.py --data-dir bench/out/scale/data --index-type ivf-sq8 --rounds 10

Opens the data dir (the 1M one bench_scale.py fills, by default) in this process, warms the model caches
with the seed articles 000/002/003/004 (as the "warm" latency rows of bench_scale.py do), then:
- times ``--rounds`` rounds of the four Checks, one at a time: CPU ms per Check (this thread's CPU
  time, FAISS limited to this thread), the vector search's share of it, the rest (segmentation, store
  look-ups, alignment, passages, the protobuf response the servicer builds), and the detector's phase
  timings (wall: segment / embed / search / align);
- with ``--profile``, runs them again under cProfile and prints the top functions by own and
  cumulative time (``--profile-out`` keeps the raw stats for ``python -m pstats``).
The data dir must not be open in another process (it is locked).
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import faiss
from _speed import MODEL_CACHE, OUT, run_header, seed_texts

from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector_models.embedder import DEFAULT_EMBED_BACKEND, load_embedder
from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import Settings
from rewrite_detector_server.core import features, passages
from rewrite_detector_server.servicer import check_response

QUERY_SEEDS = ("000", "002", "003", "004")
# Looked up by name: an older tree (an A/B baseline) memoises fewer of them.
_MEMOS = ((features, "words"), (features, "_cached_profile"), (passages, "_paragraph_sentences"))
TEXT_CACHES: list[Any] = [getattr(module, name, None) for module, name in _MEMOS]


def clear_text_caches() -> None:
    """Forget every per-text result the alignment memoises (not the stemmer's vocabulary cache, which
    a running server keeps warm), so a repeated Check costs what a new text would, minus the model."""
    for cached in TEXT_CACHES:
        if hasattr(cached, "cache_clear"):  # older trees (an A/B baseline) memoise fewer functions
            cached.cache_clear()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, default=OUT / "scale" / "data")
    parser.add_argument("--index-type", default="ivf-sq8")
    parser.add_argument("--backend", default=DEFAULT_EMBED_BACKEND)
    parser.add_argument("--rounds", type=int, default=10, help="rounds of the four seed Checks")
    parser.add_argument("--profile", action="store_true", help="also run the rounds under cProfile")
    parser.add_argument("--profile-out", type=Path, default=None)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--cold-caches",
        action="store_true",
        help="clear the text-keyed caches of the alignment before every Check (new texts, minus the model)",
    )
    parser.add_argument("--out", type=Path, default=None, help="write the timings as JSON here")
    args = parser.parse_args()

    texts = [seed_texts()[k] for k in QUERY_SEEDS]
    model = load_embedder(backend=args.backend, cache_dir=MODEL_CACHE)
    settings = Settings(data_dir=args.data_dir, index_type=args.index_type, snapshot_every=0)
    opened = time.perf_counter()
    detector = build_detector(settings, model)
    open_seconds = time.perf_counter() - opened
    results: dict[str, Any] = {**run_header("profile_check.py"), "open_seconds": round(open_seconds, 2)}
    try:
        request = pb.CheckRequest()  # the client default: include_texts=False
        verdicts = {k: detector.check(t).verdict.value for k, t in zip(QUERY_SEEDS, texts, strict=True)}
        results["seed_verdicts"] = verdicts

        # The vector search on its own: FAISS in this thread only (no OpenMP helpers), timed apart, so
        # the rest of a Check (the Python work this script is for) is measured without its noise.
        faiss.omp_set_num_threads(1)
        index = detector.storage.index
        search = index.search
        search_ms: list[float] = []

        def timed_search(queries: Any, k: int) -> Any:
            started = time.thread_time()
            try:
                return search(queries, k)
            finally:
                search_ms.append((time.thread_time() - started) * 1000)

        index.search = timed_search  # type: ignore[method-assign]
        cpu_ms: list[float] = []
        phases: dict[str, list[float]] = {}
        for _ in range(args.rounds):
            for text in texts:
                if args.cold_caches:
                    clear_text_caches()
                started = time.thread_time()
                result = detector.check(text)
                check_response(result, request)
                cpu_ms.append((time.thread_time() - started) * 1000)
                for phase, ms in result.timing_ms.items():
                    phases.setdefault(phase, []).append(ms)
        index.search = search  # type: ignore[method-assign]
        rest = [total - searched for total, searched in zip(cpu_ms, search_ms, strict=True)]
        results["checks"] = len(cpu_ms)
        results["cpu_ms_per_check"] = {
            "median": round(statistics.median(cpu_ms), 2),
            "mean": round(statistics.fmean(cpu_ms), 2),
            "min": round(min(cpu_ms), 2),
        }
        results["vector_search_cpu_ms_per_check"] = {
            "median": round(statistics.median(search_ms), 2),
            "mean": round(statistics.fmean(search_ms), 2),
        }
        results["cpu_ms_per_check_without_vector_search"] = {
            "median": round(statistics.median(rest), 2),
            "mean": round(statistics.fmean(rest), 2),
            "min": round(min(rest), 2),
        }
        results["phase_ms_median"] = {p: round(statistics.median(v), 2) for p, v in phases.items()}
        print(json.dumps(results, indent=2), flush=True)

        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            for _ in range(args.rounds):
                for text in texts:
                    if args.cold_caches:
                        clear_text_caches()
                    check_response(detector.check(text), request)
            profiler.disable()
            if args.profile_out:
                profiler.dump_stats(str(args.profile_out))
            stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
            stats.sort_stats("tottime").print_stats(args.top)
            stats.sort_stats("cumulative").print_stats(args.top)
    finally:
        detector.storage.close()
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
