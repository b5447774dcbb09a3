"""One gRPC server interceptor for what operators need per call: a request id, an access log line, metrics.

For every call to a registered method it

* picks the request id (the caller's ``x-request-id`` metadata if acceptable, else a fresh one), makes it
  current for every log line of the call (``logging_setup``) and returns it in the trailing metadata;
* times the call and, when metrics are on, counts it by method and final status code (``metrics.py``);
* logs one ``rpc=... code=... duration_ms=...`` line (health checks at DEBUG: probes are frequent).

It must be the outermost interceptor so that calls refused by auth are counted and logged too.
Hand-written because gRPC's Python server has no built-in access log or metrics; wrapping the method
handlers in an interceptor is the documented extension point (py-grpc-prometheus does the same, but
targets old grpcio and has no request ids).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from rewrite_detector_server.logging_setup import REQUEST_ID_HEADER, accept_request_id, request_id_scope
from rewrite_detector_server.metrics import ServerMetrics

__all__ = ["ObservabilityInterceptor"]

log = logging.getLogger("rewrite_detector_server.access")

_HEALTH_SERVICE = "grpc.health.v1.Health"
# Status codes that mean "the server failed", as opposed to "the caller asked for something wrong".
_SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DATA_LOSS,
        grpc.StatusCode.UNAVAILABLE,
    }
)


class _Call:
    """What is known about one call before its handler runs."""

    __slots__ = ("method", "metrics", "proposed_id", "rpc_type", "service")

    def __init__(
        self, details: grpc.HandlerCallDetails, handler: grpc.RpcMethodHandler, metrics: ServerMetrics | None
    ):
        self.service, _, self.method = details.method.lstrip("/").rpartition("/")
        self.rpc_type = _rpc_type(handler)
        self.proposed_id = _metadata_value(details.invocation_metadata, REQUEST_ID_HEADER)
        self.metrics = metrics

    def begin(self) -> tuple[str, float]:
        if self.metrics is not None:
            self.metrics.rpc_start(self.rpc_type, self.service, self.method)
        return accept_request_id(self.proposed_id), time.perf_counter()

    def end(
        self, context: grpc.ServicerContext, request_id: str, code: grpc.StatusCode, started: float
    ) -> None:
        seconds = time.perf_counter() - started
        _add_request_id_trailer(context, request_id)
        if self.metrics is not None:
            self.metrics.rpc_done(self.rpc_type, self.service, self.method, code, seconds)
        if code in _SERVER_FAULTS:
            level = logging.WARNING
        elif self.service == _HEALTH_SERVICE:
            level = logging.DEBUG
        else:
            level = logging.INFO
        if log.isEnabledFor(level):
            log.log(
                level,
                "rpc=%s code=%s duration_ms=%.1f type=%s peer=%s",
                self.method,
                code.name,
                seconds * 1000.0,
                self.rpc_type,
                context.peer(),
            )


class ObservabilityInterceptor(grpc.ServerInterceptor):
    """Request ids, access log and (if ``metrics`` is given) Prometheus metrics for every RPC."""

    def __init__(self, metrics: ServerMetrics | None = None) -> None:
        self._metrics = metrics

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None:  # unknown method: gRPC answers UNIMPLEMENTED; no labels from caller input
            return None
        call = _Call(handler_call_details, handler, self._metrics)
        if handler.response_streaming:
            inner = handler.stream_stream if handler.request_streaming else handler.unary_stream
            behavior = _streaming(call, inner)
        else:
            inner = handler.stream_unary if handler.request_streaming else handler.unary_unary
            behavior = _single(call, inner)
        factory = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(handler.request_streaming, handler.response_streaming)]
        return factory(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _single(call: _Call, inner: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[..., Any]:
    """Wrap a handler that returns one response."""

    def behavior(request: Any, context: grpc.ServicerContext) -> Any:
        request_id, started = call.begin()
        with request_id_scope(request_id):
            code = grpc.StatusCode.OK
            try:
                response = inner(request, context)
            except BaseException:
                code = _status(context, grpc.StatusCode.UNKNOWN)
                raise
            else:
                code = _status(context, grpc.StatusCode.OK)
                return response
            finally:
                call.end(context, request_id, code, started)

    return behavior


def _streaming(
    call: _Call, inner: Callable[[Any, grpc.ServicerContext], Iterator[Any]]
) -> Callable[..., Any]:
    """Wrap a handler that returns a response iterator: the call ends when the iterator does."""

    def behavior(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
        request_id, started = call.begin()
        # gRPC pulls the responses on this same worker thread, right after this returns; the scope is
        # re-entered inside the generator so that the servicer's code (which runs there) sees the id.
        with request_id_scope(request_id):
            try:
                responses = inner(request, context)
            except BaseException:
                call.end(context, request_id, _status(context, grpc.StatusCode.UNKNOWN), started)
                raise
        return _observed(call, responses, context, request_id, started)

    return behavior


def _observed(
    call: _Call, responses: Iterator[Any], context: grpc.ServicerContext, request_id: str, started: float
) -> Iterator[Any]:
    with request_id_scope(request_id):
        code = grpc.StatusCode.OK
        try:
            yield from responses
        except GeneratorExit:  # the client went away mid-stream
            code = grpc.StatusCode.CANCELLED
            raise
        except BaseException:
            code = _status(context, grpc.StatusCode.UNKNOWN)
            raise
        else:
            code = _status(context, grpc.StatusCode.OK)
        finally:
            call.end(context, request_id, code, started)


def _status(context: grpc.ServicerContext, default: grpc.StatusCode) -> grpc.StatusCode:
    """The code the handler set (``abort``/``set_code``), else ``default``."""
    code = context.code()  # type: ignore[attr-defined]  # grpcio >= 1.38; missing from the stubs
    return code if isinstance(code, grpc.StatusCode) else default


def _rpc_type(handler: grpc.RpcMethodHandler) -> str:
    if handler.request_streaming:
        return "bidi_stream" if handler.response_streaming else "client_stream"
    return "server_stream" if handler.response_streaming else "unary"


def _metadata_value(metadata: Any, key: str) -> str | None:
    for item in metadata or ():
        if item[0] == key and isinstance(item[1], str):
            return item[1]
    return None


def _add_request_id_trailer(context: grpc.ServicerContext, request_id: str) -> None:
    """Return the id in the trailing metadata, keeping whatever else the handler put there."""
    existing = tuple(context.trailing_metadata() or ())  # type: ignore[attr-defined]
    if any(key == REQUEST_ID_HEADER for key, _ in existing):
        return
    context.set_trailing_metadata((*existing, (REQUEST_ID_HEADER, request_id)))
