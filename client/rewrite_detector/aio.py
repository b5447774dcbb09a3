"""asyncio client: the same calls as :class:`rewrite_detector.Client`, over ``grpc.aio``."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Mapping
from types import TracebackType
from typing import Any

import grpc
import grpc.aio

from rewrite_detector import _shared
from rewrite_detector._shared import ArticleLike, CheckLike, TextFormatLike
from rewrite_detector.errors import Unavailable, from_rpc_error
from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector.v1 import detector_pb2_grpc as pb_grpc

__all__ = ["AsyncClient"]


class AsyncClient:
    """Non-blocking client; same constructor arguments and semantics as :class:`rewrite_detector.Client`.

    >>> async with AsyncClient() as client:
    ...     result = await client.check(text)

    The channel is created on first use, inside the running event loop.
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
        self._options = _shared.channel_options(max_message_mb)
        self._credentials = _shared.tls_credentials(root_certificates, client_certificate, client_key)
        self._channel: grpc.aio.Channel | None = None
        self._stub: Any = None

    # -- lifecycle ----------------------------------------------------------------------------------

    @property
    def channel(self) -> grpc.aio.Channel:
        if self._channel is None:
            if self._credentials is not None:
                self._channel = grpc.aio.secure_channel(self.target, self._credentials, options=self._options)
            else:
                self._channel = grpc.aio.insecure_channel(self.target, options=self._options)
            self._stub = pb_grpc.RewriteDetectorStub(self._channel)
        return self._channel

    @property
    def stub(self) -> Any:
        _ = self.channel
        return self._stub

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
            self._stub = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient(target={self.target!r}, timeout={self.timeout}, retries={self.retries})"

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until connected and, when the server has the health service, SERVING."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            await asyncio.wait_for(self.channel.channel_ready(), timeout)
        except asyncio.TimeoutError as err:
            raise Unavailable(
                f"server at {self.target} not reachable after {timeout}s", code=grpc.StatusCode.UNAVAILABLE
            ) from err
        health = self.channel.unary_unary(
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
                status = await health(None, timeout=min(remaining or 1.0, 1.0), metadata=self._metadata)
            except grpc.RpcError as err:
                if _shared.status_code(err) == grpc.StatusCode.UNIMPLEMENTED:
                    return
            else:
                if status == _shared.HEALTH_SERVING:
                    return
            await asyncio.sleep(0.05 if remaining is None else max(0.0, min(0.05, remaining)))

    # -- plumbing -----------------------------------------------------------------------------------

    async def _unary(self, name: str, request: Any) -> Any:
        method: Callable[..., Any] = getattr(self.stub, name)
        deadline = time.monotonic() + self.timeout
        attempt = 0
        while True:
            remaining = max(deadline - time.monotonic(), 0.001)
            try:
                return await method(request, timeout=remaining, metadata=self._metadata)
            except grpc.RpcError as err:
                if attempt < self.retries and _shared.status_code(err) == grpc.StatusCode.UNAVAILABLE:
                    delay = _shared.backoff_delay(attempt)
                    if time.monotonic() + delay < deadline:
                        attempt += 1
                        await asyncio.sleep(delay)
                        continue
                raise from_rpc_error(err) from err

    async def _stream(
        self, name: str, requests: AsyncIterator[Any], timeout: float | None
    ) -> AsyncIterator[Any]:
        failure: list[Exception] = []

        async def guarded() -> AsyncIterator[Any]:
            try:
                async for request in requests:
                    yield request
            except Exception as exc:
                failure.append(exc)

        call = getattr(self.stub, name)(guarded(), timeout=timeout, metadata=self._metadata)
        try:
            async for response in call:
                yield response
        except grpc.RpcError as err:
            if failure:
                raise failure[0] from err
            raise from_rpc_error(err) from err
        finally:
            call.cancel()
        if failure:
            raise failure[0]

    # -- articles -----------------------------------------------------------------------------------

    async def index_article(
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
        article = _shared.make_article(
            id, text, title=title, url=url, published_at=published_at, metadata=metadata, format=text_format
        )
        return await self._unary("IndexArticle", pb.IndexArticleRequest(article=article))

    def index_articles(
        self,
        articles: Iterable[ArticleLike] | AsyncIterable[ArticleLike],
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[pb.IndexArticleResponse]:
        """``async for response in client.index_articles(items)``; see :meth:`Client.index_articles`."""
        requests = _convert(articles, lambda article, _position: _shared.index_request(article))
        return self._stream("IndexArticles", requests, timeout)

    async def delete_article(self, id: str) -> pb.DeleteArticleResponse:
        return await self._unary("DeleteArticle", pb.DeleteArticleRequest(id=id))

    async def get_article(self, id: str, include_paragraphs: bool = False) -> pb.GetArticleResponse:
        request = pb.GetArticleRequest(id=id, include_paragraphs=include_paragraphs)
        return await self._unary("GetArticle", request)

    async def list_articles(self, page_size: int = 100, page_token: str = "") -> pb.ListArticlesResponse:
        request = pb.ListArticlesRequest(page_size=page_size, page_token=page_token)
        return await self._unary("ListArticles", request)

    async def iter_articles(self, page_size: int = 100) -> AsyncIterator[pb.ArticleSummary]:
        token = ""
        while True:
            page = await self.list_articles(page_size=page_size, page_token=token)
            for summary in page.articles:
                yield summary
            token = page.next_page_token
            if not token:
                return

    async def stats(self) -> pb.GetStatsResponse:
        return await self._unary("GetStats", pb.GetStatsRequest())

    # -- checking -----------------------------------------------------------------------------------

    async def check(
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
        return await self._unary("Check", request)

    def check_stream(
        self,
        requests: Iterable[CheckLike] | AsyncIterable[CheckLike],
        *,
        timeout: float | None = None,
    ) -> AsyncIterator[pb.CheckResponse]:
        """``async for response in client.check_stream(items)``; see :meth:`Client.check_stream`."""
        return self._stream("CheckStream", _convert(requests, _shared.check_request), timeout)

    async def compare(
        self,
        submitted_text: str,
        source_text: str,
        *,
        include_texts: bool = False,
        submitted_format: TextFormatLike = "auto",
        source_format: TextFormatLike = "auto",
    ) -> pb.CompareResponse:
        request = pb.CompareRequest(
            submitted_text=submitted_text,
            source_text=source_text,
            include_texts=include_texts,
            submitted_format=_shared.text_format(submitted_format),
            source_format=_shared.text_format(source_format),
        )
        return await self._unary("Compare", request)


async def _convert(
    items: Iterable[Any] | AsyncIterable[Any], fn: Callable[[Any, int], Any]
) -> AsyncIterator[Any]:
    if isinstance(items, AsyncIterable):
        i = 0
        async for item in items:
            yield fn(item, i)
            i += 1
    else:
        for i, item in enumerate(items):
            yield fn(item, i)
