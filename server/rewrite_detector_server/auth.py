"""Bearer-token auth with two roles, TLS credentials, and the refusal to expose an open server.

Roles: ``read`` may call Check, CheckStream, Compare, GetArticle, ListArticles, GetStats (and server
reflection); ``admin`` may call everything, including IndexArticle(s) and DeleteArticle. The standard
health service stays open so load balancers and orchestrators can probe without a token.

Tokens come from a tokens file (``tokens_file``, JSON or TOML) and/or the ``admin_token`` / ``read_token``
settings (``REWRITE_DETECTOR_ADMIN_TOKEN`` / ``REWRITE_DETECTOR_READ_TOKEN``). Only SHA-256 digests are
kept in memory, compared with ``hmac.compare_digest``. Token values never reach a log line, an error
message or a ``repr``; denials log the method, the reason and, for a known token, its entry's name.

No tokens configured = auth off, which is only allowed on a loopback address unless the operator says
``insecure_no_auth`` (``--insecure-no-auth``) explicitly.

Hand-written rather than a library because gRPC's Python server has no built-in bearer-token auth; an
interceptor is the mechanism grpc documents for it (``examples/python/auth``).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import ipaddress
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from rewrite_detector.v1 import detector_pb2
from rewrite_detector_server.config import Settings

try:
    import tomllib
except ImportError:  # Python 3.10: tokens files must be JSON there
    tomllib = None  # type: ignore[assignment]

__all__ = [
    "AuthConfigError",
    "AuthInterceptor",
    "Role",
    "TokenTable",
    "check_exposure",
    "exposure_warnings",
    "is_loopback",
    "required_role",
    "server_credentials",
]

logger = logging.getLogger(__name__)

# A bearer token is a password: shorter ones are guessable online. 16 characters of a random alphabet
# (e.g. `python -c "import secrets; print(secrets.token_urlsafe(32))"`) is the floor we accept.
MIN_TOKEN_LENGTH = 16

_SERVICE = detector_pb2.DESCRIPTOR.services_by_name["RewriteDetector"].full_name
_HEALTH_PREFIX = "/grpc.health.v1.Health/"
_REFLECTION_PREFIXES = (
    "/grpc.reflection.v1alpha.ServerReflection/",
    "/grpc.reflection.v1.ServerReflection/",
)


class AuthConfigError(Exception):
    """The auth/TLS configuration cannot be used; the message says what to change. Raised at start-up."""


class Role(enum.IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    READ = 1
    ADMIN = 2

    @classmethod
    def parse(cls, value: object, where: str) -> Role:
        names = {"read": cls.READ, "read-only": cls.READ, "readonly": cls.READ, "admin": cls.ADMIN}
        role = names.get(str(value).strip().lower())
        if role is None:
            raise AuthConfigError(f"{where}: role {value!r} is not one of 'read', 'admin'")
        return role


_READ_METHODS = frozenset({"Check", "CheckStream", "Compare", "GetArticle", "ListArticles", "GetStats"})


def required_role(method: str) -> Role | None:
    """Role a full method name (``/package.Service/Method``) needs; None = open to everybody.

    Fails closed: a method of this service that is not known to be read-only (e.g. one added to the
    proto later) needs ``admin``.
    """
    if method.startswith(_HEALTH_PREFIX):
        return None
    if method.startswith(_REFLECTION_PREFIXES):
        return Role.READ
    service, _, name = method.lstrip("/").partition("/")
    if service == _SERVICE and name in _READ_METHODS:
        return Role.READ
    return Role.ADMIN


@dataclass(frozen=True, slots=True)
class _Entry:
    digest: bytes  # SHA-256 of the token
    role: Role
    name: str  # shown in logs instead of the token


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8")).digest()


class TokenTable:
    """The configured tokens (as digests) and their roles."""

    def __init__(self, entries: Iterable[_Entry] = ()) -> None:
        self._entries = tuple(entries)

    def __bool__(self) -> bool:
        return bool(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        roles = [f"{e.name}:{e.role.name.lower()}" for e in self._entries]
        return f"TokenTable({', '.join(roles)})"

    @classmethod
    def from_settings(cls, settings: Settings) -> TokenTable:
        entries: list[_Entry] = []
        if settings.tokens_file:
            entries.extend(_load_tokens_file(Path(settings.tokens_file)))
        for token, role, name, variable in (
            (settings.admin_token, Role.ADMIN, "env-admin", "REWRITE_DETECTOR_ADMIN_TOKEN"),
            (settings.read_token, Role.READ, "env-read", "REWRITE_DETECTOR_READ_TOKEN"),
        ):
            if token:
                _check_token(token, variable)
                entries.append(_Entry(_digest(token), role, name))
        return cls(entries)

    def authenticate(self, token: str) -> _Entry | None:
        """The entry ``token`` belongs to, or None.

        Compares against every entry, without stopping at the first match, so the time taken does not
        depend on which entry (if any) matched.
        """
        presented = _digest(token)
        found: _Entry | None = None
        for entry in self._entries:
            if hmac.compare_digest(presented, entry.digest) and found is None:
                found = entry
        return found


def _check_token(token: str, where: str) -> None:
    if len(token) < MIN_TOKEN_LENGTH or token != token.strip():
        raise AuthConfigError(
            f"{where}: tokens must be at least {MIN_TOKEN_LENGTH} characters without surrounding "
            "whitespace; generate one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
        )


def _load_tokens_file(path: Path) -> list[_Entry]:
    """Read a tokens file.

    JSON or TOML (by extension: ``.toml`` is TOML, anything else JSON), of the shape::

        [[tokens]]
        name = "moderation-pipeline"   # optional; logged instead of the token
        role = "read"                  # or "admin"
        sha256 = "9f86d0..."           # hex SHA-256 of the token (`printf %s TOKEN | sha256sum`)
        # or, less safe on disk:  token = "<the token itself>"

    JSON: ``{"tokens": [{"name": "...", "role": "read", "sha256": "..."}]}``.
    """
    try:
        raw_text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise AuthConfigError(f"cannot read tokens file {path}: {err.strerror or err}") from err
    is_toml = path.suffix == ".toml"
    if is_toml and tomllib is None:
        raise AuthConfigError(f"tokens file {path}: TOML needs Python 3.11+; write it as JSON instead")
    try:
        data: Any = tomllib.loads(raw_text) if is_toml else json.loads(raw_text)
    except ValueError as err:  # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors
        raise AuthConfigError(
            f"tokens file {path} is not valid {'TOML' if is_toml else 'JSON'}: {err}"
        ) from err
    items = data.get("tokens") if isinstance(data, Mapping) else None
    if not isinstance(items, list) or not items:
        raise AuthConfigError(f"tokens file {path} needs a non-empty 'tokens' list of {{role, sha256|token}}")
    entries = []
    for position, item in enumerate(items):
        where = f"{path} tokens[{position}]"
        if not isinstance(item, Mapping):
            raise AuthConfigError(f"{where} must be a table/object with 'role' and 'sha256' or 'token'")
        role = Role.parse(item.get("role"), where)
        name = str(item.get("name") or f"{path.name}[{position}]")
        if "token" in item and "sha256" in item:
            raise AuthConfigError(f"{where}: give either 'token' or 'sha256', not both")
        if "token" in item:
            token = str(item["token"])
            _check_token(token, where)
            digest = _digest(token)
        elif "sha256" in item:
            try:
                digest = bytes.fromhex(str(item["sha256"]))
            except ValueError:
                digest = b""
            if len(digest) != hashlib.sha256().digest_size:
                raise AuthConfigError(f"{where}: 'sha256' must be 64 hex digits (sha256sum of the token)")
        else:
            raise AuthConfigError(f"{where} has neither 'token' nor 'sha256'")
        entries.append(_Entry(digest, role, name))
    return entries


def _bearer_token(metadata: Iterable[tuple[str, str | bytes]] | None) -> str | None:
    """The token of an ``authorization: Bearer <token>`` header; "" if the header is malformed."""
    for key, value in metadata or ():
        if key.lower() == "authorization":
            text = value.decode("latin-1") if isinstance(value, bytes) else value
            scheme, _, token = text.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


def _terminator(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that fails with ``code`` without reading the request.

    No request deserializer: a refused caller's payload is never parsed.
    """

    def abort(_request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort)
    return grpc.unary_unary_rpc_method_handler(abort)


class AuthInterceptor(grpc.ServerInterceptor):
    """Checks the bearer token and the role of every call before the servicer sees it."""

    def __init__(self, tokens: TokenTable) -> None:
        if not tokens:
            raise ValueError("AuthInterceptor needs at least one token (no tokens = do not install it)")
        self._tokens = tokens

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler | None],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler | None:
        method = handler_call_details.method
        needed = required_role(method)
        handler = continuation(handler_call_details)
        if needed is None or handler is None:  # open method, or unknown method: UNIMPLEMENTED as usual
            return handler
        token = _bearer_token(handler_call_details.invocation_metadata)
        if token is None:
            logger.info("rpc=%s auth=denied reason=no-token", method)
            return _terminator(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "missing credentials: send the metadata 'authorization: Bearer <token>'",
            )
        entry = self._tokens.authenticate(token) if token else None
        if entry is None:
            logger.info("rpc=%s auth=denied reason=%s", method, "bad-token" if token else "malformed-header")
            return _terminator(
                handler,
                grpc.StatusCode.UNAUTHENTICATED,
                "invalid credentials: the bearer token is not one this server accepts"
                if token
                else "malformed credentials: the authorization metadata must be 'Bearer <token>'",
            )
        if entry.role < needed:
            logger.info("rpc=%s auth=denied reason=role principal=%s", method, entry.name)
            return _terminator(
                handler,
                grpc.StatusCode.PERMISSION_DENIED,
                f"{method.rsplit('/', 1)[-1]} needs the {needed.name.lower()} role; this token is "
                f"{entry.role.name.lower()}-only",
            )
        return handler


def is_loopback(host: str) -> bool:
    """Whether ``host`` (as given to --host) only accepts connections from this machine."""
    host = host.strip().strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # "0.0.0.0" parses; any other name may resolve to a public address


def check_exposure(host: str, tokens: TokenTable, settings: Settings) -> None:
    """Refuse to listen beyond loopback without auth unless ``insecure_no_auth`` is set explicitly."""
    if is_loopback(host):
        return
    if not tokens and not settings.insecure_no_auth:
        raise AuthConfigError(
            f"refusing to listen on {host!r} without authentication: configure tokens "
            "(REWRITE_DETECTOR_TOKENS_FILE, REWRITE_DETECTOR_ADMIN_TOKEN / REWRITE_DETECTOR_READ_TOKEN), "
            "bind 127.0.0.1, or pass --insecure-no-auth if the network is trusted"
        )


def exposure_warnings(host: str, tokens: TokenTable, settings: Settings) -> list[str]:
    """What an operator should hear about an allowed but risky exposure (logged once at start-up)."""
    if is_loopback(host):
        return []
    if not tokens:
        return [f"auth=off host={host}: anyone who can reach this port can index and delete"]
    if not settings.tls_cert:
        return [f"tls=off host={host}: bearer tokens cross the network in clear text; set tls_cert"]
    return []


def _read_pem(path_text: str, what: str) -> bytes:
    try:
        return Path(path_text).read_bytes()
    except OSError as err:
        raise AuthConfigError(f"cannot read {what} {path_text}: {err.strerror or err}") from err


def server_credentials(settings: Settings) -> grpc.ServerCredentials | None:
    """TLS credentials from ``tls_cert``/``tls_key`` (+ ``tls_client_ca`` for mutual TLS); None = plain."""
    if not (settings.tls_cert or settings.tls_key or settings.tls_client_ca):
        return None
    if not (settings.tls_cert and settings.tls_key):
        raise AuthConfigError("TLS needs both tls_cert and tls_key (PEM files); set both or neither")
    cert = _read_pem(settings.tls_cert, "tls_cert")
    key = _read_pem(settings.tls_key, "tls_key")
    client_ca = _read_pem(settings.tls_client_ca, "tls_client_ca") if settings.tls_client_ca else None
    # A client CA means mutual TLS: a client without a certificate signed by it cannot connect at all.
    return grpc.ssl_server_credentials(
        [(key, cert)], root_certificates=client_ca, require_client_auth=client_ca is not None
    )
