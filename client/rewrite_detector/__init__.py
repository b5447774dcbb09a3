"""rewrite-detector client: is a news article a rewrite of an indexed source, and which paragraphs align?

The light half of the distribution: grpcio + protobuf only (no torch, numpy or FAISS; the CLI adds typer and
rich, imported only when the CLI runs). The generated messages live in ``rewrite_detector.v1.detector_pb2``.
"""

from __future__ import annotations

from typing import Any

from rewrite_detector.aio import AsyncClient
from rewrite_detector.client import Client
from rewrite_detector.errors import (
    DeadlineExceeded,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    RewriteDetectorError,
    ServerError,
    Unauthenticated,
    Unavailable,
)

__all__ = [
    "AsyncClient",
    "Client",
    "DeadlineExceeded",
    "InvalidArgument",
    "NotFound",
    "PermissionDenied",
    "ResourceExhausted",
    "RewriteDetectorError",
    "ServerError",
    "Unauthenticated",
    "Unavailable",
    "__version__",
]


def __getattr__(name: str) -> Any:
    # __version__ is resolved on first access (importlib.metadata scans sys.path; keep imports cheap).
    if name == "__version__":
        from rewrite_detector._shared import package_version

        return package_version()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
