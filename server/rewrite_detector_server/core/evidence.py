"""Combine paragraph-level alignment (embeddings) with sentence-level passages (lexical) into the
evidence a match reports: one entry per aligned pair, with tight spans and the extent it accounts for.

- A paragraph group that a passage overlaps reports the passage's spans (sentence-precise).
- Other counted groups report their sentence-refined spans (refine.py).
- A passage that no counted group covers becomes a pair of its own: the reuse of a few sentences inside
  longer paragraphs, which paragraph embeddings dilute. A WEAK group it overlaps is replaced.
- A passage too short to report becomes a WEAK pair where no other pair reports its text.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from rewrite_detector_server.core.align import AlignSide, GroupPair
from rewrite_detector_server.core.features import anchor_overlap, lexical_overlap, profile, verbatim_ratio
from rewrite_detector_server.core.passages import Passage
from rewrite_detector_server.core.refine import RefineParams, refine_spans
from rewrite_detector_server.core.segment import normalize_inline
from rewrite_detector_server.core.spans import Span, span_length, union_length
from rewrite_detector_server.core.types import PairKind, Paragraph


@dataclass(frozen=True, slots=True)
class EvidenceSide:
    """One article as the evidence builder needs it."""

    text: str
    content: Sequence[Paragraph]
    side: AlignSide

    @classmethod
    def of(cls, text: str, content: Sequence[Paragraph], vectors: np.ndarray) -> EvidenceSide:
        side = AlignSide(
            vectors=vectors, texts=[p.text for p in content], lengths=[len(p.text) for p in content]
        )
        return cls(text, content, side)


@dataclass(frozen=True, slots=True)
class Evidence:
    # Positions into each side's content paragraphs.
    submitted: tuple[int, ...]
    source: tuple[int, ...]
    # Reported spans (tight) and the extents counted for coverage, in original-text offsets.
    submitted_span: Span
    source_span: Span
    submitted_extent: Span
    source_extent: Span
    similarity: float
    lexical_overlap: float
    anchor_overlap: float
    kind: PairKind
    in_order: bool
    from_passage: bool = False
    # A passage (sentence-level lexical alignment) confirms this pair.
    lexically_supported: bool = False

    @property
    def counted(self) -> bool:
        return self.kind is not PairKind.WEAK


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _extent(content: Sequence[Paragraph], positions: Sequence[int]) -> Span:
    return content[positions[0]].start, content[positions[-1]].end


def _hull(spans: Sequence[Span]) -> Span:
    return min(s[0] for s in spans), max(s[1] for s in spans)


def _clip(span: Span, within: Span) -> Span:
    return max(span[0], within[0]), min(span[1], within[1])


def _passage_kind(ratio: float, lexical: float, similarity: float) -> PairKind:
    # Passages are validated sentence-level evidence; the kind says how literal they are. A remainder of
    # a passage (its part outside the paragraph pairs) can be a single loosely matching sentence: with
    # neither wording nor meaning close, it is kept for context only.
    if ratio >= 0.95:
        return PairKind.VERBATIM
    if ratio >= 0.85 or lexical >= 0.6:
        return PairKind.NEAR_VERBATIM
    if lexical < 0.25 and similarity < 0.75:
        return PairKind.WEAK
    return PairKind.PARAPHRASE


def _group_similarity(side: AlignSide, positions: Sequence[int]) -> np.ndarray:
    weights = np.asarray([max(1, side.lengths[p]) for p in positions], dtype=np.float32)
    mean = (side.vectors[list(positions)] * weights[:, None]).sum(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def _paragraphs_touching(content: Sequence[Paragraph], span: Span) -> tuple[int, ...]:
    return tuple(k for k, p in enumerate(content) if _overlaps((p.start, p.end), span))


def _from_spans(
    sub_span: Span, src_span: Span, submitted: EvidenceSide, source: EvidenceSide
) -> Evidence | None:
    sub_positions = _paragraphs_touching(submitted.content, sub_span)
    src_positions = _paragraphs_touching(source.content, src_span)
    if not sub_positions or not src_positions:
        return None
    left = profile(normalize_inline(submitted.text[slice(*sub_span)]))
    right = profile(normalize_inline(source.text[slice(*src_span)]))
    similarity = float(
        np.clip(
            _group_similarity(submitted.side, sub_positions) @ _group_similarity(source.side, src_positions),
            0.0,
            1.0,
        )
    )
    lexical = lexical_overlap(left, right)
    return Evidence(
        submitted=sub_positions,
        source=src_positions,
        submitted_span=sub_span,
        source_span=src_span,
        submitted_extent=sub_span,
        source_extent=src_span,
        similarity=similarity,
        lexical_overlap=lexical,
        anchor_overlap=anchor_overlap(left, right),
        kind=_passage_kind(verbatim_ratio(left, right), lexical, similarity),
        in_order=True,
        from_passage=True,
    )


def _remainders(
    passage: Passage, claimed: Sequence[tuple[Span, Span]], min_chars: int
) -> list[tuple[Span, Span]]:
    """The parts of a passage before and after the paragraph groups that reported parts of it."""
    if not claimed:
        return [(passage.submitted_span, passage.source_span)]
    sub_start, sub_end = passage.submitted_span
    src_start, src_end = passage.source_span
    first_sub = min(c[0][0] for c in claimed)
    last_sub = max(c[0][1] for c in claimed)
    first_src = min(c[1][0] for c in claimed)
    last_src = max(c[1][1] for c in claimed)
    parts = [((sub_start, first_sub), (src_start, first_src)), ((last_sub, sub_end), (last_src, src_end))]
    return [(sub, src) for sub, src in parts if sub[1] - sub[0] >= min_chars and src[1] - src[0] >= min_chars]


def _demote_unsupported(
    evidence: list[Evidence], min_run: int, min_chars_alone: int, content_chars: tuple[int, int]
) -> list[Evidence]:
    """Embedding-only paraphrase pairs, and pairs shorter than `min_chars_alone` on either side, count
    only inside an ordered run of aligned pairs (short pairs also when the counted pairs make up at
    least half of both articles' content: two copies of a few one-line paragraphs are a copy, not a
    shared heading).

    A paraphrase that shares no passage-level wording with its source is credible when its neighbours
    are aligned in order too (a spun article rewrites every paragraph in turn); an isolated one is most
    often a same-topic coincidence, so it is kept for context as WEAK. So is an isolated heading or
    one-line label: two articles on one topic share titles like "Chain Link Fence" or "5 External
    links" whatever their wording. On pan13-train they were the only detection in 7 of the 20 clean
    pairs that had one; PAN's cases are all longer.
    """
    in_run: set[int] = set()
    ordered = sorted(
        (k for k, e in enumerate(evidence) if e.counted and e.in_order), key=lambda k: evidence[k].submitted
    )
    run: list[int] = []
    for k in ordered:
        if run:
            prev = evidence[run[-1]]
            cur = evidence[k]
            adjacent = cur.submitted[0] - prev.submitted[-1] <= 2 and 0 < cur.source[0] - prev.source[-1] <= 3
            if not adjacent:
                if len(run) >= min_run:
                    in_run.update(run)
                run = []
        run.append(k)
    if len(run) >= min_run:
        in_run.update(run)
    counted = [e for e in evidence if e.counted]
    mostly_copied = all(
        2 * union_length(spans) >= total
        for spans, total in (
            ([e.submitted_extent for e in counted], content_chars[0]),
            ([e.source_extent for e in counted], content_chars[1]),
        )
    )
    return [
        dataclasses.replace(e, kind=PairKind.WEAK)
        if k not in in_run
        and e.counted
        and (
            (e.kind is PairKind.PARAPHRASE and not e.lexically_supported)
            or (
                min(span_length(e.submitted_span), span_length(e.source_span)) < min_chars_alone
                and not mostly_copied
            )
        )
        else e
        for k, e in enumerate(evidence)
    ]


def build_evidence(
    groups: Sequence[GroupPair],
    passages: Sequence[Passage],
    submitted: EvidenceSide,
    source: EvidenceSide,
    refine: RefineParams,
    min_remainder_chars: int = 60,
    min_run: int = 3,
    min_chars_alone: int = 60,
    short_passages: Sequence[Passage] = (),
) -> list[Evidence]:
    evidence: list[Evidence] = []
    claimed: dict[int, list[tuple[Span, Span]]] = {k: [] for k in range(len(passages))}

    def overlapping(group: GroupPair) -> list[int]:
        sub_extent = _extent(submitted.content, group.submitted)
        src_extent = _extent(source.content, group.source)
        return [
            k
            for k, p in enumerate(passages)
            if _overlaps(p.submitted_span, sub_extent) and _overlaps(p.source_span, src_extent)
        ]

    # A passage that several counted paragraph pairs fall into (a rewritten article, paragraph after
    # paragraph) is reported through those pairs, which say which paragraph came from where. A passage
    # that at most one pair touches (a copied stretch inside a long paragraph, a summary of many source
    # paragraphs) is reported whole: cutting it to one paragraph pair would lose most of it.
    pairs_per_passage = [0] * len(passages)
    for group in groups:
        if group.kind is not PairKind.WEAK:
            for k in overlapping(group):
                pairs_per_passage[k] += 1
    whole = {k for k, count in enumerate(pairs_per_passage) if count <= 1}

    for group in groups:
        sub_extent = _extent(submitted.content, group.submitted)
        src_extent = _extent(source.content, group.source)
        inside = overlapping(group)
        if inside and (group.kind is PairKind.WEAK or any(k in whole for k in inside)):
            continue  # the passage(s) report this reuse better
        if inside:
            # A passage can run across many paragraphs (a whole rewritten article is one passage):
            # within this group it only decides where, inside the group's paragraphs, reuse starts/ends.
            sub_span = _clip(_hull([passages[k].submitted_span for k in inside]), sub_extent)
            src_span = _clip(_hull([passages[k].source_span for k in inside]), src_extent)
            for k in inside:
                claimed[k].append((sub_span, src_span))
        else:
            sub_span, src_span = refine_spans(
                submitted.text,
                [submitted.content[i] for i in group.submitted],
                source.text,
                [source.content[j] for j in group.source],
                refine,
            )
        evidence.append(
            Evidence(
                submitted=group.submitted,
                source=group.source,
                submitted_span=sub_span,
                source_span=src_span,
                submitted_extent=_hull([sub_extent, sub_span]),
                source_extent=_hull([src_extent, src_span]),
                similarity=group.similarity,
                lexical_overlap=group.lexical_overlap,
                anchor_overlap=group.anchor_overlap,
                kind=group.kind,
                in_order=group.in_order,
                lexically_supported=bool(inside),
            )
        )
    content_chars = (sum(len(p.text) for p in submitted.content), sum(len(p.text) for p in source.content))
    evidence = _demote_unsupported(evidence, min_run, min_chars_alone, content_chars)
    counted = [e for e in evidence if e.counted]
    for k, passage in enumerate(passages):
        if k in whole:
            extra = _from_spans(passage.submitted_span, passage.source_span, submitted, source)
            if extra is not None:
                evidence.append(extra)
            continue
        for sub_span, src_span in _remainders(passage, claimed[k], min_remainder_chars):
            if any(_overlaps(sub_span, e.submitted_span) for e in counted):
                continue  # a counted pair with another source paragraph already reports this text
            extra = _from_spans(sub_span, src_span, submitted, source)
            if extra is not None:
                evidence.append(extra)
    # Passages too short to report are context: WEAK pairs where nothing else reports that text.
    for passage in short_passages:
        if any(_overlaps(passage.submitted_span, e.submitted_span) for e in evidence):
            continue
        extra = _from_spans(passage.submitted_span, passage.source_span, submitted, source)
        if extra is not None:
            evidence.append(dataclasses.replace(extra, kind=PairKind.WEAK))
    evidence.sort(key=lambda e: e.submitted_span)
    return evidence
