"""CPU of the passage layer (`core/passages.find_passages`) per PAN pair, against a baseline commit.

    python bench/bench_passages.py --baseline-ref 4427958 --pairs 200 --rounds 3

Loads `core/passages.py` as it is at ``--baseline-ref`` (``git show``) next to the working tree's, in
this process, on the same pairs (a seeded sample of pan13-train's pairs, both sides segmented as the
detector does). Both modules are warmed on every pair first (their per-paragraph sentence caches and
stemmer fill), then timed in alternating rounds so that other load on the machine hits both alike;
the figure per module is the fastest round's process CPU per pair, and the ratio is this tree's over the
baseline's. The two modules must accept the same call (`find_passages(text, paragraphs, text,
paragraphs)` with default parameters).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from _speed import OUT, PAN, git, run_header

from rewrite_detector_server.core import passages
from rewrite_detector_server.core.segment import segment
from rewrite_detector_server.core.types import Paragraph
from rewrite_detector_server.evaluation.pan import PanCorpus

PASSAGES_PATH = "server/rewrite_detector_server/core/passages.py"
Document = tuple[str, Sequence[Paragraph], str, Sequence[Paragraph]]


def baseline_module(ref: str, scratch: Path) -> ModuleType:
    source = git("show", f"{ref}:{PASSAGES_PATH}")
    if not source:
        raise SystemExit(f"no {PASSAGES_PATH} at {ref!r}")
    path = scratch / "passages_baseline.py"
    path.write_text(source + "\n", encoding="utf-8")
    spec = importlib.util.spec_from_file_location("passages_baseline", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their module by name while it loads
    spec.loader.exec_module(module)
    return module


def sample_documents(count: int, seed: int) -> list[Document]:
    corpus = PanCorpus(PAN)
    chosen = random.Random(seed).sample(list(corpus.pairs), min(count, len(corpus.pairs)))
    documents = []
    for pair in chosen:
        submitted, source = corpus.read_suspicious(pair.suspicious_id), corpus.read_source(pair.source_id)
        documents.append(
            (submitted, segment(submitted).content_paragraphs, source, segment(source).content_paragraphs)
        )
    return documents


def cpu_ms_per_document(find: Callable[..., Any], documents: Sequence[Document]) -> float:
    started = time.process_time()
    for document in documents:
        find(*document)
    return (time.process_time() - started) / len(documents) * 1000.0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline-ref", required=True, help="git commit whose passages.py is the baseline")
    parser.add_argument("--pairs", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT / "bench-passages.json")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        modules = {"baseline": baseline_module(args.baseline_ref, Path(scratch)), "this tree": passages}
        documents = sample_documents(args.pairs, args.seed)
        for module in modules.values():
            for document in documents:
                module.find_passages(*document)
        rounds: dict[str, list[float]] = {name: [] for name in modules}
        for _ in range(args.rounds):
            for name, module in modules.items():
                rounds[name].append(cpu_ms_per_document(module.find_passages, documents))

    best = {name: min(values) for name, values in rounds.items()}
    results = {
        **run_header("bench_passages.py"),
        "baseline_ref": args.baseline_ref,
        "pairs": len(documents),
        "cpu_ms_per_pair_rounds": rounds,
        "cpu_ms_per_pair": best,
        "ratio": best["this tree"] / best["baseline"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(
        f"find_passages CPU per pair ({len(documents)} PAN pairs, best of {args.rounds}): "
        f"baseline {args.baseline_ref} {best['baseline']:.2f} ms, this tree {best['this tree']:.2f} ms, "
        f"ratio {results['ratio']:.2f}  -> {args.out}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
