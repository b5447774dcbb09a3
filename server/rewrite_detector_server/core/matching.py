"""One submitted article against one source: alignment, passages, evidence, score, reused stretches.

A pure function of its job (texts, paragraphs, vectors, parameters), so it runs in the serving process or
in a worker process alike (server/match_pool.py): a Check's per-source work is most of its Python, and
in one process the GIL makes that work take turns however many cores there are.
No model, no storage, no gRPC.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Protocol

from rewrite_detector_server.core.align import AlignmentParams, align
from rewrite_detector_server.core.dates import is_newer
from rewrite_detector_server.core.evidence import Evidence, EvidenceSide, build_evidence
from rewrite_detector_server.core.passages import PassageParams, find_passages_and_short
from rewrite_detector_server.core.refine import RefineParams
from rewrite_detector_server.core.scoring import SourceScore, VerdictParams, score_source
from rewrite_detector_server.core.segment import normalize_inline
from rewrite_detector_server.core.stretches import ReusedStretch, StretchParams, reused_stretches
from rewrite_detector_server.core.types import PairKind, Paragraph, Verdict


@dataclass(frozen=True, slots=True)
class AlignedPairResult:
    submitted_paragraphs: tuple[int, ...]
    source_paragraphs: tuple[int, ...]
    submitted_span: tuple[int, int]
    source_span: tuple[int, int]
    similarity: float
    lexical_overlap: float
    anchor_overlap: float
    kind: PairKind
    submitted_text: str
    source_text: str

    @property
    def divergence(self) -> float:
        return 1.0 - self.similarity


@dataclass(frozen=True, slots=True)
class SourceMatchResult:
    source_id: str
    title: str
    url: str
    published_at: str
    scores: SourceScore
    pairs: tuple[AlignedPairResult, ...]
    source_is_newer: bool = False
    # The non-WEAK pairs, adjacent ones merged: one entry per reuse (core/stretches.py).
    stretches: tuple[ReusedStretch, ...] = ()

    @property
    def verdict(self) -> Verdict:
        return self.scores.verdict

    @property
    def score(self) -> float:
        return self.scores.score


@dataclass(frozen=True, slots=True)
class SourceInfo:
    id: str = ""
    title: str = ""
    url: str = ""
    published_at: str = ""


@dataclass(frozen=True, slots=True)
class MatchParams:
    alignment: AlignmentParams
    passages: PassageParams
    refine: RefineParams
    verdict: VerdictParams
    stretches: StretchParams


@dataclass(frozen=True, slots=True)
class MatchJob:
    """Everything one submitted-article-against-one-source match needs (picklable as a whole)."""

    source: SourceInfo
    submitted_side: EvidenceSide
    source_side: EvidenceSide
    min_similarity: float
    submitted_published_at: str
    params: MatchParams


class MatchRunner(Protocol):
    """Runs a Check's match jobs; results in the order of the jobs."""

    # Worker processes building the jobs (0: the serving process builds them all).
    workers: int

    def request(self) -> AbstractContextManager[None]:
        """Held for the whole of a request, so the runner knows how many are in flight."""
        ...

    def run(self, jobs: Sequence[MatchJob]) -> list[SourceMatchResult]: ...

    def close(self) -> None: ...


class InProcessMatchRunner:
    workers = 0

    def request(self) -> AbstractContextManager[None]:
        return nullcontext()

    def run(self, jobs: Sequence[MatchJob]) -> list[SourceMatchResult]:
        return [build_match(job) for job in jobs]

    def close(self) -> None:
        pass


def build_match(job: MatchJob) -> SourceMatchResult:
    params, submitted, source = job.params, job.submitted_side, job.source_side
    groups = align(submitted.side, source.side, params.alignment)
    passages, short_passages = find_passages_and_short(
        submitted.text, submitted.content, source.text, source.content, params.passages
    )
    evidence = build_evidence(
        groups, passages, submitted, source, params.refine, short_passages=short_passages
    )
    if job.min_similarity > 0.0:
        evidence = [e for e in evidence if e.similarity >= job.min_similarity]
    scores = score_source(
        evidence, _content_chars(submitted.content), _content_chars(source.content), params.verdict
    )
    pairs = tuple(_pair_result(e, submitted, source) for e in evidence)
    counted = [(p.submitted_span, p.source_span) for e, p in zip(evidence, pairs, strict=True) if e.counted]
    info = job.source
    return SourceMatchResult(
        source_id=info.id,
        title=info.title,
        url=info.url,
        published_at=info.published_at,
        scores=scores,
        pairs=pairs,
        source_is_newer=is_newer(info.published_at, job.submitted_published_at),
        stretches=reused_stretches(
            counted, params.stretches.max_gap_chars, params.stretches.source_skip_chars
        ),
    )


def _pair_result(evidence: Evidence, submitted: EvidenceSide, source: EvidenceSide) -> AlignedPairResult:
    return AlignedPairResult(
        submitted_paragraphs=tuple(submitted.content[i].index for i in evidence.submitted),
        source_paragraphs=tuple(source.content[j].index for j in evidence.source),
        submitted_span=evidence.submitted_span,
        source_span=evidence.source_span,
        similarity=evidence.similarity,
        lexical_overlap=evidence.lexical_overlap,
        anchor_overlap=evidence.anchor_overlap,
        kind=evidence.kind,
        submitted_text=normalize_inline(submitted.text[slice(*evidence.submitted_span)]),
        source_text=normalize_inline(source.text[slice(*evidence.source_span)]),
    )


def _content_chars(content: Sequence[Paragraph]) -> int:
    return sum(p.end - p.start for p in content)
