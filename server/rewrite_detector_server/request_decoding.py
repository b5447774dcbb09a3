"""Turn undecodable requests into INVALID_ARGUMENT instead of gRPC's INTERNAL.

grpcio's Python server deserializes the request itself and, when that fails, answers INTERNAL
"Exception deserializing request!" (``grpc/_server.py``), which tells the caller it is our fault. The
commonest cause is a string field that is not valid UTF-8 (protobuf rejects it when parsing), i.e. a
client bug the caller can fix. This interceptor moves the parsing into the handler, where a
``DecodeError`` becomes INVALID_ARGUMENT with protobuf's explanation.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message import DecodeError

__all__ = ["RequestDecodingInterceptor"]

logger = logging.getLogger(__name__)


def _parser(
    method: str, deserializer: Callable[[bytes], Any]
) -> Callable[[bytes, grpc.ServicerContext], Any]:
    def parse(raw: bytes, context: grpc.ServicerContext) -> Any:
        try:
            return deserializer(raw)
        except DecodeError as err:
            logger.info(
                "rpc=%s status=INVALID_ARGUMENT reason=undecodable-request bytes=%d", method, len(raw)
            )
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"request could not be decoded: {err}. Send a serialized protobuf message; string "
                "fields must be valid UTF-8 (send binary data base64-encoded or as bytes)",
            )
            raise  # unreachable: abort raises

    return parse


class RequestDecodingInterceptor(grpc.ServerInterceptor):
    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        handler = continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        parse = _parser(handler_call_details.method, handler.request_deserializer)
        serializer = handler.response_serializer

        if handler.request_streaming:

            def parsed(raw_requests: Iterator[bytes], context: grpc.ServicerContext) -> Iterator[Any]:
                for raw in raw_requests:
                    yield parse(raw, context)

            if handler.response_streaming:
                inner_ss = handler.stream_stream

                def stream_stream(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
                    return inner_ss(parsed(requests, context), context)

                return grpc.stream_stream_rpc_method_handler(stream_stream, response_serializer=serializer)
            inner_su = handler.stream_unary

            def stream_unary(requests: Iterator[bytes], context: grpc.ServicerContext) -> Any:
                return inner_su(parsed(requests, context), context)

            return grpc.stream_unary_rpc_method_handler(stream_unary, response_serializer=serializer)

        if handler.response_streaming:
            inner_us = handler.unary_stream

            def unary_stream(raw: bytes, context: grpc.ServicerContext) -> Any:
                return inner_us(parse(raw, context), context)

            return grpc.unary_stream_rpc_method_handler(unary_stream, response_serializer=serializer)
        inner_uu = handler.unary_unary

        def unary_unary(raw: bytes, context: grpc.ServicerContext) -> Any:
            return inner_uu(parse(raw, context), context)

        return grpc.unary_unary_rpc_method_handler(unary_unary, response_serializer=serializer)
