"""The gRPC servicer: converts proto <-> domain and maps domain errors to status codes. Nothing else."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import TypeVar

import grpc

from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector.v1 import detector_pb2_grpc
from rewrite_detector_server.core.detector import (
    AlignedPairResult,
    CheckResult,
    CompareResult,
    Detector,
    SourceMatchResult,
)
from rewrite_detector_server.core.extract import ExtractedArticle, TextFormat
from rewrite_detector_server.core.types import ArticleInput, ArticleRecord, Paragraph, Role
from rewrite_detector_server.errors import (
    DetectorError,
    IncompatibleIndexError,
    IndexUnavailableError,
    InvalidInputError,
    NotFoundError,
    TooLargeError,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

_STATUS_BY_ERROR: list[tuple[type[DetectorError], grpc.StatusCode]] = [
    (InvalidInputError, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFoundError, grpc.StatusCode.NOT_FOUND),
    (TooLargeError, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (IncompatibleIndexError, grpc.StatusCode.FAILED_PRECONDITION),
    (IndexUnavailableError, grpc.StatusCode.UNAVAILABLE),
]

_ROLE = {Role.BODY: pb.BODY, Role.HEADING: pb.HEADING, Role.BOILERPLATE: pb.BOILERPLATE}
_FORMAT_TO_PB = {
    TextFormat.AUTO: pb.TEXT_FORMAT_UNSPECIFIED,
    TextFormat.TEXT: pb.TEXT,
    TextFormat.MARKDOWN: pb.MARKDOWN,
    TextFormat.HTML: pb.HTML,
}
_FORMAT_FROM_PB: dict[int, TextFormat] = {value: key for key, value in _FORMAT_TO_PB.items()}


def _text_format(value: int, field_name: str) -> TextFormat:
    try:
        return _FORMAT_FROM_PB[value]
    except KeyError:
        raise InvalidInputError(
            f"{field_name} {value} is not a TextFormat: use 0 (auto), 1 (TEXT), 2 (MARKDOWN) or 3 (HTML)"
        ) from None


def _extracted(extracted: ExtractedArticle | None) -> pb.ExtractedArticle | None:
    if extracted is None:
        return None
    return pb.ExtractedArticle(
        text=extracted.text,
        title=extracted.title,
        author=extracted.author,
        published_at=extracted.published_at,
    )


def status_for(error: Exception) -> tuple[grpc.StatusCode, str]:
    """The one mapping point from domain errors to gRPC status; anything unexpected is INTERNAL."""
    for error_type, code in _STATUS_BY_ERROR:
        if isinstance(error, error_type):
            return code, str(error)
    return grpc.StatusCode.INTERNAL, "internal error: the server logged the details"


def _call(context: grpc.ServicerContext, method: str, action: Callable[[], T]) -> T:
    try:
        return action()
    except Exception as error:
        code, message = status_for(error)
        if code is grpc.StatusCode.INTERNAL:
            logger.exception("rpc=%s status=INTERNAL", method)
        else:
            logger.info("rpc=%s status=%s message=%r", method, code.name, message)
        context.abort(code, message)
        raise  # unreachable: abort raises; keeps type checkers honest


Req = TypeVar("Req")
Resp = TypeVar("Resp")


def _per_item(
    method: str,
    requests: Iterator[Req],
    context: grpc.ServicerContext,
    handle: Callable[[Req], Resp],
    failed: Callable[[Req, int, str], Resp],
) -> Iterator[Resp]:
    """Bulk streams answer every item: a bad one gets its status in its own response, the rest go on."""
    for request in requests:
        if not context.is_active():
            return
        try:
            yield handle(request)
        except Exception as error:
            code, message = status_for(error)
            if code is grpc.StatusCode.INTERNAL:
                logger.exception("rpc=%s status=INTERNAL", method)
            yield failed(request, code.value[0], message)


def _article_input(article: pb.Article) -> ArticleInput:
    return ArticleInput(
        id=article.id,
        text=article.text,
        title=article.title,
        url=article.url,
        published_at=article.published_at,
        metadata=dict(article.metadata),
    )


def _paragraph(p: Paragraph, include_text: bool = True) -> pb.Paragraph:
    return pb.Paragraph(
        index=p.index,
        span=pb.Span(start=p.start, end=p.end),
        text=p.text if include_text else "",
        role=_ROLE[p.role],
    )


def _summary(record: ArticleRecord) -> pb.ArticleSummary:
    return pb.ArticleSummary(
        id=record.id,
        title=record.title,
        url=record.url,
        published_at=record.published_at,
        paragraph_count=record.paragraph_count,
        char_count=record.char_count,
        indexed_at=record.indexed_at,
    )


def _pair(pair: AlignedPairResult, include_texts: bool) -> pb.AlignedPair:
    return pb.AlignedPair(
        submitted_paragraphs=pair.submitted_paragraphs,
        source_paragraphs=pair.source_paragraphs,
        submitted_span=pb.Span(start=pair.submitted_span[0], end=pair.submitted_span[1]),
        source_span=pb.Span(start=pair.source_span[0], end=pair.source_span[1]),
        similarity=pair.similarity,
        divergence=pair.divergence,
        lexical_overlap=pair.lexical_overlap,
        anchor_overlap=pair.anchor_overlap,
        kind=pb.PairKind.Value(pair.kind.value),
        submitted_text=pair.submitted_text if include_texts else "",
        source_text=pair.source_text if include_texts else "",
    )


def _match(match: SourceMatchResult, include_texts: bool) -> pb.SourceMatch:
    scores = match.scores
    return pb.SourceMatch(
        source_id=match.source_id,
        title=match.title,
        url=match.url,
        verdict=pb.Verdict.Value(scores.verdict.value),
        score=scores.score,
        coverage_submitted=scores.coverage_submitted,
        coverage_source=scores.coverage_source,
        mean_similarity=scores.mean_similarity,
        lexical_overlap=scores.lexical_overlap,
        anchor_overlap=scores.anchor_overlap,
        order_preservation=scores.order_preservation,
        pairs=[_pair(p, include_texts) for p in match.pairs],
        published_at=match.published_at,
        source_is_newer=match.source_is_newer,
        stretches=[
            pb.ReusedStretch(
                submitted_span=pb.Span(start=s.submitted_span[0], end=s.submitted_span[1]),
                source_span=pb.Span(start=s.source_span[0], end=s.source_span[1]),
                pair_count=s.pair_count,
            )
            for s in match.stretches
        ],
    )


def _timing(timing_ms: dict[str, float]) -> pb.Timing:
    return pb.Timing(
        segment_ms=timing_ms.get("segment", 0.0),
        embed_ms=timing_ms.get("embed", 0.0),
        search_ms=timing_ms.get("search", 0.0),
        align_ms=timing_ms.get("align", 0.0),
        total_ms=timing_ms.get("total", 0.0),
    )


def check_response(result: CheckResult, request: pb.CheckRequest) -> pb.CheckResponse:
    include_texts = request.options.include_texts
    return pb.CheckResponse(
        request_id=request.request_id,
        verdict=pb.Verdict.Value(result.verdict.value),
        score=result.score,
        matches=[_match(m, include_texts) for m in result.matches],
        paragraphs=[_paragraph(p) for p in result.submitted.paragraphs] if include_texts else [],
        model=result.model,
        timing=_timing(result.timing_ms),
        format=_FORMAT_TO_PB[result.text_format],
        extracted=_extracted(result.extracted),
    )


class DetectorServicer(detector_pb2_grpc.RewriteDetectorServicer):
    def __init__(self, detector: Detector) -> None:
        self._detector = detector

    # -- writes ---------------------------------------------------------------------------------------

    def _index(self, request: pb.IndexArticleRequest) -> pb.IndexArticleResponse:
        if not request.HasField("article"):
            raise InvalidInputError("article is missing: set IndexArticleRequest.article")
        text_format = _text_format(request.article.format, "article.format")
        outcome = self._detector.index(_article_input(request.article), text_format)
        return pb.IndexArticleResponse(
            id=outcome.id,
            paragraph_count=outcome.paragraph_count,
            created=outcome.created,
            unchanged=outcome.unchanged,
            format=_FORMAT_TO_PB[outcome.text_format],
        )

    def IndexArticle(
        self, request: pb.IndexArticleRequest, context: grpc.ServicerContext
    ) -> pb.IndexArticleResponse:
        return _call(context, "IndexArticle", lambda: self._index(request))

    def IndexArticles(
        self, request_iterator: Iterator[pb.IndexArticleRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.IndexArticleResponse]:
        return _per_item(
            "IndexArticles",
            request_iterator,
            context,
            self._index,
            lambda request, code, message: pb.IndexArticleResponse(
                id=request.article.id, error_code=code, error_message=message
            ),
        )

    def DeleteArticle(
        self, request: pb.DeleteArticleRequest, context: grpc.ServicerContext
    ) -> pb.DeleteArticleResponse:
        removed = _call(context, "DeleteArticle", lambda: self._detector.delete(request.id))
        return pb.DeleteArticleResponse(id=request.id, paragraphs_removed=removed)

    # -- reads ----------------------------------------------------------------------------------------

    def GetArticle(
        self, request: pb.GetArticleRequest, context: grpc.ServicerContext
    ) -> pb.GetArticleResponse:
        details = _call(context, "GetArticle", lambda: self._detector.get(request.id))
        article = details.article
        return pb.GetArticleResponse(
            article=pb.Article(
                id=article.id,
                text=article.text,
                title=article.title,
                url=article.url,
                published_at=article.published_at,
                metadata=article.metadata,
            ),
            summary=_summary(details.record),
            paragraphs=[_paragraph(p) for p in details.paragraphs] if request.include_paragraphs else [],
        )

    def ListArticles(
        self, request: pb.ListArticlesRequest, context: grpc.ServicerContext
    ) -> pb.ListArticlesResponse:
        records, next_token, total = _call(
            context,
            "ListArticles",
            lambda: self._detector.list_articles(request.page_size, request.page_token),
        )
        return pb.ListArticlesResponse(
            articles=[_summary(r) for r in records], next_page_token=next_token, total_count=total
        )

    def GetStats(self, request: pb.GetStatsRequest, context: grpc.ServicerContext) -> pb.GetStatsResponse:
        stats = _call(context, "GetStats", self._detector.stats)
        return pb.GetStatsResponse(
            article_count=stats.article_count,
            paragraph_count=stats.paragraph_count,
            vector_count=stats.vector_count,
            model=stats.model,
            dimension=stats.dimension,
            index_type=stats.index_type,
            uptime_seconds=self._detector.uptime_seconds(),
        )

    # -- detection ------------------------------------------------------------------------------------

    def _check(self, request: pb.CheckRequest) -> pb.CheckResponse:
        options = request.options
        result = self._detector.check(
            request.text,
            source_ids=list(options.source_ids),
            max_sources=options.max_sources,
            min_similarity=options.min_similarity,
            published_at=request.published_at,
            text_format=_text_format(request.format, "format"),
        )
        return check_response(result, request)

    def Check(self, request: pb.CheckRequest, context: grpc.ServicerContext) -> pb.CheckResponse:
        return _call(context, "Check", lambda: self._check(request))

    def CheckStream(
        self, request_iterator: Iterator[pb.CheckRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.CheckResponse]:
        return _per_item(
            "CheckStream",
            request_iterator,
            context,
            self._check,
            lambda request, code, message: pb.CheckResponse(
                request_id=request.request_id, error_code=code, error_message=message
            ),
        )

    def Compare(self, request: pb.CompareRequest, context: grpc.ServicerContext) -> pb.CompareResponse:
        result = _call(context, "Compare", lambda: self._compare(request))
        include = request.include_texts
        return pb.CompareResponse(
            verdict=pb.Verdict.Value(result.match.verdict.value),
            score=result.match.score,
            match=_match(result.match, include),
            submitted_paragraphs=[_paragraph(p, include) for p in result.submitted.paragraphs],
            source_paragraphs=[_paragraph(p, include) for p in result.source.paragraphs],
            model=result.model,
            timing=_timing(result.timing_ms),
            submitted_format=_FORMAT_TO_PB[result.submitted_format],
            source_format=_FORMAT_TO_PB[result.source_format],
            submitted_extracted=_extracted(result.submitted_extracted),
            source_extracted=_extracted(result.source_extracted),
        )

    def _compare(self, request: pb.CompareRequest) -> CompareResult:
        return self._detector.compare(
            request.submitted_text,
            request.source_text,
            submitted_format=_text_format(request.submitted_format, "submitted_format"),
            source_format=_text_format(request.source_format, "source_format"),
        )
