"""The detection core: index articles, check a submission against the index, compare two texts.

Knows nothing about gRPC: takes and returns domain types, raises domain errors (errors.py).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import re
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Concatenate, ParamSpec, TypeVar

import numpy as np

from rewrite_detector_models.embedder import Embedder
from rewrite_detector_server.core.align import AlignmentParams
from rewrite_detector_server.core.dates import validate_published_at
from rewrite_detector_server.core.evidence import EvidenceSide
from rewrite_detector_server.core.extract import (
    ExtractedArticle,
    PreparedText,
    TextFormat,
    prepare_text,
    sniff_format,
)
from rewrite_detector_server.core.fingerprints import LexicalParams, fingerprints
from rewrite_detector_server.core.matching import (
    AlignedPairResult,
    InProcessMatchRunner,
    MatchJob,
    MatchParams,
    MatchRunner,
    SourceInfo,
    SourceMatchResult,
)
from rewrite_detector_server.core.observer import DetectorObserver, NullObserver
from rewrite_detector_server.core.passages import PassageParams
from rewrite_detector_server.core.refine import RefineParams
from rewrite_detector_server.core.scoring import VerdictParams
from rewrite_detector_server.core.segment import segment
from rewrite_detector_server.core.stretches import StretchParams
from rewrite_detector_server.core.types import (
    ArticleInput,
    ArticleRecord,
    Paragraph,
    Segmented,
    Verdict,
)
from rewrite_detector_server.errors import InvalidInputError, NotFoundError, TooLargeError
from rewrite_detector_server.storage import Storage
from rewrite_detector_server.storage.store import text_hash

logger = logging.getLogger(__name__)

# Re-exported: the servicer, the evaluation harness and tests take the result types from here.
__all__ = ["AlignedPairResult", "CheckResult", "CompareResult", "Detector", "SourceMatchResult"]

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
    # Alignment is O(n * m) in time and memory over the content paragraphs of the two sides: 2M pairs
    # (about 1400 x 1400) take a few seconds and ~100 MB; two 20k-paragraph texts would take minutes
    # and >10 GB. News articles are far below it (the largest PAN-13 pair is ~250k).
    max_alignment_pairs: int = 2_000_000

    @property
    def max_html_bytes(self) -> int:
        # A saved page is mostly markup, scripts and boilerplate that extraction drops; the text limit
        # still applies to the extracted article.
        return 8 * self.max_text_bytes


@dataclass(frozen=True, slots=True)
class RetrievalParams:
    # Neighbours fetched per submitted paragraph.
    top_k: int = 10
    # A neighbour votes for its article only above this cosine.
    vote_similarity: float = 0.5
    # How many voted-for articles get a full alignment.
    candidate_sources: int = 10
    # Candidates found by shared rare word pairs, aligned in addition to the embedding-voted ones.
    lexical: LexicalParams = field(default_factory=LexicalParams)


@dataclass(frozen=True, slots=True)
class CheckResult:
    verdict: Verdict
    score: float
    matches: tuple[SourceMatchResult, ...]
    submitted: Segmented
    model: str
    timing_ms: dict[str, float] = field(default_factory=dict)
    # How the submitted text was read; `extracted` is set for HTML (and `submitted.text` is its text).
    text_format: TextFormat = TextFormat.TEXT
    extracted: ExtractedArticle | None = None


@dataclass(frozen=True, slots=True)
class CompareResult:
    match: SourceMatchResult
    submitted: Segmented
    source: Segmented
    model: str
    timing_ms: dict[str, float] = field(default_factory=dict)
    submitted_format: TextFormat = TextFormat.TEXT
    source_format: TextFormat = TextFormat.TEXT
    submitted_extracted: ExtractedArticle | None = None
    source_extracted: ExtractedArticle | None = None


@dataclass(frozen=True, slots=True)
class IndexOutcome:
    id: str
    paragraph_count: int
    created: bool
    unchanged: bool
    text_format: TextFormat = TextFormat.TEXT


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


_P = ParamSpec("_P")
_R = TypeVar("_R")


def _in_flight(method: Callable[Concatenate[Detector, _P], _R]) -> Callable[Concatenate[Detector, _P], _R]:
    """Holds the match runner's request() for the whole call (it builds a lone request's matches itself)."""

    @functools.wraps(method)
    def counted(self: Detector, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        with self.match_runner.request():
            return method(self, *args, **kwargs)

    return counted


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
        passages: PassageParams | None = None,
        stretches: StretchParams | None = None,
        limits: DetectorLimits | None = None,
        index_type: str = "flat",
        observer: DetectorObserver | None = None,
        match_runner: MatchRunner | None = None,
    ) -> None:
        self.embedder = embedder
        self.storage = storage
        self.alignment = alignment or AlignmentParams()
        self.verdict_params = verdict or VerdictParams()
        self.retrieval = retrieval or RetrievalParams()
        self.refine = refine or RefineParams()
        self.passages = passages or PassageParams()
        self.stretches = stretches or StretchParams()
        self.limits = limits or DetectorLimits()
        self.index_type = index_type
        # Replaceable after construction: the server wires its metrics in when it starts.
        self.observer: DetectorObserver = observer or NullObserver()
        # Where a Check's per-source matches are built: in this process, or in worker processes
        # (server/match_pool.py) so that they do not take turns on the GIL.
        self.match_runner: MatchRunner = match_runner or InProcessMatchRunner()
        self._started = time.monotonic()

    def close(self) -> None:
        """Stop the match workers, then close the storage (the index is saved)."""
        self.match_runner.close()
        self.storage.close()

    def uptime_seconds(self) -> float:
        return time.monotonic() - self._started

    # -- input handling -------------------------------------------------------------------------------

    def _prepare(self, text: str, text_format: TextFormat, what: str) -> PreparedText:
        """Resolve the format (sniffing AUTO) and extract the article from HTML, before segmentation."""
        if not text or not text.strip():
            raise InvalidInputError(f"{what} is empty or whitespace only: send the article's text")
        resolved = sniff_format(text) if text_format is TextFormat.AUTO else text_format
        if resolved is TextFormat.HTML:
            size = len(text.encode("utf-8", "surrogatepass"))
            if size > self.limits.max_html_bytes:
                raise TooLargeError(
                    f"{what} is {size} bytes; the limit for HTML is {self.limits.max_html_bytes} bytes: "
                    "send the article's text or raise the server's max text size"
                )
        return prepare_text(text, resolved, what)

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
        hits = sum(h in cached for h in hashes)
        self.observer.on_embedding_cache(hits, len(hashes) - hits)
        if missing:
            self.observer.on_embed_batch(len(missing))
        fresh = dict(zip(missing, self.embedder.embed_batch(missing), strict=True)) if missing else {}
        out = np.empty((len(texts), self.embedder.dimension), dtype=np.float32)
        for row, (t, h) in enumerate(zip(texts, hashes, strict=True)):
            out[row] = cached[h] if h in cached else fresh[t]
        return out

    # -- writes ---------------------------------------------------------------------------------------

    def index(self, article: ArticleInput, text_format: TextFormat = TextFormat.AUTO) -> IndexOutcome:
        """Upsert one article. HTML is stored as its extracted article text (with the page's title, date
        and author filling what the caller left empty): stored spans and paragraphs must index the stored
        text, and the page around the article (markup, ads, navigation) is not worth keeping."""
        validate_id(article.id)
        what = f"article {article.id!r}"
        validate_published_at(article.published_at, f"{what}: published_at")
        prepared = self._prepare(article.text, text_format, what)
        segmented = self._segment(prepared.text, what)
        extracted = prepared.extracted
        metadata = dict(article.metadata)
        if extracted is not None:
            metadata["source_format"] = TextFormat.HTML.value
            if extracted.author:
                metadata.setdefault("author", extracted.author)
        stored = ArticleInput(
            id=article.id,
            text=prepared.text,
            title=article.title or (extracted.title if extracted else "") or segmented.title,
            url=article.url,
            published_at=article.published_at or _valid_date(extracted),
            metadata=metadata,
        )
        content_hash = _content_hash(stored)
        existing = self.storage.get(article.id)
        if existing is not None and existing.record.content_hash == content_hash:
            return IndexOutcome(
                article.id,
                existing.record.paragraph_count,
                created=False,
                unchanged=True,
                text_format=prepared.text_format,
            )
        vectors = self._embed(segmented.content_paragraphs)
        outcome = self.storage.upsert(stored, content_hash, segmented.paragraphs, vectors)
        return IndexOutcome(
            id=article.id,
            paragraph_count=len(segmented.paragraphs),
            created=outcome.created,
            unchanged=outcome.unchanged,
            text_format=prepared.text_format,
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

    def list_articles(self, page_size: int = 0, page_token: str = "") -> tuple[list[ArticleRecord], str, int]:
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

    @_in_flight
    def check(
        self,
        text: str,
        *,
        source_ids: Sequence[str] = (),
        max_sources: int = 0,
        min_similarity: float = 0.0,
        published_at: str = "",
        text_format: TextFormat = TextFormat.AUTO,
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

        validate_published_at(published_at, "published_at")
        timer = Timer()
        submitted_input = self._prepare(text, text_format, "submitted text")
        published_at = published_at or _valid_date(submitted_input.extracted)
        submitted = self._segment(submitted_input.text, "submitted text")
        timer.lap("segment")
        content = submitted.content_paragraphs
        vectors = self._embed(content)
        timer.lap("embed")
        candidates = restricted or self._retrieve(content, vectors)
        timer.lap("search")
        prepared = EvidenceSide.of(submitted_input.text, content, vectors)
        jobs = [
            job
            for source_id in candidates
            if (job := self._indexed_job(source_id, prepared, min_similarity, published_at)) is not None
        ]
        matches = self.match_runner.run(jobs)
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
            text_format=submitted_input.text_format,
            extracted=submitted_input.extracted,
        )

    @_in_flight
    def compare(
        self,
        submitted_text: str,
        source_text: str,
        *,
        submitted_format: TextFormat = TextFormat.AUTO,
        source_format: TextFormat = TextFormat.AUTO,
    ) -> CompareResult:
        timer = Timer()
        submitted_input = self._prepare(submitted_text, submitted_format, "submitted text")
        source_input = self._prepare(source_text, source_format, "source text")
        submitted_text, source_text = submitted_input.text, source_input.text
        submitted = self._segment(submitted_text, "submitted text")
        source = self._segment(source_text, "source text")
        timer.lap("segment")
        sub_content, src_content = submitted.content_paragraphs, source.content_paragraphs
        self._check_alignment_size(len(sub_content), len(src_content), "the source text")
        vectors = self._embed([*sub_content, *src_content])
        timer.lap("embed")
        (match,) = self.match_runner.run(
            [
                MatchJob(
                    SourceInfo(),
                    EvidenceSide.of(submitted_text, sub_content, vectors[: len(sub_content)]),
                    EvidenceSide.of(source_text, src_content, vectors[len(sub_content) :]),
                    0.0,
                    "",
                    self._match_params(),
                )
            ]
        )
        timer.lap("align")
        return CompareResult(
            match,
            submitted,
            source,
            self.embedder.name,
            timer.done(),
            submitted_format=submitted_input.text_format,
            source_format=source_input.text_format,
            submitted_extracted=submitted_input.extracted,
            source_extracted=source_input.extracted,
        )

    def _check_alignment_size(self, submitted: int, source: int, what: str) -> None:
        if submitted * source > self.limits.max_alignment_pairs:
            raise TooLargeError(
                f"aligning {submitted} submitted paragraphs with {source} of {what} is "
                f"{submitted * source} paragraph pairs; the limit is {self.limits.max_alignment_pairs}: "
                "split the texts into smaller parts"
            )

    def _retrieve(self, content: Sequence[Paragraph], vectors: np.ndarray) -> list[str]:
        """Candidate sources: articles voted for by each submitted paragraph's nearest neighbours, then
        articles sharing rare word pairs with a submitted paragraph (core/fingerprints.py)."""
        votes: dict[str, float] = defaultdict(float)
        for neighbours in self.storage.search(vectors, self.retrieval.top_k):
            best: dict[str, float] = {}
            for score, article_id, _ in neighbours:
                if score >= self.retrieval.vote_similarity and score > best.get(article_id, 0.0):
                    best[article_id] = score
            for article_id, score in best.items():
                votes[article_id] += score
        ranked = sorted(votes.items(), key=lambda kv: kv[1], reverse=True)
        candidates = [article_id for article_id, _ in ranked[: self.retrieval.candidate_sources]]
        if self.retrieval.lexical.min_shared <= 0:  # off: skip fingerprinting the submission too
            return candidates
        lexical = self.storage.lexical_candidates(
            [fingerprints(p.text) for p in content], self.retrieval.lexical
        )
        return list(dict.fromkeys([*candidates, *(article_id for article_id, _ in lexical)]))

    def _indexed_job(
        self,
        source_id: str,
        submitted: EvidenceSide,
        min_similarity: float,
        published_at: str,
    ) -> MatchJob | None:
        stored = self.storage.get(source_id)
        if stored is None:  # deleted between retrieval and alignment
            return None
        src_content, src_vectors = self.storage.content_vectors(source_id)
        if not src_content:
            return None
        self._check_alignment_size(len(submitted.content), len(src_content), f"source {source_id!r}")
        article = stored.article
        return MatchJob(
            SourceInfo(source_id, article.title, article.url, article.published_at),
            submitted,
            EvidenceSide.of(article.text, src_content, src_vectors),
            min_similarity,
            published_at,
            self._match_params(),
        )

    def _match_params(self) -> MatchParams:
        return MatchParams(self.alignment, self.passages, self.refine, self.verdict_params, self.stretches)


def _valid_date(extracted: ExtractedArticle | None) -> str:
    """The page's date when it parses as ISO 8601; a page's odd date must not fail the whole request."""
    if extracted is None or not extracted.published_at:
        return ""
    try:
        return validate_published_at(extracted.published_at, "extracted date")
    except InvalidInputError:
        return ""


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
