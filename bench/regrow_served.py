"""A served IVF regrow, end to end: Checks keep being answered while the lists are retrained.

    cp -a bench/out/scale/data /tmp/regrow-data     # a filled ivf-sq8 data dir whose lists are due
    python bench/regrow_served.py --data-dir /tmp/regrow-data

Starts `rewrite-detector serve --index-type ivf-sq8` with REWRITE_DETECTOR_IVF_REGROW=1.5 on the data
dir (it is modified: the regrown index is saved into it), sends Checks of seed 000 one after another
until the server logs "index regrown" (or --max-seconds pass), and prints their latencies and verdicts;
then loads the saved snapshot and reports its list count. Writes bench/out/regrow-served.json.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _speed import OUT, ServedProcess, percentiles, run_header, seed_texts

from rewrite_detector import Client
from rewrite_detector_server.storage.facade import INDEX_FILE
from rewrite_detector_server.storage.vector_index import FaissVectorIndex

_REGROWN = re.compile(r"ivf-sq8 index regrown vectors=(\d+) nlist=(\d+)->(\d+) seconds=([\d.]+)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--max-seconds", type=float, default=600)
    parser.add_argument("--out", type=Path, default=OUT / "regrow-served.json")
    args = parser.parse_args()
    log = OUT / "regrow-served.log"
    OUT.mkdir(parents=True, exist_ok=True)
    offset = log.stat().st_size if log.exists() else 0
    results: dict[str, Any] = run_header("regrow_served.py")
    text = seed_texts()["000"]
    latencies: list[float] = []
    verdicts: set[int] = set()
    regrown = None
    with ServedProcess(
        args.data_dir, log, "--index-type", "ivf-sq8", env={"REWRITE_DETECTOR_IVF_REGROW": "1.5"}
    ) as served:
        results["cold_start_seconds"] = round(served.wait_ready(), 2)
        with Client(served.target, timeout=120) as client:
            deadline = time.monotonic() + args.max_seconds
            while regrown is None and time.monotonic() < deadline:
                started = time.perf_counter()
                verdicts.add(int(client.check(text).verdict))
                latencies.append((time.perf_counter() - started) * 1000)
                regrown = _REGROWN.search(log.read_text(errors="replace")[offset:])
                time.sleep(0.2)
    results["checks_while_regrowing"] = {**percentiles(latencies), "verdicts": sorted(verdicts)}
    if regrown:
        vectors, before, after, seconds = regrown.groups()
        results["regrow"] = {
            "vectors": int(vectors),
            "nlist": [int(before), int(after)],
            "seconds": float(seconds),
        }
        saved = FaissVectorIndex.load(args.data_dir / INDEX_FILE, 384, "ivf-sq8")  # regrow off by default
        results["saved_snapshot_nlist"] = saved.nlist
        saved.close()
    print(
        json.dumps(
            {
                k: v
                for k, v in results.items()
                if k in ("regrow", "checks_while_regrowing", "saved_snapshot_nlist")
            }
        )
    )
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if regrown else 1


if __name__ == "__main__":
    raise SystemExit(main())
