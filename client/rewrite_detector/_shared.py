"""What the sync and asyncio clients share: target resolution, channel options, retry policy and the
conversion of plain dicts into request messages. No I/O here."""

from __future__ import annotations

import functools
import os
import random
from collections.abc import Iterable, Mapping
from typing import Any

import grpc

from rewrite_detector.v1 import detector_pb2 as pb

TARGET_ENV = "REWRITE_DETECTOR_SERVER"
DEFAULT_TARGET = "127.0.0.1:50051"

# Backoff between retries of a unary call that failed with UNAVAILABLE: BASE * 2**attempt, capped, with
# +-20% jitter; never past the call's overall deadline.
BACKOFF_BASE = 0.2
BACKOFF_MAX = 5.0

HEALTH_CHECK_METHOD = "/grpc.health.v1.Health/Check"
HEALTH_SERVING = 1

ArticleLike = pb.Article | pb.IndexArticleRequest | Mapping[str, Any]
CheckLike = pb.CheckRequest | Mapping[str, Any]
# "auto" (sniff), "text", "markdown", "html" (any case), or a ``pb.TextFormat`` value.
TextFormatLike = str | int

_ARTICLE_FIELDS = frozenset({"id", "text", "title", "url", "published_at", "metadata", "format"})
_CHECK_FIELDS = frozenset({"text", "title", "published_at", "request_id", "options", "format"})
TEXT_FORMAT_NAMES = ("auto", "text", "markdown", "html")
_TEXT_FORMATS: dict[str, pb.TextFormat.ValueType] = {
    "auto": pb.TEXT_FORMAT_UNSPECIFIED,
    "text": pb.TEXT,
    "markdown": pb.MARKDOWN,
    "html": pb.HTML,
}
_OPTION_FIELDS = frozenset({"max_sources", "min_similarity", "source_ids", "include_texts"})


def resolve_target(target: str | None) -> str:
    """``target``, else ``$REWRITE_DETECTOR_SERVER``, else ``127.0.0.1:50051`` (read at call time)."""
    return target or os.environ.get(TARGET_ENV) or DEFAULT_TARGET


@functools.lru_cache(maxsize=1)
def package_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("rewrite-detector")
    except PackageNotFoundError:
        return "0+unknown"


def channel_options(max_message_mb: int) -> list[tuple[str, Any]]:
    if max_message_mb <= 0:
        raise ValueError(f"max_message_mb must be positive, got {max_message_mb}")
    size = int(max_message_mb) * 1024 * 1024
    return [
        ("grpc.max_send_message_length", size),
        ("grpc.max_receive_message_length", size),
        # Reconnect soon after a refused connection so that retries can reach a server that just started.
        ("grpc.initial_reconnect_backoff_ms", 200),
        ("grpc.max_reconnect_backoff_ms", 5000),
        ("grpc.primary_user_agent", f"rewrite-detector-python/{package_version()}"),
    ]


def call_metadata(token: str | None) -> tuple[tuple[str, str], ...] | None:
    if not token:
        return None
    return (("authorization", f"Bearer {token}"),)


def tls_credentials(
    root_certificates: bytes | None, client_certificate: bytes | None, client_key: bytes | None
) -> grpc.ChannelCredentials | None:
    """TLS channel credentials, or None for a plaintext channel (no TLS option given)."""
    if (client_certificate is None) != (client_key is None):
        raise ValueError("give client_certificate and client_key together (mutual TLS needs both)")
    if root_certificates is None and client_certificate is None:
        return None
    # root_certificates=None with a client certificate: verify the server against the system roots.
    return grpc.ssl_channel_credentials(
        root_certificates=root_certificates, private_key=client_key, certificate_chain=client_certificate
    )


def validate_settings(timeout: float | None, retries: int) -> None:
    if timeout is not None and timeout <= 0:
        raise ValueError(f"timeout must be positive, got {timeout}")
    if retries < 0:
        raise ValueError(f"retries must be >= 0, got {retries}")


def backoff_delay(attempt: int) -> float:
    """Delay before retry number ``attempt`` (0-based)."""
    return min(BACKOFF_MAX, BACKOFF_BASE * (2**attempt)) * random.uniform(0.8, 1.2)


def status_code(err: grpc.RpcError) -> grpc.StatusCode | None:
    code_fn = getattr(err, "code", None)
    return code_fn() if callable(code_fn) else None


def parse_health_status(data: bytes) -> int:
    """Decode ``grpc.health.v1.HealthCheckResponse`` (one enum field, number 1) without its package."""
    if len(data) >= 2 and data[0] == 0x08:
        return data[1]
    return 0


def text_format(value: TextFormatLike) -> pb.TextFormat.ValueType:
    """The ``pb.TextFormat`` value for ``"auto"``, ``"text"``, ``"markdown"``, ``"html"`` or an enum value."""
    if isinstance(value, str) and value.strip().lower() in _TEXT_FORMATS:
        return _TEXT_FORMATS[value.strip().lower()]
    if isinstance(value, int) and not isinstance(value, bool) and value in _TEXT_FORMATS.values():
        return pb.TextFormat.ValueType(value)
    raise ValueError(f"unknown text format {value!r}: use one of {', '.join(TEXT_FORMAT_NAMES)}")


def _drop_none(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in fields.items() if v is not None}


def make_article(
    id: str,
    text: str,
    *,
    title: str = "",
    url: str = "",
    published_at: str = "",
    metadata: Mapping[str, str] | None = None,
    format: TextFormatLike = "auto",
) -> pb.Article:
    return pb.Article(
        id=id,
        text=text,
        title=title,
        url=url,
        published_at=published_at,
        metadata=dict(metadata or {}),
        format=text_format(format),
    )


def index_request(item: ArticleLike) -> pb.IndexArticleRequest:
    """An ``IndexArticleRequest`` from an ``Article``, a request, or a dict with Article's field names."""
    if isinstance(item, pb.IndexArticleRequest):
        return item
    if isinstance(item, pb.Article):
        return pb.IndexArticleRequest(article=item)
    if isinstance(item, Mapping):
        unknown = set(item) - _ARTICLE_FIELDS
        if unknown:
            raise ValueError(f"unknown article field(s): {', '.join(sorted(unknown))}")
        if "id" not in item or "text" not in item:
            raise ValueError("an article needs 'id' and 'text'")
        return pb.IndexArticleRequest(article=make_article(**_drop_none(item)))
    raise TypeError(f"expected an Article, IndexArticleRequest or dict, got {type(item).__name__}")


def make_check_request(
    text: str,
    *,
    title: str = "",
    source_ids: Iterable[str] = (),
    max_sources: int = 0,
    min_similarity: float = 0.0,
    include_texts: bool = False,
    published_at: str = "",
    request_id: str = "",
    format: TextFormatLike = "auto",
) -> pb.CheckRequest:
    if isinstance(source_ids, str):
        raise TypeError("source_ids must be a sequence of ids, not a single string")
    return pb.CheckRequest(
        text=text,
        title=title,
        published_at=published_at,
        request_id=request_id,
        format=text_format(format),
        options=pb.CheckOptions(
            max_sources=max_sources,
            min_similarity=min_similarity,
            source_ids=list(source_ids),
            include_texts=include_texts,
        ),
    )


def check_request(item: CheckLike, position: int) -> pb.CheckRequest:
    """A ``CheckRequest`` from a message or a dict.

    Dict keys: text, title, published_at, request_id, format, and the options either nested under ``options``
    (a dict or ``CheckOptions``) or flat (max_sources, min_similarity, source_ids, include_texts).
    An empty request_id becomes the item's position in the stream (``"0"``, ``"1"``...) so responses can
    always be matched to requests.
    """
    if isinstance(item, pb.CheckRequest):
        request = item
    elif isinstance(item, Mapping):
        fields = _drop_none(item)
        unknown = set(fields) - _CHECK_FIELDS - _OPTION_FIELDS
        if unknown:
            raise ValueError(f"unknown check field(s): {', '.join(sorted(unknown))}")
        if "text" not in fields:
            raise ValueError("a check request needs 'text'")
        if "format" in fields:
            fields["format"] = text_format(fields["format"])
        nested = fields.pop("options", None)
        flat = {k: fields.pop(k) for k in list(fields) if k in _OPTION_FIELDS}
        if isinstance(nested, pb.CheckOptions):
            if flat:
                raise ValueError("give the options either flat or under 'options', not both")
            request = pb.CheckRequest(**fields, options=nested)
        else:
            options = dict(nested or {})
            if set(options) - _OPTION_FIELDS:
                bad = ", ".join(sorted(set(options) - _OPTION_FIELDS))
                raise ValueError(f"unknown check option(s): {bad}")
            request = make_check_request(**fields, **{**options, **flat})
    else:
        raise TypeError(f"expected a CheckRequest or dict, got {type(item).__name__}")
    if not request.request_id:
        numbered = pb.CheckRequest()
        numbered.CopyFrom(request)
        numbered.request_id = str(position)
        request = numbered
    return request
