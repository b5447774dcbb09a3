"""The detection core: index articles, check a submission against the index, compare two texts.

Knows nothing about gRPC: takes and returns domain types, raises domain errors (errors.py).
"""

from __future__ import annotations

import hashlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from rewrite_detector_models.embedder import Embedder
from rewrite_detector_server.core.align import AlignmentParams, AlignSide, GroupPair, align
from rewrite_detector_server.core.refine import RefineParams, refine_spans
from rewrite_detector_server.core.scoring import SourceScore, VerdictParams, score_source
from rewrite_detector_server.core.segment import segment
from rewrite_detector_server.core.types import (
    ArticleInput,
    ArticleRecord,
    PairKind,
    Paragraph,
    Segmented,
    Verdict,
)
from rewrite_detector_server.errors import InvalidInputError, NotFoundError, TooLargeError
from rewrite_detector_server.storage import Storage
from rewrite_detector_server.storage.store import text_hash

logger = logging.getLogger(__name__)

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
MAX_ID_LENGTH = 256


@dataclass(frozen=True, slots=True)
class DetectorLimits:
    max_text_bytes: int = 2 * 1024 * 1024
    max_paragraphs: int = 20_000
    max_sources: int = 100
    max_source_ids: int = 1000
    default_max_sources: int = 5
    max_page_size: int = 1000
    default_page_size: int = 100


@dataclass(frozen=True, slots=True)
class RetrievalParams:
    # Neighbours fetched per submitted paragraph.
    top_k: int = 10
    # A neighbour votes for its article only above this cosine.
    vote_similarity: float = 0.5
    # How many voted-for articles get a full alignment.
    candidate_sources: int = 10


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

    @property
    def verdict(self) -> Verdict:
        return self.scores.verdict

    @property
    def score(self) -> float:
        return self.scores.score


@dataclass(frozen=True, slots=True)
class CheckResult:
    verdict: Verdict
    score: float
    matches: tuple[SourceMatchResult, ...]
    submitted: Segmented
    model: str
    timing_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class CompareResult:
    match: SourceMatchResult
    submitted: Segmented
    source: Segmented
    model: str
    timing_ms: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    id: str
    paragraph_count: int
    created: bool
    unchanged: bool


@dataclass(frozen=True, slots=True)
class ArticleDetails:
    article: ArticleInput
    record: ArticleRecord
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True, slots=True)
class Stats:
    article_count: int
    paragraph_count: int
    vector_count: int
    model: str
    dimension: int
    index_type: str


def validate_id(article_id: str, what: str = "article id") -> str:
    if not article_id:
        raise InvalidInputError(f"{what} is missing: give a non-empty id (1-{MAX_ID_LENGTH} characters)")
    if len(article_id) > MAX_ID_LENGTH:
        raise InvalidInputError(
            f"{what} is {len(article_id)} characters long; use at most {MAX_ID_LENGTH} characters"
        )
    if _CONTROL_CHARACTERS.search(article_id) or article_id != article_id.strip():
        raise InvalidInputError(
            f"{what} {article_id!r} has control characters or surrounding whitespace; remove them"
        )
    return article_id


def _content_hash(article: ArticleInput) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for part in (article.text, article.title, article.url, article.published_at):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\x00")
    for key in sorted(article.metadata):
        digest.update(f"{key}\x00{article.metadata[key]}\x00".encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


class Timer:
    """Accumulates named phase durations in milliseconds."""

    def __init__(self) -> None:
        self.start = time.perf_counter()
        self.phases: dict[str, float] = {}
        self._mark = self.start

    def lap(self, phase: str) -> None:
        now = time.perf_counter()
        self.phases[phase] = self.phases.get(phase, 0.0) + (now - self._mark) * 1000.0
        self._mark = now

    def done(self) -> dict[str, float]:
        self.phases["total"] = (time.perf_counter() - self.start) * 1000.0
        return self.phases


class Detector:
    def __init__(
        self,
        embedder: Embedder,
        storage: Storage,
        *,
        alignment: AlignmentParams | None = None,
        verdict: VerdictParams | None = None,
        retrieval: RetrievalParams | None = None,
        refine: RefineParams | None = None,
        limits: DetectorLimits | None = None,
        index_type: str = "flat",
    ) -> None:
        self.embedder = embedder
        self.storage = storage
        self.alignment = alignment or AlignmentParams()
        self.verdict_params = verdict or VerdictParams()
        self.retrieval = retrieval or RetrievalParams()
        self.refine = refine or RefineParams()
        self.limits = limits or DetectorLimits()
        self.index_type = index_type
        self._started = time.monotonic()

    def uptime_seconds(self) -> float:
        return time.monotonic() - self._started

    # -- input handling -------------------------------------------------------------------------------

    def _segment(self, text: str, what: str) -> Segmented:
        if not text or not text.strip():
            raise InvalidInputError(f"{what} is empty or whitespace only: send the article's text")
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > self.limits.max_text_bytes:
            raise TooLargeError(
                f"{what} is {size} bytes; the limit is {self.limits.max_text_bytes} bytes: "
                "split the text or raise the server's max text size"
            )
        segmented = segment(text)
        content = segmented.content_paragraphs
        if not content:
            raise InvalidInputError(
                f"{what} has no paragraphs of article text after segmentation (only markup, "
                "boilerplate or punctuation): send the article body"
            )
        if len(segmented.paragraphs) > self.limits.max_paragraphs:
            raise TooLargeError(
                f"{what} has {len(segmented.paragraphs)} paragraphs; the limit is "
                f"{self.limits.max_paragraphs}: split it into several articles"
            )
        return segmented

    def _embed(self, paragraphs: Sequence[Paragraph]) -> np.ndarray:
        """Embeddings of paragraph texts, reusing any stored embedding of the same text."""
        texts = [p.text for p in paragraphs]
        hashes = [text_hash(t) for t in texts]
        cached = self.storage.cached_embeddings(hashes)
        missing = sorted({t for t, h in zip(texts, hashes, strict=True) if h not in cached})
        fresh = dict(zip(missing, self.embedder.embed_batch(missing), strict=True)) if missing else {}
        out = np.empty((len(texts), self.embedder.dimension), dtype=np.float32)
        for row, (t, h) in enumerate(zip(texts, hashes, strict=True)):
            out[row] = cached[h] if h in cached else fresh[t]
        return out

    # -- writes ---------------------------------------------------------------------------------------

    def index(self, article: ArticleInput) -> IndexOutcome:
        validate_id(article.id)
        segmented = self._segment(article.text, f"article {article.id!r}")
        title = article.title or segmented.title
        stored = ArticleInput(
            id=article.id,
            text=article.text,
            title=title,
            url=article.url,
            published_at=article.published_at,
            metadata=dict(article.metadata),
        )
        content_hash = _content_hash(stored)
        existing = self.storage.get(article.id)
        if existing is not None and existing.record.content_hash == content_hash:
            return IndexOutcome(article.id, existing.record.paragraph_count, created=False, unchanged=True)
        vectors = self._embed(segmented.content_paragraphs)
        outcome = self.storage.upsert(stored, content_hash, segmented.paragraphs, vectors)
        return IndexOutcome(
            id=article.id,
            paragraph_count=len(segmented.paragraphs),
            created=outcome.created,
            unchanged=outcome.unchanged,
        )

    def delete(self, article_id: str) -> int:
        validate_id(article_id)
        return len(self.storage.delete(article_id))

    # -- reads ----------------------------------------------------------------------------------------

    def get(self, article_id: str) -> ArticleDetails:
        validate_id(article_id)
        stored = self.storage.get(article_id)
        if stored is None:
            raise NotFoundError(f"no indexed article has id {article_id!r}")
        return ArticleDetails(stored.article, stored.record, tuple(self.storage.paragraphs(article_id)))

    def list(self, page_size: int = 0, page_token: str = "") -> tuple[list[ArticleRecord], str, int]:
        if page_size < 0 or page_size > self.limits.max_page_size:
            raise InvalidInputError(
                f"page_size {page_size} is out of range: use 1-{self.limits.max_page_size} (0 = default)"
            )
        size = page_size or self.limits.default_page_size
        after = _decode_page_token(page_token)
        records = self.storage.list_records(size + 1, after)
        next_token = _encode_page_token(records[size - 1].id) if len(records) > size else ""
        return records[:size], next_token, self.storage.count_articles()

    def stats(self) -> Stats:
        return Stats(
            article_count=self.storage.count_articles(),
            paragraph_count=self.storage.count_paragraphs(),
            vector_count=self.storage.count_vectors(),
            model=self.embedder.name,
            dimension=self.embedder.dimension,
            index_type=self.index_type,
        )

    # -- detection ------------------------------------------------------------------------------------

    def check(
        self,
        text: str,
        *,
        source_ids: Sequence[str] = (),
        max_sources: int = 0,
        min_similarity: float = 0.0,
        published_at: str = "",
    ) -> CheckResult:
        if max_sources < 0 or max_sources > self.limits.max_sources:
            raise InvalidInputError(
                f"max_sources {max_sources} is out of range: use 1-{self.limits.max_sources} (0 = default)"
            )
        if not 0.0 <= min_similarity <= 1.0 or min_similarity != min_similarity:
            raise InvalidInputError(f"min_similarity {min_similarity} is out of range: use 0-1 (0 = default)")
        if len(source_ids) > self.limits.max_source_ids:
            raise InvalidInputError(
                f"{len(source_ids)} source ids given; restrict to at most {self.limits.max_source_ids}"
            )
        restricted = list(dict.fromkeys(validate_id(s, "source id") for s in source_ids))
        unknown = [s for s in restricted if self.storage.get(s) is None]
        if unknown:
            raise NotFoundError(f"source ids not indexed: {', '.join(repr(s) for s in unknown[:10])}")

        timer = Timer()
        submitted = self._segment(text, "submitted text")
        timer.lap("segment")
        content = submitted.content_paragraphs
        vectors = self._embed(content)
        timer.lap("embed")
        candidates = restricted or self._retrieve(vectors)
        timer.lap("search")
        prepared = _Prepared.of(text, content, vectors)
        matches = []
        for source_id in candidates:
            match = self._match_indexed(source_id, prepared, min_similarity, published_at)
            if match is not None:
                matches.append(match)
        timer.lap("align")
        matches.sort(key=lambda m: m.score, reverse=True)
        best_score = matches[0].score if matches else 0.0
        reported = [m for m in matches if m.verdict is not Verdict.ORIGINAL]
        reported = reported[: max_sources or self.limits.default_max_sources]
        verdict = reported[0].verdict if reported else Verdict.ORIGINAL
        return CheckResult(
            verdict=verdict,
            score=reported[0].score if reported else best_score,
            matches=tuple(reported),
            submitted=submitted,
            model=self.embedder.name,
            timing_ms=timer.done(),
        )

    def compare(self, submitted_text: str, source_text: str) -> CompareResult:
        timer = Timer()
        submitted = self._segment(submitted_text, "submitted text")
        source = self._segment(source_text, "source text")
        timer.lap("segment")
        sub_content, src_content = submitted.content_paragraphs, source.content_paragraphs
        vectors = self._embed([*sub_content, *src_content])
        timer.lap("embed")
        match = self._build_match(
            _SourceInfo(),
            _Prepared.of(submitted_text, sub_content, vectors[: len(sub_content)]),
            _Prepared.of(source_text, src_content, vectors[len(sub_content) :]),
            0.0,
            "",
        )
        timer.lap("align")
        return CompareResult(match, submitted, source, self.embedder.name, timer.done())

    def _retrieve(self, vectors: np.ndarray) -> list[str]:
        """Candidate sources: each submitted paragraph's neighbours vote for their article."""
        votes: dict[str, float] = defaultdict(float)
        for neighbours in self.storage.search(vectors, self.retrieval.top_k):
            best: dict[str, float] = {}
            for score, article_id, _ in neighbours:
                if score >= self.retrieval.vote_similarity and score > best.get(article_id, 0.0):
                    best[article_id] = score
            for article_id, score in best.items():
                votes[article_id] += score
        ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
        return [article_id for article_id, _ in ranked[: self.retrieval.candidate_sources]]

    def _match_indexed(
        self,
        source_id: str,
        submitted: _Prepared,
        min_similarity: float,
        published_at: str,
    ) -> SourceMatchResult | None:
        stored = self.storage.get(source_id)
        if stored is None:  # deleted between retrieval and alignment
            return None
        src_content, src_vectors = self.storage.content_vectors(source_id)
        if not src_content:
            return None
        article = stored.article
        return self._build_match(
            _SourceInfo(source_id, article.title, article.url, article.published_at),
            submitted,
            _Prepared.of(article.text, src_content, src_vectors),
            min_similarity,
            published_at,
        )

    def _build_match(
        self,
        info: _SourceInfo,
        submitted: _Prepared,
        source: _Prepared,
        min_similarity: float,
        submitted_published_at: str,
    ) -> SourceMatchResult:
        groups = align(submitted.side, source.side, self.alignment)
        if min_similarity > 0.0:
            groups = [g for g in groups if g.similarity >= min_similarity]
        scores = score_source(groups, submitted.side.lengths, source.side.lengths, self.verdict_params)
        pairs = tuple(_pair_result(g, submitted, source, self.refine) for g in groups)
        return SourceMatchResult(
            source_id=info.id,
            title=info.title,
            url=info.url,
            published_at=info.published_at,
            scores=scores,
            pairs=pairs,
            source_is_newer=_is_newer(info.published_at, submitted_published_at),
        )


@dataclass(frozen=True, slots=True)
class _SourceInfo:
    id: str = ""
    title: str = ""
    url: str = ""
    published_at: str = ""


@dataclass(frozen=True, slots=True)
class _Prepared:
    """One side ready for alignment: its original text, content paragraphs and their embeddings."""

    text: str
    content: Sequence[Paragraph]
    side: AlignSide

    @classmethod
    def of(cls, text: str, content: Sequence[Paragraph], vectors: np.ndarray) -> _Prepared:
        side = AlignSide(
            vectors=vectors, texts=[p.text for p in content], lengths=[len(p.text) for p in content]
        )
        return cls(text, content, side)


def _pair_result(
    group: GroupPair, submitted: _Prepared, source: _Prepared, refine: RefineParams
) -> AlignedPairResult:
    subs = [submitted.content[i] for i in group.submitted]
    srcs = [source.content[j] for j in group.source]
    submitted_span, source_span = refine_spans(submitted.text, subs, source.text, srcs, refine)
    return AlignedPairResult(
        submitted_paragraphs=tuple(p.index for p in subs),
        source_paragraphs=tuple(p.index for p in srcs),
        submitted_span=submitted_span,
        source_span=source_span,
        similarity=group.similarity,
        lexical_overlap=group.lexical_overlap,
        anchor_overlap=group.anchor_overlap,
        kind=group.kind,
        submitted_text=" ".join(p.text for p in subs),
        source_text=" ".join(p.text for p in srcs),
    )


def _is_newer(source_published_at: str, submitted_published_at: str) -> bool:
    """ISO 8601 strings of the same precision compare correctly as text; compare on the common prefix."""
    if not source_published_at or not submitted_published_at:
        return False
    width = min(len(source_published_at), len(submitted_published_at), 10)
    return source_published_at[:width] > submitted_published_at[:width]


def _encode_page_token(last_id: str) -> str:
    return last_id.encode("utf-8").hex()


def _decode_page_token(token: str) -> str | None:
    if not token:
        return None
    try:
        return bytes.fromhex(token).decode("utf-8")
    except ValueError as err:
        raise InvalidInputError(
            "page_token is not one this server issued: pass next_page_token from the previous response"
        ) from err
