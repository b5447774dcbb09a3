"""Per-source scores and verdicts from aligned groups. Pure functions; thresholds are calibrated.

Definitions (all in [0, 1]; characters are original-text characters of content paragraphs):
- counted pair: any pair whose kind is not WEAK (weak pairs are reported, never counted);
- coverage_submitted / coverage_source: share of each side's content characters inside the extents of
  counted pairs (a paragraph pair's extent is its paragraphs; a passage's is the passage);
- verbatim_coverage: the same, counting only VERBATIM and NEAR_VERBATIM pairs, on the submitted side;
- mean_similarity, lexical_overlap, anchor_overlap: means over counted pairs weighted by submitted chars;
- order_preservation: share of consecutive counted pairs (in submitted order) whose source position grows;
- score: coverage_submitted x mean_similarity — how much of the article is derived, and how closely —
  plus WEAK_SCORE_SHARE of the same product over the WEAK pairs (see there).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

from rewrite_detector_server.core.evidence import Evidence
from rewrite_detector_server.core.spans import span_length, union_length
from rewrite_detector_server.core.types import PairKind, Verdict

VERBATIM_KINDS = frozenset({PairKind.VERBATIM, PairKind.NEAR_VERBATIM})

# WEAK pairs never count towards coverage or a verdict, but a source with only low-confidence
# alignment is more likely derived than one with none: they add this share of their own
# coverage x similarity to the score, so that they order the articles without counted reuse (which
# all scored 0) and barely move the others. On pan13-train (pair mode, before this rule), 134 of the
# 3238 derived pairs got no counted pair, 62 of them with WEAK ones, against 168 of the 1947 case-free
# pairs: document-level ROC-AUC 0.973 -> 0.981 (plagdet and verdicts unchanged).
WEAK_SCORE_SHARE = 0.01


@dataclass(frozen=True, slots=True)
class VerdictParams:
    """What each verdict requires; defaults are overridden by the fitted calibration."""

    # NEAR_DUPLICATE: nearly all of the submission is (near-)verbatim and it covers most of the source.
    near_duplicate_verbatim_coverage: float = 0.8
    near_duplicate_source_coverage: float = 0.5
    # REWRITE: most of the submission is derived from this one source.
    rewrite_coverage: float = 0.85
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


def _coverage_times_similarity(evidence: Sequence[Evidence], submitted_total: int) -> float:
    """Share of the submitted content inside the pairs' extents x their mean similarity (by characters)."""
    weights = [span_length(e.submitted_extent) for e in evidence]
    if not submitted_total or not sum(weights):
        return 0.0
    coverage = min(1.0, union_length([e.submitted_extent for e in evidence]) / submitted_total)
    return coverage * sum(e.similarity * w for e, w in zip(evidence, weights, strict=True)) / sum(weights)


def score_source(
    evidence: Sequence[Evidence],
    submitted_total: int,
    source_total: int,
    params: VerdictParams | None = None,
) -> SourceScore:
    """Scores of one source from its aligned evidence; totals are each side's content characters."""
    params = params or VerdictParams()
    counted = [e for e in evidence if e.counted]
    covered_sub = union_length([e.submitted_extent for e in counted])
    covered_src = union_length([e.source_extent for e in counted])
    covered_verbatim = union_length([e.submitted_extent for e in counted if e.kind in VERBATIM_KINDS])
    coverage_submitted = min(1.0, covered_sub / submitted_total) if submitted_total else 0.0
    coverage_source = min(1.0, covered_src / source_total) if source_total else 0.0
    verbatim_coverage = min(1.0, covered_verbatim / submitted_total) if submitted_total else 0.0

    weights = [e.submitted_extent[1] - e.submitted_extent[0] for e in counted]
    total_weight = sum(weights)

    def weighted(values: Sequence[float]) -> float:
        if not total_weight:
            return 0.0
        return sum(v * w for v, w in zip(values, weights, strict=True)) / total_weight

    mean_similarity = weighted([e.similarity for e in counted])
    weak_score = _coverage_times_similarity([e for e in evidence if not e.counted], submitted_total)
    ordered = sorted(counted, key=lambda e: e.submitted_extent)
    steps = list(itertools.pairwise(ordered))
    order_preservation = (
        sum(1 for a, b in steps if b.source_extent[0] > a.source_extent[0]) / len(steps) if steps else 1.0
    )

    if (
        verbatim_coverage >= params.near_duplicate_verbatim_coverage
        and coverage_source >= params.near_duplicate_source_coverage
    ):
        verdict = Verdict.NEAR_DUPLICATE
    elif coverage_submitted >= params.rewrite_coverage:
        verdict = Verdict.REWRITE
    elif coverage_submitted >= params.partial_coverage or covered_sub >= params.partial_min_chars:
        verdict = Verdict.PARTIAL_REUSE
    else:
        verdict = Verdict.ORIGINAL

    return SourceScore(
        verdict=verdict,
        score=min(1.0, coverage_submitted * mean_similarity + WEAK_SCORE_SHARE * weak_score),
        coverage_submitted=coverage_submitted,
        coverage_source=coverage_source,
        verbatim_coverage=verbatim_coverage,
        mean_similarity=mean_similarity,
        lexical_overlap=weighted([e.lexical_overlap for e in counted]),
        anchor_overlap=weighted([e.anchor_overlap for e in counted]),
        order_preservation=order_preservation,
        counted_pairs=len(counted),
    )
