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

from collections.abc import Sequence
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
    score = np.zeros((n + 1, m + 1), dtype=np.float64)
    for i in range(1, n + 1):
        row_gain = gain[i - 1]
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
        if score[i, j] == score[i - 1, j]:
            i -= 1
        elif score[i, j] == score[i, j - 1]:
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
    changed = True
    while changed:
        changed = False
        for sub, src in strong:
            current = _group_similarity(sub, src, submitted, source)
            for i in (min(sub) - 1, max(sub) + 1):
                if not (0 <= i < n) or i in used_sub:
                    continue
                best = int(np.argmax(sim[i]))
                if best not in src or sim[i, best] < params.merge_similarity:
                    continue
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
                best = int(np.argmax(sim[:, j]))
                if best not in sub or sim[best, j] < params.merge_similarity:
                    continue
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
    sub_profiles = [profile(t) for t in submitted.texts]
    src_profiles = [profile(t) for t in source.texts]

    lexical = np.zeros((n, m), dtype=np.float32)
    anchor = np.zeros((n, m), dtype=np.float32)
    candidates = np.argwhere(sim >= params.min_similarity)
    for i, j in candidates:
        lexical[i, j] = lexical_overlap(sub_profiles[i], src_profiles[j])
        anchor[i, j] = anchor_overlap(sub_profiles[i], src_profiles[j])
    evidence = sim + params.lexical_weight * lexical + params.anchor_weight * anchor
    gain = np.where(sim >= params.min_similarity, evidence - params.chain_threshold, 0.0)

    chain = _monotone_chain(gain)
    groups: list[tuple[list[int], list[int]]] = [([i], [j]) for i, j in chain]
    in_chain = {(i, j) for i, j in chain}

    used_sub = {i for i, _ in chain}
    for i in range(n):
        if i in used_sub:
            continue
        j = int(np.argmax(evidence[i]))
        if sim[i, j] >= params.reorder_similarity or (
            sim[i, j] >= params.min_similarity and lexical[i, j] >= params.reorder_lexical
        ):
            groups.append(([i], [j]))

    strong = [
        g
        for g in groups
        if _classify(
            float(sim[g[0][0], g[1][0]]),
            float(lexical[g[0][0], g[1][0]]),
            float(anchor[g[0][0], g[1][0]]),
            verbatim_ratio(sub_profiles[g[0][0]], src_profiles[g[1][0]]),
            params,
        )
        is not PairKind.WEAK
    ]
    _grow_groups(groups, strong, sim, submitted, source, params)
    return [
        _score_group(sub, src, submitted, source, sub_profiles, src_profiles, params, in_chain)
        for sub, src in sorted(groups, key=lambda g: g[0][0])
    ]


def _score_group(
    sub: list[int],
    src: list[int],
    submitted: AlignSide,
    source: AlignSide,
    sub_profiles: list[TextProfile],
    src_profiles: list[TextProfile],
    params: AlignmentParams,
    in_chain: set[tuple[int, int]],
) -> GroupPair:
    if len(sub) == 1 and len(src) == 1:
        left, right = sub_profiles[sub[0]], src_profiles[src[0]]
        similarity = float(np.clip(submitted.vectors[sub[0]] @ source.vectors[src[0]], 0.0, 1.0))
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
