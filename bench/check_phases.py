"""Where a Check's time goes besides the model, on the throughput benchmark's texts (in-process).

    python bench/check_phases.py --ingest-articles 90 --check-articles 48

The same texts as bench_throughput.py: PAN 2013 source documents indexed, then ~20-paragraph articles of
new paragraphs checked one after another, summing the detector's phase timings (segment / embed / search
/ align, wall ms); then the same paragraphs embedded in one call, the raw rate the throughput ratio is
measured against. Shows how much of a Check is not the model. Writes bench/out/check-phases.json.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from _speed import MODEL_CACHE, OUT, pan_articles, paragraphs_of, run_header

from rewrite_detector_models.embedder import DEFAULT_EMBED_BACKEND, load_embedder
from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import Settings
from rewrite_detector_server.core.types import ArticleInput


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ingest-articles", type=int, default=90)
    parser.add_argument("--check-articles", type=int, default=48)
    parser.add_argument("--out", type=Path, default=OUT / "check-phases.json")
    args = parser.parse_args()
    embedder = load_embedder(backend=DEFAULT_EMBED_BACKEND, cache_dir=MODEL_CACHE)
    indexed = pan_articles(args.ingest_articles)
    checked = pan_articles(args.check_articles, skip=args.ingest_articles, paragraphs_per_article=20)
    results: dict[str, Any] = run_header("check_phases.py")
    with tempfile.TemporaryDirectory(prefix="check-phases-") as tmp:
        detector = build_detector(Settings(data_dir=Path(tmp) / "data", snapshot_every=0), embedder)
        try:
            for number, text in enumerate(indexed):
                detector.index(ArticleInput(id=f"indexed-{number}", text=text))
            phases: collections.Counter[str] = collections.Counter()
            started = time.perf_counter()
            for text in checked:
                phases.update(detector.check(text).timing_ms)
            wall = time.perf_counter() - started
        finally:
            detector.close()
    paragraphs = paragraphs_of(checked)
    started = time.perf_counter()
    embedder.embed_batch(paragraphs)
    raw = time.perf_counter() - started
    per_check = {phase: round(ms / len(checked), 2) for phase, ms in phases.items()}
    results.update(
        checks=len(checked),
        paragraphs=len(paragraphs),
        wall_seconds=round(wall, 2),
        ms_per_check=per_check,
        not_model_ms_per_check=round(per_check["total"] - per_check["embed"], 2),
        raw_encode_seconds_all_paragraphs_in_one_call=round(raw, 2),
        raw_encode_ms_per_check=round(raw * 1000 / len(checked), 2),
    )
    print(json.dumps({k: v for k, v in results.items() if k not in run_header("check_phases.py")}, indent=2))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
