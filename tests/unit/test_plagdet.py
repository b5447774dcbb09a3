"""PAN plagdet measures on hand-made cases, the official script's own test values, and a brute-force
set-of-characters reference (the COLING 2010 definitions taken literally)."""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewrite_detector_server.evaluation.doclevel import auc_loss, best_f1, roc_auc
from rewrite_detector_server.evaluation.plagdet import (
    Annotation,
    case_recall,
    detects,
    evaluate,
    granularity,
    macro_precision,
    macro_recall,
    plagdet_score,
)
from rewrite_detector_server.evaluation.run import merge_adjacent


def ann(susp: str, s_off: int, s_len: int, src: str, r_off: int, r_len: int) -> Annotation:
    return Annotation(susp, s_off, s_len, src, r_off, r_len)


CASE = ann("susp1", 100, 200, "src1", 1000, 200)


def test_perfect_detection_scores_one() -> None:
    result = evaluate([CASE], [CASE])
    assert (result.plagdet, result.recall, result.precision, result.granularity) == (1.0, 1.0, 1.0, 1.0)
    assert (result.case_count, result.detection_count, result.detected_case_count) == (1, 1, 1)


def test_case_detected_by_two_adjacent_halves() -> None:
    halves = [ann("susp1", 100, 100, "src1", 1000, 100), ann("susp1", 200, 100, "src1", 1100, 100)]
    result = evaluate([CASE], halves)
    assert result.recall == 1.0
    assert result.precision == 1.0
    assert result.granularity == 2.0
    assert result.plagdet == pytest.approx(1 / math.log2(3), abs=1e-12)


def test_partial_overlap_hand_computed() -> None:
    # Suspicious side [150, 350) overlaps the case's [100, 300) on 150 chars; source side [1000, 1100)
    # lies inside the case's [1000, 1200): 100 chars.
    detection = ann("susp1", 150, 200, "src1", 1000, 100)
    result = evaluate([CASE], [detection])
    recall, precision = Fraction(150 + 100, 200 + 200), Fraction(150 + 100, 200 + 100)
    assert result.recall == pytest.approx(float(recall), abs=1e-12)  # 5/8
    assert result.precision == pytest.approx(float(precision), abs=1e-12)  # 5/6
    assert result.granularity == 1.0
    assert result.plagdet == pytest.approx(
        float(2 * recall * precision / (recall + precision)), abs=1e-12
    )  # 5/7


def test_false_detection_on_a_clean_document_halves_precision() -> None:
    false_alarm = ann("susp2", 0, 500, "src9", 0, 500)
    result = evaluate([CASE], [CASE, false_alarm])
    assert result.recall == 1.0
    assert result.precision == 0.5  # macro: (1 + 0) / 2 detections
    assert result.granularity == 1.0
    assert result.plagdet == pytest.approx(2 / 3, abs=1e-12)


def test_only_clean_documents() -> None:
    # Official conventions: no cases and no detections is perfect; detections without cases score 0.
    nothing = evaluate([], [])
    assert (nothing.plagdet, nothing.recall, nothing.precision, nothing.granularity) == (1.0, 1.0, 1.0, 1.0)
    alarm = evaluate([], [ann("susp2", 0, 10, "src9", 0, 10)])
    assert (alarm.plagdet, alarm.recall, alarm.precision, alarm.granularity) == (0.0, 0.0, 0.0, 1.0)


def test_no_detection_scores_zero_precision_not_one() -> None:
    missed = evaluate([CASE], [])
    assert (missed.plagdet, missed.recall, missed.precision, missed.granularity) == (0.0, 0.0, 0.0, 1.0)


def test_detection_on_the_wrong_source_document_does_not_count() -> None:
    same_spans_other_source = ann("susp1", 100, 200, "src2", 1000, 200)
    result = evaluate([CASE], [same_spans_other_source])
    assert not detects(CASE, same_spans_other_source)
    assert (result.recall, result.precision, result.plagdet) == (0.0, 0.0, 0.0)
    assert result.granularity == 1.0
    assert result.detected_case_count == 0


def test_overlap_on_one_side_only_does_not_detect() -> None:
    suspicious_side_only = ann("susp1", 100, 200, "src1", 5000, 200)
    assert case_recall(CASE, [suspicious_side_only]) == 0.0
    assert evaluate([CASE], [suspicious_side_only]).plagdet == 0.0


def test_duplicate_detections_count_once_like_the_official_sets() -> None:
    assert evaluate([CASE], [CASE, CASE]) == evaluate([CASE], [CASE])


def test_empty_ranges_are_refused() -> None:
    with pytest.raises(ValueError, match="empty range"):
        ann("s", 0, 0, "r", 0, 5)
    with pytest.raises(ValueError, match="negative offset"):
        ann("s", -1, 3, "r", 0, 5)


# The official script's unit-test annotations (pan13-text-alignment-perfmeasures.py, TestPerfMeasures),
# external ones only: this module scores text alignment, where every annotation has a source.
A1 = ann("tref1", 0, 100, "sref1", 0, 100)
A3 = ann("tref1", 100, 100, "sref1", 100, 100)
A4 = ann("tref1", 0, 200, "sref1", 0, 200)
A5 = ann("tref1", 0, 1, "sref1", 0, 1)
A6 = ann("tref1", 99, 1, "sref1", 99, 1)
A7 = ann("tref2", 0, 100, "sref2", 0, 100)
A9 = ann("tref2", 50, 100, "sref2", 50, 100)
A10 = ann("tref2", 25, 75, "sref2", 25, 75)


def test_official_script_values() -> None:
    assert macro_recall([A1], [A1]) == 1
    assert macro_recall([A1, A7], [A1]) == 0.5
    assert macro_recall([A1], [A7]) == 0
    assert case_recall(A1, []) == 0
    assert case_recall(A1, [A3]) == 0
    assert case_recall(A1, [A4]) == 1
    assert case_recall(A1, [A4, A7]) == 1
    assert case_recall(A1, [A7, A9]) == 0
    assert case_recall(A7, [A9]) == 0.5
    assert case_recall(A7, [A10]) == 0.75
    assert case_recall(A7, [A9, A10]) == 0.75
    assert macro_precision([A1, A7], [A1]) == 1
    assert macro_precision([A1], [A4]) == 0.5
    assert macro_precision([A7], [A10]) == 1
    assert macro_precision([A7], [A9, A10]) == 0.75
    assert macro_precision([A1], [A3, A4]) == 0.25
    assert granularity([], []) == 1
    assert granularity([A1], [A3]) == 1
    assert granularity([A1], [A3, A4, A5, A6]) == 3
    assert granularity([A1, A3], [A4]) == 1
    assert detects(A1, A5) and detects(A1, A6) and not detects(A1, A3) and not detects(A1, A9)
    assert plagdet_score(-1, 0, 0) == 0
    assert plagdet_score(0, 0, 1) == 0
    assert plagdet_score(1, 1, 1) == 1
    assert plagdet_score(0.5, 1, 1) == pytest.approx(2 / 3)
    assert plagdet_score(1, 1, 2) == pytest.approx(0.63092975)
    assert plagdet_score(0.25, 0.75, 2) == pytest.approx(0.23659865)


# -- brute force: annotations as sets of (document, character) references ---------------------------


def _chars(a: Annotation) -> tuple[set[int], set[int]]:
    return (
        set(range(a.suspicious_offset, a.suspicious_end)),
        set(range(a.source_offset, a.source_end)),
    )


def _brute_share(reference: Annotation, others: list[Annotation]) -> Fraction:
    ref_s, ref_r = _chars(reference)
    covered_s: set[int] = set()
    covered_r: set[int] = set()
    for other in others:
        o_s, o_r = _chars(other)
        if other.document_pair == reference.document_pair and ref_s & o_s and ref_r & o_r:
            covered_s |= ref_s & o_s
            covered_r |= ref_r & o_r
    return Fraction(len(covered_s) + len(covered_r), len(ref_s) + len(ref_r))


def _brute(cases: list[Annotation], detections: list[Annotation]) -> tuple[float, float, float]:
    cases, detections = list(dict.fromkeys(cases)), list(dict.fromkeys(detections))
    if not cases and not detections:
        return 1.0, 1.0, 1.0
    if not cases or not detections:
        return 0.0, 0.0, 1.0
    recall = sum((_brute_share(c, detections) for c in cases), Fraction(0)) / len(cases)
    precision = sum((_brute_share(d, cases) for d in detections), Fraction(0)) / len(detections)
    counts = [sum(1 for d in detections if detects(c, d)) for c in cases]
    detected = [n for n in counts if n]
    return float(recall), float(precision), (sum(detected) / len(detected)) if detected else 1.0


annotations = st.builds(
    Annotation,
    st.sampled_from(["s1", "s2"]),
    st.integers(0, 60),
    st.integers(1, 40),
    st.sampled_from(["r1", "r2"]),
    st.integers(0, 60),
    st.integers(1, 40),
)


@settings(max_examples=150, deadline=None)
@given(st.lists(annotations, max_size=5), st.lists(annotations, max_size=6))
def test_matches_brute_force_definition(cases: list[Annotation], detections: list[Annotation]) -> None:
    result = evaluate(cases, detections)
    recall, precision, gran = _brute(cases, detections)
    assert result.recall == pytest.approx(recall, abs=1e-12)
    assert result.precision == pytest.approx(precision, abs=1e-12)
    assert result.granularity == pytest.approx(gran, abs=1e-12)
    assert result.plagdet == pytest.approx(plagdet_score(recall, precision, gran), abs=1e-12)


# -- merging adjacent detections (PAN post-processing) ----------------------------------------------


def test_merge_adjacent_turns_two_halves_into_one_detection() -> None:
    halves = [ann("susp1", 200, 100, "src1", 1100, 100), ann("susp1", 100, 98, "src1", 1000, 99)]
    merged = merge_adjacent(halves, max_gap=5)
    assert merged == [ann("susp1", 100, 200, "src1", 1000, 200)]
    assert evaluate([CASE], merged).plagdet == 1.0
    assert len(merge_adjacent(halves, max_gap=1)) == 2  # the 2-char suspicious gap is too wide


def test_merge_adjacent_keeps_pairs_and_distant_detections_apart() -> None:
    other_source = ann("susp1", 300, 50, "src2", 1200, 50)
    far_in_source = ann("susp1", 300, 50, "src1", 5000, 50)
    merged = merge_adjacent([CASE, other_source, far_in_source], max_gap=10)
    assert sorted(merged) == sorted([CASE, other_source, far_in_source])


# -- document-level measures, against their definitions computed the slow way ----------------------


def _pairwise_auc(labels: list[bool], scores: list[float]) -> float:
    pos = [s for s, y in zip(scores, labels, strict=True) if y]
    neg = [s for s, y in zip(scores, labels, strict=True) if not y]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def _f1_at(labels: list[bool], scores: list[float], threshold: float) -> float:
    predicted = [s >= threshold for s in scores]
    tp = sum(1 for p, y in zip(predicted, labels, strict=True) if p and y)
    fp = sum(1 for p, y in zip(predicted, labels, strict=True) if p and not y)
    fn = sum(1 for p, y in zip(predicted, labels, strict=True) if not p and y)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def test_roc_auc_and_best_f1_match_their_definitions() -> None:
    labels = [True, False, True, True, False, False, True, False]
    scores = [0.9, 0.8, 0.8, 0.3, 0.3, 0.1, 0.0, 0.0]
    assert roc_auc(labels, scores) == pytest.approx(_pairwise_auc(labels, scores), abs=1e-12)
    assert roc_auc(labels, scores) == pytest.approx(0.65625, abs=1e-12)  # 10.5 of 16 pairs, by hand
    best = best_f1(labels, scores)
    assert best is not None
    assert best.f1 == pytest.approx(max(_f1_at(labels, scores, t) for t in set(scores)), abs=1e-12)
    assert _f1_at(labels, scores, best.threshold) == pytest.approx(best.f1, abs=1e-12)
    # >= 0.3 (P 3/5, R 3/4) and >= 0.0 (P 1/2, R 1) both reach F1 2/3: the higher threshold wins.
    assert (best.threshold, best.f1) == (0.3, pytest.approx(2 / 3))
    assert roc_auc([True, True], [0.1, 0.2]) is None
    assert best_f1([False], [0.3]) is None


@settings(max_examples=100, deadline=None)
@given(
    st.lists(st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.5, 0.7, 1.0])), min_size=1, max_size=12)
)
def test_roc_auc_matches_pairwise_definition(rows: list[tuple[bool, float]]) -> None:
    labels, scores = [y for y, _ in rows], [s for _, s in rows]
    expected = _pairwise_auc(labels, scores) if 0 < sum(labels) < len(labels) else None
    assert roc_auc(labels, scores) == (pytest.approx(expected, abs=1e-12) if expected is not None else None)


def test_auc_loss_splits_the_loss_by_kind_of_negative() -> None:
    labels = [True, False, True, True, False, False, True, False]
    scores = [0.9, 0.8, 0.8, 0.3, 0.3, 0.1, 0.0, 0.0]
    detected = [True, True, True, True, False, False, False, False]
    loss = auc_loss(labels, scores, detected)
    assert loss is not None
    # By hand, of 16 pairs: the detected negative at 0.8 outranks 0.3 and 0.0, ties 0.8 (2.5); the
    # context-only ones at 0.3 and 0.1 cost 1.5 and 1; the one at 0.0 ties the positive at 0.0 (0.5).
    assert loss.negatives_detected == pytest.approx(2.5 / 16)
    assert loss.negatives_context_only == pytest.approx(2.5 / 16)
    assert loss.negatives_tied_at_zero == pytest.approx(0.5 / 16)
    assert loss.loss == pytest.approx(1 - 0.65625)
    assert loss.costs == (None, pytest.approx(2.5 / 16), None, None, 1.5 / 16, 1 / 16, None, 0.5 / 16)
    assert auc_loss([True], [0.5], [False]) is None
    with pytest.raises(ValueError, match="detection flags"):
        auc_loss([True, False], [0.1, 0.2], [False])


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from([0.0, 0.1, 0.5, 1.0]), st.booleans()),
        min_size=2,
        max_size=12,
    )
)
def test_auc_loss_adds_up_to_one_minus_the_auc(rows: list[tuple[bool, float, bool]]) -> None:
    labels, scores, detected = [y for y, _, _ in rows], [s for _, s, _ in rows], [d for _, _, d in rows]
    auc, loss = roc_auc(labels, scores), auc_loss(labels, scores, detected)
    assert (auc is None) == (loss is None)
    if auc is not None and loss is not None:
        assert loss.loss == pytest.approx(1 - auc, abs=1e-12)
        parts = loss.negatives_tied_at_zero + loss.negatives_detected + loss.negatives_context_only
        assert parts == pytest.approx(loss.loss, abs=1e-12)
