"""Structured logs: one ``key=value`` line per record, with the id of the request being served.

The request id lives in a ``ContextVar`` set by the observability interceptor for the duration of an RPC
(the caller's ``x-request-id`` metadata when it is a sane token, else a fresh one); ``RequestIdFilter``
copies it onto every record a handler emits, so lines logged anywhere below the servicer — detector,
storage, Milvus — carry it without passing it around. Outside an RPC the id is ``-``.

Only the request id is ever taken from the caller's metadata: other headers (``authorization`` above
all) are never logged.
"""

from __future__ import annotations

import contextlib
import logging
import re
import sys
import time
import uuid
from collections.abc import Iterator
from contextvars import ContextVar
from typing import TextIO

__all__ = [
    "LOG_FORMAT",
    "NO_REQUEST_ID",
    "REQUEST_ID_HEADER",
    "KeyValueFormatter",
    "RequestIdFilter",
    "accept_request_id",
    "configure_logging",
    "current_request_id",
    "request_id_scope",
]

REQUEST_ID_HEADER = "x-request-id"
NO_REQUEST_ID = "-"
LOG_FORMAT = "ts=%(asctime)s level=%(levelname)s logger=%(name)s request_id=%(request_id)s %(message)s"

# What a caller may choose as its request id: a token that cannot break a key=value line or forge
# another field (no spaces, quotes, '=' or newlines) and stays short.
_ACCEPTABLE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+-]{1,128}")

_request_id: ContextVar[str] = ContextVar("rewrite_detector_request_id", default=NO_REQUEST_ID)


def current_request_id() -> str:
    """The id of the RPC being served on this thread, or ``-`` outside one."""
    return _request_id.get()


def accept_request_id(proposed: str | None) -> str:
    """The caller's id if it is acceptable, otherwise a fresh random one (32 hex characters)."""
    if proposed and _ACCEPTABLE_REQUEST_ID.fullmatch(proposed):
        return proposed
    return uuid.uuid4().hex


@contextlib.contextmanager
def request_id_scope(request_id: str) -> Iterator[None]:
    """Make ``request_id`` current until the block exits (thread pools reuse threads: always reset)."""
    token = _request_id.set(request_id)
    try:
        yield
    finally:
        # A generator finalised by the garbage collector runs this in another context, where the token
        # is foreign; the next RPC on the original thread sets its own id anyway.
        with contextlib.suppress(ValueError):
            _request_id.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request id) to every record; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = _request_id.get()
        return True


class KeyValueFormatter(logging.Formatter):
    """``LOG_FORMAT`` with UTC ISO-8601 timestamps (``2025-01-31T12:00:00.123Z``)."""

    def __init__(self) -> None:
        super().__init__(LOG_FORMAT)

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"


_installed: logging.Handler | None = None


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> logging.Handler:
    """Send the root logger's records to ``stream`` (stderr) as key=value lines with request ids.

    Called by the server's entry point, never at import. Calling it again replaces the handler it
    installed before instead of adding a second one.
    """
    global _installed
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    if _installed is not None:
        root.removeHandler(_installed)
    root.addHandler(handler)
    root.setLevel(level.upper())
    _installed = handler
    return handler
