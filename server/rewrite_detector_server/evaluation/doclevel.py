"""Document-level view: is this (suspicious, source) pair derived or not, judged by one score per pair.

Hand-written (a dozen lines each) because the server package must not depend on scikit-learn; the
unit tests check both against scikit-learn's roc_auc_score / f1_score.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

__all__ = ["AucLoss", "ThresholdF1", "auc_loss", "best_f1", "roc_auc"]


def roc_auc(labels: Sequence[bool], scores: Sequence[float]) -> float | None:
    """Area under the ROC curve = P(score of a random positive > score of a random negative), ties 1/2.

    Computed from average ranks (Mann-Whitney U). None when either class is empty (undefined).
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    positives = sum(1 for y in labels if y)
    negatives = len(labels) - positives
    if positives == 0 or negatives == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    rank_sum = 0.0
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        average_rank = (i + j) / 2 + 1  # 1-based ranks, ties share their mean rank
        rank_sum += average_rank * sum(1 for k in order[i : j + 1] if labels[k])
        i = j + 1
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


@dataclass(frozen=True, slots=True)
class ThresholdF1:
    f1: float
    threshold: float  # predict "derived" when score >= threshold
    precision: float
    recall: float


def best_f1(labels: Sequence[bool], scores: Sequence[float]) -> ThresholdF1 | None:
    """The threshold (among the observed scores) that maximises F1 of "score >= threshold => derived".

    Ties between thresholds go to the highest one (the most conservative). None without positives.
    """
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    positives = sum(1 for y in labels if y)
    if positives == 0:
        return None
    ranked = sorted(zip(scores, labels, strict=True), key=lambda item: item[0], reverse=True)
    best: ThresholdF1 | None = None
    best_exact = Fraction(-1)
    true_pos = predicted = 0
    for index, (score, label) in enumerate(ranked):
        predicted += 1
        true_pos += 1 if label else 0
        if index + 1 < len(ranked) and ranked[index + 1][0] == score:
            continue  # a threshold admits every pair with the same score
        # F1 = 2TP / (predicted + actual positives), exact, so equal F1s tie exactly.
        f1 = Fraction(2 * true_pos, predicted + positives)
        if f1 > best_exact:
            best_exact = f1
            best = ThresholdF1(float(f1), float(score), true_pos / predicted, true_pos / positives)
    return best


@dataclass(frozen=True, slots=True)
class AucLoss:
    """1 − ROC-AUC split by the negatives that cause it; the three parts add up to ``loss``.

    A negative's cost is the number of positives scored below it plus half of those tied with it, over
    positives × negatives: ``costs`` holds each negative's, in input order (None for positives).
    """

    loss: float
    negatives_tied_at_zero: float  # negatives at score 0: ties with the positives at 0
    negatives_detected: float  # negatives with a reported detection
    negatives_context_only: float  # negatives scored above 0 without one
    costs: tuple[float | None, ...]


def auc_loss(labels: Sequence[bool], scores: Sequence[float], detected: Sequence[bool]) -> AucLoss | None:
    """Where `roc_auc(labels, scores)` loses, by kind of negative. None when either class is empty."""
    if not len(labels) == len(scores) == len(detected):
        raise ValueError(f"{len(labels)} labels, {len(scores)} scores, {len(detected)} detection flags")
    positives = sorted(s for s, y in zip(scores, labels, strict=True) if y)
    negatives = len(labels) - len(positives)
    if not positives or negatives == 0:
        return None
    pairs = len(positives) * negatives
    costs: list[float | None] = []
    tied_at_zero = with_detection = context_only = 0.0
    for label, score, flagged in zip(labels, scores, detected, strict=True):
        if label:
            costs.append(None)
            continue
        below = bisect.bisect_left(positives, score)
        cost = (below + 0.5 * (bisect.bisect_right(positives, score) - below)) / pairs
        costs.append(cost)
        if flagged:
            with_detection += cost
        elif score == 0.0:
            tied_at_zero += cost
        else:
            context_only += cost
    return AucLoss(
        tied_at_zero + with_detection + context_only, tied_at_zero, with_detection, context_only, tuple(costs)
    )
