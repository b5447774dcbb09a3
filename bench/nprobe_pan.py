"""PAN retrieval plagdet on a filled ivf-sq8 data dir at several nprobe, lexical candidates on and off.

    python bench/nprobe_pan.py --data-dir bench/out/scale/data --pairs 40 --nprobes 16,8,4
    python bench/nprobe_pan.py --data-dir bench/out/scale/data --nprobes 8 --fast-scan off,on --lexical on

The data dir is one bench_scale.py filled (PAN source documents among synthetic filler, e.g. 1M
paragraphs): ``--pairs`` derived pairs whose sources it holds, their suspicious documents checked
against everything through the real detector (``bench_scale.pan_plagdet``) with ``ivf_nprobe`` set to
each value. The question it answers: what scanning fewer lists per query (the main CPU cost of a Check
at 1M) costs in detection, not only in recall of neighbours. Writes bench/out/nprobe-pan.json.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _speed import MODEL_CACHE, OUT, run_header, write_results
from bench_scale import pan_plagdet

from rewrite_detector_models.cache import CachingEmbedder
from rewrite_detector_models.embedder import DEFAULT_EMBED_BACKEND, load_embedder


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=40)
    parser.add_argument("--nprobes", default="16,8,4")
    parser.add_argument(
        "--fast-scan",
        default="off",
        help="off, on or off,on: the ivf-sq8 fast-scan first pass (IVF_FAST_SCAN) for each setting",
    )
    parser.add_argument("--lexical", default="on,off", help="lexical candidates: on, off or on,off")
    parser.add_argument("--out", type=Path, default=OUT / "nprobe-pan.json")
    args = parser.parse_args()
    # The same documents are checked once per setting: their embeddings are computed once.
    embedder = CachingEmbedder(load_embedder(backend=DEFAULT_EMBED_BACKEND, cache_dir=MODEL_CACHE), 500_000)
    results: dict[str, Any] = {**run_header("nprobe_pan.py"), "data_dir": str(args.data_dir), "runs": {}}
    for nprobe in [int(n) for n in args.nprobes.split(",")]:
        for fast_scan in args.fast_scan.split(","):
            for lexical in args.lexical.split(","):
                extra: dict[str, Any] = {"ivf_fast_scan": fast_scan == "on"}
                if lexical == "off":
                    extra["lexical_min_shared"] = 0
                run = pan_plagdet(args.data_dir, "ivf-sq8", args.pairs, embedder, ivf_nprobe=nprobe, **extra)
                name = f"nprobe={nprobe} fast_scan={fast_scan} lexical={lexical}"
                results["runs"][name] = run
                print(name, json.dumps(run), flush=True)
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
