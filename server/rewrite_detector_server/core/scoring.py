"""Per-source scores and verdicts from aligned groups. Pure functions; thresholds are calibrated.

Definitions (all in [0, 1], lengths in characters of normalised content paragraphs):
- counted pair: any pair whose kind is not WEAK (weak pairs are reported, never counted);
- coverage_submitted / coverage_source: share of each side's content characters inside counted pairs;
- verbatim_coverage: the same, counting only VERBATIM and NEAR_VERBATIM pairs, on the submitted side;
- mean_similarity, lexical_overlap, anchor_overlap: means over counted pairs weighted by submitted chars;
- order_preservation: share of consecutive counted pairs (in submitted order) whose source position grows;
- score: coverage_submitted x mean_similarity — how much of the article is derived, and how closely.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rewrite_detector_server.core.align import GroupPair
from rewrite_detector_server.core.types import PairKind, Verdict

VERBATIM_KINDS = frozenset({PairKind.VERBATIM, PairKind.NEAR_VERBATIM})


@dataclass(frozen=True, slots=True)
class VerdictParams:
    """What each verdict requires; defaults are overridden by the fitted calibration."""

    # NEAR_DUPLICATE: nearly all of the submission is (near-)verbatim and it covers most of the source.
    near_duplicate_verbatim_coverage: float = 0.8
    near_duplicate_source_coverage: float = 0.5
    # REWRITE: most of the submission is derived from this one source.
    rewrite_coverage: float = 0.8
    # PARTIAL_REUSE: a material share is derived, or at least one long passage.
    partial_coverage: float = 0.15
    partial_min_chars: int = 300


@dataclass(frozen=True, slots=True)
class SourceScore:
    verdict: Verdict
    score: float
    coverage_submitted: float
    coverage_source: float
    verbatim_coverage: float
    mean_similarity: float
    lexical_overlap: float
    anchor_overlap: float
    order_preservation: float
    counted_pairs: int


def _share(covered: set[int], lengths: Sequence[int]) -> float:
    total = sum(lengths)
    return sum(lengths[i] for i in covered) / total if total else 0.0


def score_source(
    pairs: Sequence[GroupPair],
    submitted_lengths: Sequence[int],
    source_lengths: Sequence[int],
    params: VerdictParams | None = None,
) -> SourceScore:
    params = params or VerdictParams()
    counted = [p for p in pairs if p.kind is not PairKind.WEAK]
    covered_sub = {i for p in counted for i in p.submitted}
    covered_src = {j for p in counted for j in p.source}
    verbatim_sub = {i for p in counted if p.kind in VERBATIM_KINDS for i in p.submitted}
    coverage_submitted = _share(covered_sub, submitted_lengths)
    coverage_source = _share(covered_src, source_lengths)
    verbatim_coverage = _share(verbatim_sub, submitted_lengths)

    weights = [sum(submitted_lengths[i] for i in p.submitted) for p in counted]
    total_weight = sum(weights)

    def weighted(values: Sequence[float]) -> float:
        return (
            sum(v * w for v, w in zip(values, weights, strict=True)) / total_weight if total_weight else 0.0
        )

    mean_similarity = weighted([p.similarity for p in counted])
    ordered = sorted(counted, key=lambda p: p.submitted[0])
    steps = list(itertools.pairwise(ordered))
    order_preservation = (
        sum(1 for a, b in steps if b.source[0] > a.source[-1] or b.source[0] > a.source[0]) / len(steps)
        if steps
        else 1.0
    )

    if (
        verbatim_coverage >= params.near_duplicate_verbatim_coverage
        and coverage_source >= params.near_duplicate_source_coverage
    ):
        verdict = Verdict.NEAR_DUPLICATE
    elif coverage_submitted >= params.rewrite_coverage:
        verdict = Verdict.REWRITE
    elif coverage_submitted >= params.partial_coverage or total_weight >= params.partial_min_chars:
        verdict = Verdict.PARTIAL_REUSE
    else:
        verdict = Verdict.ORIGINAL

    return SourceScore(
        verdict=verdict,
        score=coverage_submitted * mean_similarity,
        coverage_submitted=coverage_submitted,
        coverage_source=coverage_source,
        verbatim_coverage=verbatim_coverage,
        mean_similarity=mean_similarity,
        lexical_overlap=weighted([p.lexical_overlap for p in counted]),
        anchor_overlap=weighted([p.anchor_overlap for p in counted]),
        order_preservation=order_preservation,
        counted_pairs=len(counted),
    )
