"""How many true PAN sources the lexical candidates find (core/fingerprints.py), and at what cost.

    python bench/lexical_recall.py                         # the shipped LexicalParams
    python bench/lexical_recall.py --min-shared 2,4,6 --max-df 50,200

Indexes the fingerprints of every pan13-train source document's content paragraphs in memory (the same
rows the store keeps: fingerprint -> paragraph), then, for each suspicious document, runs the product's
`lexical_candidates` over its content paragraphs and reports, per obfuscation type, the share of its
derived pairs whose source is among the candidates, and the mean number of candidates per document (each
candidate costs a full alignment in `check`). No model is involved: this isolates candidate finding from
the embedding votes and from alignment.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np

from rewrite_detector_server.core.fingerprints import LexicalParams, fingerprints, lexical_candidates
from rewrite_detector_server.core.segment import segment
from rewrite_detector_server.evaluation.pan import PanCorpus

DEFAULT_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "pan13-train"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS)
    defaults = LexicalParams()
    parser.add_argument("--min-shared", default=str(defaults.min_shared), help="comma-separated values")
    parser.add_argument(
        "--max-df", default=str(defaults.max_paragraphs_per_fingerprint), help="comma-separated"
    )
    parser.add_argument("--max-candidates", type=int, default=defaults.max_candidates)
    args = parser.parse_args()
    corpus = PanCorpus(args.corpus)

    started = time.perf_counter()
    postings: dict[int, list[int]] = defaultdict(list)
    paragraph_source: dict[int, tuple[str, int]] = {}
    sources = sorted({p.source_id for p in corpus.pairs})
    for source_id in sources:
        for paragraph in segment(corpus.read_source(source_id)).content_paragraphs:
            vector_id = len(paragraph_source)
            paragraph_source[vector_id] = (source_id, paragraph.index)
            for fingerprint in fingerprints(paragraph.text):
                postings[fingerprint].append(vector_id)
    arrays = {f: np.asarray(v, dtype=np.int64) for f, v in postings.items()}
    print(
        f"{len(sources)} sources, {len(paragraph_source)} paragraphs, "
        f"{sum(len(v) for v in postings.values())} fingerprint rows ({time.perf_counter() - started:.0f} s)"
    )

    def lookup(wanted: Sequence[int], limit: int) -> Mapping[int, np.ndarray]:
        return {f: arrays[f] for f in wanted if f in arrays and len(arrays[f]) <= limit}

    def locate(ids: Iterable[int]) -> Mapping[int, tuple[str, int]]:
        return {i: paragraph_source[i] for i in ids}

    truth: dict[str, set[str]] = defaultdict(set)
    label: dict[tuple[str, str], str] = {}
    for pair in corpus.pairs:
        if pair.is_derived:
            truth[pair.suspicious_id].add(pair.source_id)
            label[pair.key] = pair.label
    documents = {
        s: [fingerprints(p.text) for p in segment(corpus.read_suspicious(s)).content_paragraphs]
        for s in sorted({p.suspicious_id for p in corpus.pairs})
    }
    print(f"{len(documents)} suspicious documents, {len(label)} derived pairs")
    print(
        "| min shared | max paragraphs / fingerprint | candidates / document | "
        + " | ".join(["none", "random", "translation", "summary", "entire"])
        + " |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for min_shared, max_df in itertools.product(_ints(args.min_shared), _ints(args.max_df)):
        params = LexicalParams(min_shared, max_df, args.max_candidates)
        found: Counter[str] = Counter()
        total: Counter[str] = Counter()
        counts = []
        for suspicious_id, paragraphs in documents.items():
            candidates = {a for a, _ in lexical_candidates(paragraphs, lookup, locate, params)}
            counts.append(len(candidates))
            for source_id in truth.get(suspicious_id, ()):
                kind = label[(suspicious_id, source_id)]
                total[kind] += 1
                found[kind] += source_id in candidates
        shares = [found[k] / total[k] for k in ("none", "random", "translation", "summary")]
        entire = sum(found.values()) / sum(total.values())
        print(
            f"| {min_shared} | {max_df} | {statistics.fmean(counts):.1f} | "
            + " | ".join(f"{s:.3f}" for s in shares)
            + f" | {entire:.3f} |"
        )


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


if __name__ == "__main__":
    main()
