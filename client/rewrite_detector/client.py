"""Synchronous client for the rewrite-detector gRPC service.

Every method returns the generated response message (``rewrite_detector.v1.detector_pb2``) and raises a
:class:`~rewrite_detector.errors.RewriteDetectorError` subclass on failure, never a raw ``grpc.RpcError``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import TracebackType
from typing import Any, TypeVar

import grpc

from rewrite_detector import _shared
from rewrite_detector._shared import ArticleLike, CheckLike, TextFormatLike
from rewrite_detector.errors import Unavailable, from_rpc_error
from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector.v1 import detector_pb2_grpc as pb_grpc

__all__ = ["Client"]

_Resp = TypeVar("_Resp")


class Client:
    """Blocking client.

    >>> with Client("127.0.0.1:50051") as client:
    ...     client.index_article("src-1", source_text)
    ...     result = client.check(suspect_text)
    ...     print(result.verdict, result.score, [m.source_id for m in result.matches])

    ``target`` defaults to ``$REWRITE_DETECTOR_SERVER``, else ``127.0.0.1:50051``. ``timeout`` is the
    overall deadline of each unary call in seconds, retries included. Unary calls (all idempotent) are
    retried up to ``retries`` times with exponential backoff when the server is UNAVAILABLE; streams are
    not retried. ``token`` is sent as ``authorization: Bearer <token>``; ``root_certificates`` (PEM bytes)
    switches to a TLS channel, and ``client_certificate`` + ``client_key`` (PEM bytes) present a client
    certificate for servers that require mutual TLS.
    """

    def __init__(
        self,
        target: str | None = None,
        *,
        timeout: float = 30.0,
        retries: int = 3,
        token: str | None = None,
        root_certificates: bytes | None = None,
        client_certificate: bytes | None = None,
        client_key: bytes | None = None,
        max_message_mb: int = 64,
    ) -> None:
        _shared.validate_settings(timeout, retries)
        self.target = _shared.resolve_target(target)
        self.timeout = timeout
        self.retries = retries
        self._metadata = _shared.call_metadata(token)
        options = _shared.channel_options(max_message_mb)
        credentials = _shared.tls_credentials(root_certificates, client_certificate, client_key)
        if credentials is not None:
            self._channel = grpc.secure_channel(self.target, credentials, options=options)
        else:
            self._channel = grpc.insecure_channel(self.target, options=options)
        self._stub = pb_grpc.RewriteDetectorStub(self._channel)

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def channel(self) -> grpc.Channel:
        return self._channel

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client(target={self.target!r}, timeout={self.timeout}, retries={self.retries})"

    def wait_ready(self, timeout: float | None = None) -> None:
        """Block until the channel is connected and, if the server has the standard health service, it
        reports SERVING. Raises :class:`Unavailable` after ``timeout`` seconds (``None``: wait forever)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            grpc.channel_ready_future(self._channel).result(timeout=timeout)
        except grpc.FutureTimeoutError as err:
            raise Unavailable(
                f"server at {self.target} not reachable after {timeout}s", code=grpc.StatusCode.UNAVAILABLE
            ) from err
        health = self._channel.unary_unary(
            _shared.HEALTH_CHECK_METHOD,
            request_serializer=lambda _: b"",
            response_deserializer=_shared.parse_health_status,
        )
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise Unavailable(
                    f"server at {self.target} not serving after {timeout}s", code=grpc.StatusCode.UNAVAILABLE
                )
            try:
                status = health(None, timeout=min(remaining or 1.0, 1.0), metadata=self._metadata)
            except grpc.RpcError as err:
                if _shared.status_code(err) == grpc.StatusCode.UNIMPLEMENTED:
                    return  # no health service: a connected channel is all we can know
            else:
                if status == _shared.HEALTH_SERVING:
                    return
            time.sleep(0.05 if remaining is None else max(0.0, min(0.05, remaining)))

    # -- plumbing -----------------------------------------------------------------------------------

    def _unary(self, method: Callable[..., _Resp], request: Any) -> _Resp:
        """One unary call with the overall deadline, retried on UNAVAILABLE with exponential backoff."""
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                return method(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as err:
                if attempt < self.retries and _shared.status_code(err) == grpc.StatusCode.UNAVAILABLE:
                    delay = _shared.backoff_delay(attempt)
                    if time.monotonic() + delay < deadline:
                        attempt += 1
                        time.sleep(delay)
                        continue
                raise from_rpc_error(err) from err

    def _stream(
        self, method: Callable[..., Any], requests: Iterator[Any], timeout: float | None
    ) -> Iterator[Any]:
        """A bidi stream: requests are sent from gRPC's thread, responses yielded as they arrive.

        If the request iterable itself raises (a bad dict, an unreadable file...), sending stops cleanly,
        the responses for what was already sent are still yielded, then that exception is re-raised.
        """
        failure: list[Exception] = []

        def guarded() -> Iterator[Any]:
            try:
                yield from requests
            except Exception as exc:
                failure.append(exc)

        call = method(guarded(), timeout=timeout, metadata=self._metadata)
        try:
            yield from call
        except grpc.RpcError as err:
            if failure:
                raise failure[0] from err
            raise from_rpc_error(err) from err
        finally:
            call.cancel()  # no-op when the stream completed; stops it when the caller stopped early
        if failure:
            raise failure[0]

    # -- articles -----------------------------------------------------------------------------------

    def index_article(
        self,
        id: str,
        text: str,
        *,
        title: str = "",
        url: str = "",
        published_at: str = "",
        metadata: Mapping[str, str] | None = None,
        text_format: TextFormatLike = "auto",
    ) -> pb.IndexArticleResponse:
        """Index (upsert) one article."""
        article = _shared.make_article(
            id, text, title=title, url=url, published_at=published_at, metadata=metadata, format=text_format
        )
        return self._unary(self._stub.IndexArticle, pb.IndexArticleRequest(article=article))

    def index_articles(
        self, articles: Iterable[ArticleLike], *, timeout: float | None = None
    ) -> Iterator[pb.IndexArticleResponse]:
        """Bulk upsert over the IndexArticles stream; yields one response per article, in order.

        Items are ``Article`` / ``IndexArticleRequest`` messages or dicts with Article's field names. A bad
        article gets ``error_code != 0`` in its own response; the stream goes on. No deadline by default
        (``timeout`` is for the whole stream); not retried.
        """
        return self._stream(self._stub.IndexArticles, (_shared.index_request(a) for a in articles), timeout)

    def delete_article(self, id: str) -> pb.DeleteArticleResponse:
        return self._unary(self._stub.DeleteArticle, pb.DeleteArticleRequest(id=id))

    def get_article(self, id: str, include_paragraphs: bool = False) -> pb.GetArticleResponse:
        request = pb.GetArticleRequest(id=id, include_paragraphs=include_paragraphs)
        return self._unary(self._stub.GetArticle, request)

    def list_articles(self, page_size: int = 100, page_token: str = "") -> pb.ListArticlesResponse:
        request = pb.ListArticlesRequest(page_size=page_size, page_token=page_token)
        return self._unary(self._stub.ListArticles, request)

    def iter_articles(self, page_size: int = 100) -> Iterator[pb.ArticleSummary]:
        """Every indexed article's summary, following ``next_page_token`` (one call per page)."""
        token = ""
        while True:
            page = self.list_articles(page_size=page_size, page_token=token)
            yield from page.articles
            token = page.next_page_token
            if not token:
                return

    def stats(self) -> pb.GetStatsResponse:
        return self._unary(self._stub.GetStats, pb.GetStatsRequest())

    # -- checking -----------------------------------------------------------------------------------

    def check(
        self,
        text: str,
        *,
        title: str = "",
        source_ids: Iterable[str] = (),
        max_sources: int = 0,
        min_similarity: float = 0.0,
        include_texts: bool = False,
        published_at: str = "",
        request_id: str = "",
        text_format: TextFormatLike = "auto",
    ) -> pb.CheckResponse:
        """Is ``text`` a rewrite of an indexed article? 0 / 0.0 mean the server's defaults."""
        request = _shared.make_check_request(
            text,
            title=title,
            source_ids=source_ids,
            max_sources=max_sources,
            min_similarity=min_similarity,
            include_texts=include_texts,
            published_at=published_at,
            request_id=request_id,
            format=text_format,
        )
        return self._unary(self._stub.Check, request)

    def check_stream(
        self, requests: Iterable[CheckLike], *, timeout: float | None = None
    ) -> Iterator[pb.CheckResponse]:
        """Batch checking over the CheckStream stream; one response per request, matched by request_id.

        Items are ``CheckRequest`` messages or dicts (see :func:`rewrite_detector._shared.check_request`);
        an empty request_id is replaced by the item's position (``"0"``, ``"1"``...). A bad request gets
        ``error_code != 0`` in its own response. No deadline by default; not retried.
        """
        converted = (_shared.check_request(item, i) for i, item in enumerate(requests))
        return self._stream(self._stub.CheckStream, converted, timeout)

    def compare(
        self,
        submitted_text: str,
        source_text: str,
        *,
        include_texts: bool = False,
        submitted_format: TextFormatLike = "auto",
        source_format: TextFormatLike = "auto",
    ) -> pb.CompareResponse:
        """Align two texts directly, without the index."""
        request = pb.CompareRequest(
            submitted_text=submitted_text,
            source_text=source_text,
            include_texts=include_texts,
            submitted_format=_shared.text_format(submitted_format),
            source_format=_shared.text_format(source_format),
        )
        return self._unary(self._stub.Compare, request)
