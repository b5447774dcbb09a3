"""The client's exceptions: every ``grpc.RpcError`` leaves the library as one of these.

One mapping point (:func:`from_rpc_error`), used as ``raise from_rpc_error(err) from err`` so the original
gRPC error stays available as ``__cause__``.
"""

from __future__ import annotations

import grpc

__all__ = [
    "DeadlineExceeded",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "RewriteDetectorError",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "from_rpc_error",
]


class RewriteDetectorError(Exception):
    """Base class of every error raised by the rewrite-detector client.

    ``code`` is the gRPC status code when the error came from a call (``None`` otherwise) and ``details``
    the server's (or gRPC's) message.
    """

    def __init__(self, details: str = "", *, code: grpc.StatusCode | None = None) -> None:
        super().__init__(details)
        self.details = details
        self.code = code

    def __str__(self) -> str:
        if self.code is None:
            return self.details
        return f"{self.code.name}: {self.details}" if self.details else self.code.name


class InvalidArgument(RewriteDetectorError):
    """The request was rejected as malformed (bad id, empty text, out-of-range option...)."""


class NotFound(RewriteDetectorError):
    """An article id (or a ``source_ids`` entry) is not indexed."""


class ResourceExhausted(RewriteDetectorError):
    """A size or rate limit was hit (message too large, too many requests)."""


class Unauthenticated(RewriteDetectorError):
    """No valid bearer token was sent."""


class PermissionDenied(RewriteDetectorError):
    """The token is valid but its role may not do this (e.g. a read-only token indexing)."""


class Unavailable(RewriteDetectorError):
    """The server cannot be reached, is starting up or shutting down. Retried for unary calls."""


class DeadlineExceeded(RewriteDetectorError):
    """The call did not finish within its timeout."""


class ServerError(RewriteDetectorError):
    """Any other failure: internal error, unimplemented method, cancelled call..."""


_BY_CODE: dict[grpc.StatusCode, type[RewriteDetectorError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
}


def error_class_for(code: grpc.StatusCode | None) -> type[RewriteDetectorError]:
    """The exception class for a status code; :class:`ServerError` for anything unmapped."""
    if code is None:
        return ServerError
    return _BY_CODE.get(code, ServerError)


def from_rpc_error(err: grpc.RpcError) -> RewriteDetectorError:
    """Translate a ``grpc.RpcError`` (sync or ``grpc.aio``) into the matching library exception.

    Returns the exception; the caller raises it with ``raise from_rpc_error(err) from err``.
    """
    code_fn = getattr(err, "code", None)
    details_fn = getattr(err, "details", None)
    code = code_fn() if callable(code_fn) else None
    details = details_fn() if callable(details_fn) else None
    if not isinstance(code, grpc.StatusCode):
        code = None
    return error_class_for(code)(details or str(err) or "", code=code)
