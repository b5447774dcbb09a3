"""Paragraph alignment between a submitted article and one source. Pure numpy + text features.

The alignment is built in three passes:
1. a monotone 1:1 chain (weighted LCS dynamic programme over pair evidence, gaps free on both sides):
   rewrites keep the source's order, same-topic articles do not, so order is evidence;
2. out-of-order pairs are added only on strong evidence (near-verbatim or very high similarity), so a
   moved paragraph is still found but a topical coincidence is not;
3. n:m growth: an unaligned paragraph next to an aligned group, whose best counterpart lies in that
   group, joins it (a split or merged paragraph).
Each group is then scored on its concatenated text and length-weighted mean embedding.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from rewrite_detector_server.core.features import (
    TextProfile,
    anchor_overlap,
    lexical_overlap,
    profile,
    verbatim_ratio,
)
from rewrite_detector_server.core.types import PairKind


@dataclass(frozen=True, slots=True)
class AlignmentParams:
    """Thresholds of the alignment; defaults are overridden by the fitted calibration."""

    # Below this cosine a pair is never considered, whatever its lexical evidence.
    min_similarity: float = 0.5
    # Pair evidence = similarity + lexical_weight * lexical + anchor_weight * anchors; a chain link must
    # exceed chain_threshold.
    lexical_weight: float = 0.5
    anchor_weight: float = 0.1
    chain_threshold: float = 0.78
    # Out-of-order pairs need this much similarity or near-verbatim wording.
    reorder_similarity: float = 0.9
    reorder_lexical: float = 0.7
    # A neighbour joins a group (split/merge) at this similarity to its best counterpart in the group.
    merge_similarity: float = 0.6
    # Kinds.
    verbatim_ratio: float = 0.95
    near_verbatim_ratio: float = 0.85
    near_verbatim_lexical: float = 0.6
    near_verbatim_similarity: float = 0.8
    paraphrase_similarity: float = 0.75
    paraphrase_min_similarity: float = 0.65
    paraphrase_lexical: float = 0.4


@dataclass(frozen=True, slots=True)
class AlignSide:
    """One side of an alignment: content paragraphs as embeddings, texts and lengths."""

    vectors: np.ndarray
    texts: Sequence[str]
    lengths: Sequence[int]

    def __post_init__(self) -> None:
        if not (len(self.vectors) == len(self.texts) == len(self.lengths)):
            raise ValueError("vectors, texts and lengths must have one entry per paragraph")


@dataclass(frozen=True, slots=True)
class GroupPair:
    """An aligned group: positions into each AlignSide (not paragraph indexes of the article)."""

    submitted: tuple[int, ...]
    source: tuple[int, ...]
    similarity: float
    lexical_overlap: float
    anchor_overlap: float
    verbatim_ratio: float
    kind: PairKind
    in_order: bool


def similarity_matrix(submitted: np.ndarray, source: np.ndarray) -> np.ndarray:
    if len(submitted) == 0 or len(source) == 0:
        return np.zeros((len(submitted), len(source)), dtype=np.float32)
    return np.clip(submitted @ source.T, 0.0, 1.0)


def _monotone_chain(gain: np.ndarray) -> list[tuple[int, int]]:
    """Max-weight monotone 1:1 matching over positive gains (gaps cost nothing)."""
    n, m = gain.shape
    # Python floats rather than numpy scalars: the recurrence is sequential in both directions, so it
    # cannot be vectorised, and element access on lists is several times faster. The values are the
    # same doubles (float32 gains widen exactly; float64 sums round as numpy's would).
    gains = gain.tolist()
    score = [[0.0] * (m + 1) for _ in range(n + 1)]
    for i in range(1, n + 1):
        row_gain = gains[i - 1]
        prev = score[i - 1]
        cur = score[i]
        for j in range(1, m + 1):
            best = prev[j] if prev[j] >= cur[j - 1] else cur[j - 1]
            g = row_gain[j - 1]
            if g > 0.0 and prev[j - 1] + g > best:
                best = prev[j - 1] + g
            cur[j] = best
    chain: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        if score[i][j] == score[i - 1][j]:
            i -= 1
        elif score[i][j] == score[i][j - 1]:
            j -= 1
        else:
            chain.append((i - 1, j - 1))
            i -= 1
            j -= 1
    chain.reverse()
    return chain


def _classify(
    similarity: float, lexical: float, anchors: float, ratio: float, params: AlignmentParams
) -> PairKind:
    if ratio >= params.verbatim_ratio:
        return PairKind.VERBATIM
    if ratio >= params.near_verbatim_ratio or (
        lexical >= params.near_verbatim_lexical and similarity >= params.near_verbatim_similarity
    ):
        return PairKind.NEAR_VERBATIM
    if similarity >= params.paraphrase_similarity or (
        similarity >= params.paraphrase_min_similarity and lexical >= params.paraphrase_lexical
    ):
        return PairKind.PARAPHRASE
    return PairKind.WEAK


def _weighted_mean(vectors: np.ndarray, rows: Sequence[int], lengths: Sequence[int]) -> np.ndarray:
    weights = np.asarray([max(1, lengths[r]) for r in rows], dtype=np.float32)
    mean = (vectors[list(rows)] * weights[:, None]).sum(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def _group_similarity(
    sub: Sequence[int], src: Sequence[int], submitted: AlignSide, source: AlignSide
) -> float:
    left = _weighted_mean(submitted.vectors, sub, submitted.lengths)
    right = _weighted_mean(source.vectors, src, source.lengths)
    return float(np.clip(left @ right, 0.0, 1.0))


class _Profiles:
    """Text profiles of one side, computed on first use: most paragraphs of a source never reach the
    similarity floor, and profiling is the costliest step of an alignment."""

    __slots__ = ("_profiles", "_texts")

    def __init__(self, texts: Sequence[str]) -> None:
        self._texts = texts
        self._profiles: list[TextProfile | None] = [None] * len(texts)

    def __getitem__(self, position: int) -> TextProfile:
        found = self._profiles[position]
        if found is None:
            found = self._profiles[position] = profile(self._texts[position])
        return found


@dataclass(frozen=True, slots=True)
class _PairFeatures:
    """Lexical evidence of one paragraph pair, kept at full precision for reuse by the scoring step."""

    lexical: float
    anchors: float


def _grow_groups(
    groups: list[tuple[list[int], list[int]]],
    strong: list[tuple[list[int], list[int]]],
    sim: np.ndarray,
    submitted: AlignSide,
    source: AlignSide,
    params: AlignmentParams,
) -> None:
    """Attach unaligned neighbours whose best counterpart is inside the adjacent group (n:m).

    Only `strong` groups (not WEAK on their own) grow: averaging embeddings drifts towards the article's
    topic, so growing a weak seed would manufacture a paraphrase out of a same-topic paragraph.
    A neighbour joins only if the group's combined similarity does not drop: a split paragraph's halves
    together match their source better than either half alone; an unrelated neighbour dilutes it.
    """
    n, m = sim.shape
    used_sub = {i for sub, _ in groups for i in sub}
    used_src = {j for _, src in groups for j in src}
    # Best counterpart of every row and column, once (the loop below asks for them repeatedly).
    best_for_row = sim.argmax(axis=1).tolist()
    best_for_col = sim.argmax(axis=0).tolist()
    changed = True
    while changed:
        changed = False
        for sub, src in strong:
            # The group's own similarity is only needed once a neighbour qualifies, which is rare.
            current: float | None = None
            for i in (min(sub) - 1, max(sub) + 1):
                if not (0 <= i < n) or i in used_sub:
                    continue
                best = best_for_row[i]
                if best not in src or sim[i, best] < params.merge_similarity:
                    continue
                if current is None:
                    current = _group_similarity(sub, src, submitted, source)
                grown = _group_similarity([*sub, i], src, submitted, source)
                if grown >= current:
                    sub.append(i)
                    sub.sort()
                    used_sub.add(i)
                    current = grown
                    changed = True
            for j in (min(src) - 1, max(src) + 1):
                if not (0 <= j < m) or j in used_src:
                    continue
                best = best_for_col[j]
                if best not in sub or sim[best, j] < params.merge_similarity:
                    continue
                if current is None:
                    current = _group_similarity(sub, src, submitted, source)
                grown = _group_similarity(sub, [*src, j], submitted, source)
                if grown >= current:
                    src.append(j)
                    src.sort()
                    used_src.add(j)
                    current = grown
                    changed = True


def align(submitted: AlignSide, source: AlignSide, params: AlignmentParams | None = None) -> list[GroupPair]:
    """Align two articles' content paragraphs; returns groups sorted by submitted position."""
    params = params or AlignmentParams()
    n, m = len(submitted.texts), len(source.texts)
    if n == 0 or m == 0:
        return []
    sim = similarity_matrix(submitted.vectors, source.vectors)
    sub_profiles = _Profiles(submitted.texts)
    src_profiles = _Profiles(source.texts)

    lexical = np.zeros((n, m), dtype=np.float32)
    anchor = np.zeros((n, m), dtype=np.float32)
    above_floor = sim >= params.min_similarity
    rows, cols = np.nonzero(above_floor)
    features: dict[tuple[int, int], _PairFeatures] = {}
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        left, right = sub_profiles[i], src_profiles[j]
        features[i, j] = _PairFeatures(lexical_overlap(left, right), anchor_overlap(left, right))
    if features:
        # One fancy-indexed store per matrix (float64 -> float32 rounds exactly as item stores would).
        lexical[rows, cols] = [f.lexical for f in features.values()]
        anchor[rows, cols] = [f.anchors for f in features.values()]
    evidence = sim + params.lexical_weight * lexical + params.anchor_weight * anchor
    gain = np.where(above_floor, evidence - params.chain_threshold, 0.0)

    chain = _monotone_chain(gain)
    groups: list[tuple[list[int], list[int]]] = [([i], [j]) for i, j in chain]
    in_chain = {(i, j) for i, j in chain}

    used_sub = {i for i, _ in chain}
    best_evidence = evidence.argmax(axis=1).tolist()
    for i in range(n):
        if i in used_sub:
            continue
        j = best_evidence[i]
        if sim[i, j] >= params.reorder_similarity or (
            sim[i, j] >= params.min_similarity and lexical[i, j] >= params.reorder_lexical
        ):
            groups.append(([i], [j]))

    ratios: dict[tuple[int, int], float] = {}

    def pair_ratio(i: int, j: int) -> float:
        if (i, j) not in ratios:
            ratios[i, j] = verbatim_ratio(sub_profiles[i], src_profiles[j])
        return ratios[i, j]

    strong = [
        g
        for g in groups
        if _classify(
            float(sim[g[0][0], g[1][0]]),
            float(lexical[g[0][0], g[1][0]]),
            float(anchor[g[0][0], g[1][0]]),
            pair_ratio(g[0][0], g[1][0]),
            params,
        )
        is not PairKind.WEAK
    ]
    _grow_groups(groups, strong, sim, submitted, source, params)
    return [
        _score_group(
            sub, src, submitted, source, sub_profiles, src_profiles, params, in_chain, features, pair_ratio
        )
        for sub, src in sorted(groups, key=lambda g: g[0][0])
    ]


def _score_group(
    sub: list[int],
    src: list[int],
    submitted: AlignSide,
    source: AlignSide,
    sub_profiles: _Profiles,
    src_profiles: _Profiles,
    params: AlignmentParams,
    in_chain: set[tuple[int, int]],
    features: dict[tuple[int, int], _PairFeatures],
    pair_ratio: Callable[[int, int], float],
) -> GroupPair:
    if len(sub) == 1 and len(src) == 1:
        i, j = sub[0], src[0]
        similarity = float(np.clip(submitted.vectors[i] @ source.vectors[j], 0.0, 1.0))
        known = features.get((i, j))
        if known is None:  # a pair below the similarity floor (the chain never links those)
            known = _PairFeatures(
                lexical_overlap(sub_profiles[i], src_profiles[j]),
                anchor_overlap(sub_profiles[i], src_profiles[j]),
            )
        lexical, anchors, ratio = known.lexical, known.anchors, pair_ratio(i, j)
    else:
        left = profile(" ".join(submitted.texts[i] for i in sub))
        right = profile(" ".join(source.texts[j] for j in src))
        similarity = _group_similarity(sub, src, submitted, source)
        lexical = lexical_overlap(left, right)
        anchors = anchor_overlap(left, right)
        ratio = verbatim_ratio(left, right)
    in_order = any((i, j) in in_chain for i in sub for j in src)
    return GroupPair(
        submitted=tuple(sub),
        source=tuple(src),
        similarity=similarity,
        lexical_overlap=lexical,
        anchor_overlap=anchors,
        verbatim_ratio=ratio,
        kind=_classify(similarity, lexical, anchors, ratio, params),
        in_order=in_order,
    )
