"""Alignment and scoring on hand-made vectors and texts: no model involved."""

from __future__ import annotations

import numpy as np
import pytest

from rewrite_detector_server.core.align import AlignmentParams, AlignSide, GroupPair, align
from rewrite_detector_server.core.evidence import Evidence
from rewrite_detector_server.core.scoring import WEAK_SCORE_SHARE, SourceScore, VerdictParams, score_source
from rewrite_detector_server.core.types import PairKind, Verdict

DIM = 16


def unit(*components: tuple[int, float]) -> np.ndarray:
    vector = np.zeros(DIM, dtype=np.float32)
    for axis, weight in components:
        vector[axis] = weight
    return vector / np.linalg.norm(vector)


def offsets(lengths: list[int]) -> list[tuple[int, int]]:
    """Spans of paragraphs laid end to end with no gap."""
    ends = np.cumsum(lengths).tolist()
    return [(end - length, end) for end, length in zip(ends, lengths, strict=True)]


def score(
    pairs: list[GroupPair],
    sub_lengths: list[int],
    src_lengths: list[int],
    params: VerdictParams | None = None,
) -> SourceScore:
    """score_source over paragraph-level groups whose extents are their whole paragraphs."""
    sub_spans, src_spans = offsets(sub_lengths), offsets(src_lengths)
    evidence = [
        Evidence(
            submitted=p.submitted,
            source=p.source,
            submitted_span=(sub_spans[p.submitted[0]][0], sub_spans[p.submitted[-1]][1]),
            source_span=(src_spans[p.source[0]][0], src_spans[p.source[-1]][1]),
            submitted_extent=(sub_spans[p.submitted[0]][0], sub_spans[p.submitted[-1]][1]),
            source_extent=(src_spans[p.source[0]][0], src_spans[p.source[-1]][1]),
            similarity=p.similarity,
            lexical_overlap=p.lexical_overlap,
            anchor_overlap=p.anchor_overlap,
            kind=p.kind,
            in_order=p.in_order,
        )
        for p in pairs
    ]
    return score_source(evidence, sum(sub_lengths), sum(src_lengths), params)


def side(vectors: list[np.ndarray], texts: list[str]) -> AlignSide:
    return AlignSide(np.stack(vectors), texts, [len(t) for t in texts])


TEXTS = [
    "The central bank raised interest rates by 0.5 points on Tuesday, citing inflation of 7.9 percent.",
    "Governor Ana Ruiz said further increases were likely before the end of the year.",
    "Markets in Madrid fell 2 percent after the announcement, led by bank shares.",
    "Economists at Banco Sur expected the move and forecast a slowdown in lending.",
]


def test_identical_articles_align_one_to_one_as_verbatim() -> None:
    vectors = [unit((i, 1.0)) for i in range(4)]
    pairs = align(side(vectors, TEXTS), side(vectors, TEXTS))
    assert [(p.submitted, p.source) for p in pairs] == [((i,), (i,)) for i in range(4)]
    assert all(p.kind is PairKind.VERBATIM and p.in_order for p in pairs)
    scores = score(pairs, [len(t) for t in TEXTS], [len(t) for t in TEXTS])
    assert scores.verdict is Verdict.NEAR_DUPLICATE
    assert scores.coverage_submitted == pytest.approx(1.0)
    assert scores.coverage_source == pytest.approx(1.0)
    assert scores.order_preservation == 1.0


def test_unrelated_paragraphs_do_not_align() -> None:
    submitted = side([unit((i, 1.0)) for i in range(4)], TEXTS)
    source = side([unit((i + 8, 1.0)) for i in range(4)], [t.upper() + " x" for t in reversed(TEXTS)])
    pairs = align(submitted, source)
    assert pairs == []
    assert score(pairs, [1, 1, 1, 1], [1, 1, 1, 1]).verdict is Verdict.ORIGINAL


def test_chain_prefers_source_order_over_a_slightly_better_crossing_pair() -> None:
    # Submitted 0 resembles source 0 (0.86) and source 1 (0.87); submitted 1 only source 1 (0.95).
    source = side([unit((0, 1.0)), unit((1, 1.0))], ["alpha words here", "beta words there"])
    submitted = side(
        [unit((0, 0.86), (1, 0.87), (5, 0.1)), unit((1, 0.95), (6, 0.3))],
        ["gamma phrase one", "delta phrase two"],
    )
    params = AlignmentParams(chain_threshold=0.6, paraphrase_similarity=0.6)
    pairs = align(submitted, source, params)
    assert [(p.submitted, p.source) for p in pairs] == [((0,), (0,)), ((1,), (1,))]


def test_split_paragraph_groups_both_halves_with_its_source() -> None:
    # The source paragraph covers two topics (axes 0 and 1); the rewrite split it in two.
    source = side([unit((0, 1.0), (1, 1.0)), unit((4, 1.0))], [TEXTS[0] + " " + TEXTS[1], TEXTS[2]])
    submitted = side(
        [unit((0, 1.0), (1, 0.25)), unit((1, 1.0), (0, 0.25)), unit((4, 1.0))],
        ["Rates rose by half a point on Tuesday.", "Ruiz expects more rises this year.", TEXTS[2]],
    )
    params = AlignmentParams(chain_threshold=0.7, paraphrase_similarity=0.7)
    pairs = align(submitted, source, params)
    assert [(p.submitted, p.source) for p in pairs] == [((0, 1), (0,)), ((2,), (1,))]
    merged = pairs[0]
    assert merged.similarity > 0.95  # the two halves together match better than either alone
    assert pairs[1].kind is PairKind.VERBATIM


def test_moved_paragraph_is_found_out_of_order_only_on_strong_evidence() -> None:
    vectors = [unit((i, 1.0)) for i in range(4)]
    order = [2, 0, 1, 3]
    submitted = side([vectors[i] for i in order], [TEXTS[i] for i in order])
    pairs = align(submitted, side(vectors, TEXTS))
    assert sorted((p.submitted[0], p.source[0]) for p in pairs) == [(0, 2), (1, 0), (2, 1), (3, 3)]
    assert [p.in_order for p in pairs] == [False, True, True, True]
    scores = score(pairs, [len(TEXTS[i]) for i in order], [len(t) for t in TEXTS])
    assert scores.order_preservation == pytest.approx(2 / 3)


def test_weak_same_topic_pairs_are_reported_but_not_counted() -> None:
    weak = GroupPair((0,), (0,), 0.7, 0.1, 0.5, 0.4, PairKind.WEAK, True)
    strong = GroupPair((1,), (3,), 0.9, 0.5, 1.0, 0.6, PairKind.PARAPHRASE, True)
    scores = score([weak, strong], [100, 600], [50, 50, 50, 150])
    assert scores.counted_pairs == 1
    assert scores.coverage_submitted == pytest.approx(600 / 700)
    assert scores.coverage_source == pytest.approx(0.5)
    assert scores.mean_similarity == pytest.approx(0.9)
    # The WEAK pair adds WEAK_SCORE_SHARE of its own coverage x similarity.
    assert scores.score == pytest.approx(600 / 700 * 0.9 + WEAK_SCORE_SHARE * 100 / 700 * 0.7)
    assert scores.verdict is Verdict.REWRITE


def test_weak_pairs_alone_rank_a_source_above_one_with_nothing_but_below_counted_reuse() -> None:
    weak_only = score([GroupPair((0,), (0,), 0.8, 0.1, 0.0, 0.3, PairKind.WEAK, True)], [500, 500], [1000])
    nothing = score([], [500, 500], [1000])
    one_counted = score(
        [GroupPair((0,), (0,), 0.8, 0.5, 0.0, 0.9, PairKind.PARAPHRASE, True)], [50, 950], [1000]
    )

    assert weak_only.verdict is nothing.verdict is Verdict.ORIGINAL
    assert weak_only.coverage_submitted == 0.0
    assert nothing.score == 0.0 < weak_only.score == pytest.approx(WEAK_SCORE_SHARE * 0.5 * 0.8)
    assert weak_only.score < one_counted.score


@pytest.mark.parametrize(
    ("kinds", "lengths", "expected"),
    [
        ([PairKind.VERBATIM] * 4, [100] * 4, Verdict.NEAR_DUPLICATE),
        ([PairKind.PARAPHRASE] * 4, [100] * 4, Verdict.REWRITE),
        ([PairKind.VERBATIM, PairKind.WEAK, PairKind.WEAK, PairKind.WEAK], [100] * 4, Verdict.PARTIAL_REUSE),
        ([PairKind.WEAK] * 4, [100] * 4, Verdict.ORIGINAL),
        # One 400-char verbatim paragraph in a long article is still reuse.
        ([PairKind.VERBATIM] + [PairKind.WEAK] * 9, [400] + [1000] * 9, Verdict.PARTIAL_REUSE),
    ],
)
def test_verdict_thresholds(kinds: list[PairKind], lengths: list[int], expected: Verdict) -> None:
    pairs = [GroupPair((i,), (i,), 0.9, 0.5, 0.5, 0.9, k, True) for i, k in enumerate(kinds)]
    assert score(pairs, lengths, lengths, VerdictParams()).verdict is expected


def test_empty_sides_give_no_pairs() -> None:
    empty = AlignSide(np.zeros((0, DIM), dtype=np.float32), [], [])
    assert align(empty, side([unit((0, 1.0))], ["text"])) == []
    with pytest.raises(ValueError, match="one entry per paragraph"):
        AlignSide(np.zeros((2, DIM), dtype=np.float32), ["a"], [1])


def test_union_length_counts_overlapping_spans_once() -> None:
    from rewrite_detector_server.core.spans import union_length

    assert union_length([]) == 0
    assert union_length([(0, 10), (20, 25)]) == 15
    assert union_length([(0, 10), (5, 15)]) == 15  # overlap
    assert union_length([(0, 20), (5, 10)]) == 20  # nested
    assert union_length([(30, 40), (0, 10), (10, 12)]) == 22  # unordered, touching
