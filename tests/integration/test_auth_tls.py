"""Bearer-token auth (read-only and admin roles) and TLS / mutual TLS on the real server.

Certificates come from a throwaway CA made in the test (trustme); tokens from ``secrets``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
import trustme
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rewrite_detector import Client, errors
from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector_server.app import create_server
from rewrite_detector_server.auth import (
    AuthConfigError,
    Role,
    TokenTable,
    check_exposure,
    is_loopback,
    required_role,
)
from rewrite_detector_server.config import Settings

ARTICLE = (
    "The harbour authority approved a 40 million euro expansion of the container terminal on Monday.\n\n"
    "Work on the new quay is due to start in March and finish within three years."
)
ADMIN_TOKEN = secrets.token_urlsafe(32)
READ_TOKEN = secrets.token_urlsafe(32)
SERVICE = pb.DESCRIPTOR.services_by_name["RewriteDetector"]
READ_ONLY = {"Check", "CheckStream", "Compare", "GetArticle", "ListArticles", "GetStats"}

# Every RPC, called the way a client would; each returns something truthy on success.
CALLS: dict[str, Callable[[Client], Any]] = {
    "IndexArticle": lambda c: c.index_article("new", ARTICLE),
    "IndexArticles": lambda c: list(c.index_articles([{"id": "bulk", "text": ARTICLE}])),
    "DeleteArticle": lambda c: c.delete_article("seed"),
    "GetArticle": lambda c: c.get_article("seed"),
    "ListArticles": lambda c: c.list_articles(),
    "GetStats": lambda c: c.stats(),
    "Check": lambda c: c.check(ARTICLE),
    "CheckStream": lambda c: list(c.check_stream([{"text": ARTICLE}])),
    "Compare": lambda c: c.compare(ARTICLE, ARTICLE),
}


def test_every_rpc_has_the_intended_role() -> None:
    assert set(CALLS) == {m.name for m in SERVICE.methods}
    for method in SERVICE.methods:
        expected = Role.READ if method.name in READ_ONLY else Role.ADMIN
        assert required_role(f"/{SERVICE.full_name}/{method.name}") is expected, method.name
    assert required_role("/grpc.health.v1.Health/Check") is None
    assert required_role("/grpc.health.v1.Health/Watch") is None
    # Fails closed: a method nobody classified needs admin.
    assert required_role(f"/{SERVICE.full_name}/DropEverything") is Role.ADMIN
    assert required_role("/other.Service/Method") is Role.ADMIN


@pytest.fixture
def authed_server(start_server, hashing_embedder, caplog):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    server = start_server(hashing_embedder, admin_token=ADMIN_TOKEN, read_token=READ_TOKEN)
    with Client(server.target, token=ADMIN_TOKEN, retries=0) as admin:
        admin.index_article("seed", ARTICLE)
    return server


def fingerprint(target: str) -> tuple[int, int, str]:
    with Client(target, token=ADMIN_TOKEN, retries=0) as admin:
        stats = admin.stats()
        return stats.article_count, stats.vector_count, admin.get_article("seed").article.text


@pytest.mark.parametrize("method", sorted(CALLS))
def test_no_or_bad_token_is_unauthenticated(authed_server, method: str) -> None:
    before = fingerprint(authed_server.target)
    for token in (None, "not-a-valid-token-at-all", ADMIN_TOKEN[:-1]):
        with (
            Client(authed_server.target, token=token, retries=0) as client,
            pytest.raises(errors.Unauthenticated, match="credentials"),
        ):
            CALLS[method](client)
    assert fingerprint(authed_server.target) == before


def test_malformed_authorization_header_is_unauthenticated(authed_server) -> None:
    with grpc.insecure_channel(authed_server.target) as channel:
        stats = channel.unary_unary(
            f"/{SERVICE.full_name}/GetStats",
            request_serializer=pb.GetStatsRequest.SerializeToString,
            response_deserializer=pb.GetStatsResponse.FromString,
        )
        with pytest.raises(grpc.RpcError) as caught:
            stats(pb.GetStatsRequest(), metadata=[("authorization", f"Basic {ADMIN_TOKEN}")], timeout=10)
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    assert "Bearer" in caught.value.details()


@pytest.mark.parametrize("method", sorted(CALLS))
def test_read_token_may_read_but_not_write(authed_server, method: str) -> None:
    before = fingerprint(authed_server.target)
    with Client(authed_server.target, token=READ_TOKEN, retries=0) as reader:
        if method in READ_ONLY:
            assert CALLS[method](reader)
        else:
            with pytest.raises(errors.PermissionDenied, match=f"{method} needs the admin role"):
                CALLS[method](reader)
    assert fingerprint(authed_server.target) == before


@pytest.mark.parametrize("method", sorted(CALLS))
def test_admin_token_may_do_everything(authed_server, method: str) -> None:
    with Client(authed_server.target, token=ADMIN_TOKEN, retries=0) as admin:
        assert CALLS[method](admin)


def test_health_is_open_and_reflection_needs_a_token(authed_server) -> None:
    with grpc.insecure_channel(authed_server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=SERVICE.full_name), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING

        reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        with pytest.raises(grpc.RpcError) as caught:
            list(reflection.ServerReflectionInfo(iter([request]), timeout=5))
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
        (reply,) = list(
            reflection.ServerReflectionInfo(
                iter([request]), timeout=5, metadata=[("authorization", f"Bearer {READ_TOKEN}")]
            )
        )
        assert SERVICE.full_name in {s.name for s in reply.list_services_response.service}
    # Client.wait_ready uses the health service: works without a token.
    with Client(authed_server.target, retries=0) as anonymous:
        anonymous.wait_ready(timeout=5)


def test_tokens_never_reach_the_logs(authed_server, caplog) -> None:
    for token in (None, "wrong-token-wrong-token", READ_TOKEN, ADMIN_TOKEN):
        with Client(authed_server.target, token=token, retries=0) as client:
            for call in CALLS.values():
                with contextlib.suppress(errors.RewriteDetectorError):
                    call(client)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert "auth=denied reason=no-token" in text and "reason=role principal=env-read" in text
    for secret in (ADMIN_TOKEN, READ_TOKEN, "wrong-token-wrong-token"):
        assert secret not in text
    settings = Settings(admin_token=ADMIN_TOKEN, read_token=READ_TOKEN)
    assert ADMIN_TOKEN not in repr(settings) and READ_TOKEN not in repr(settings)
    assert ADMIN_TOKEN not in repr(TokenTable.from_settings(settings))


# ------------------------------------------------------------------------------------------ config


def test_tokens_file_json_and_toml_with_hashes(tmp_path: Path, start_server, hashing_embedder) -> None:
    import hashlib

    reader_token = secrets.token_hex(16)
    digest = hashlib.sha256(reader_token.encode()).hexdigest()
    json_file = tmp_path / "tokens.json"
    json_file.write_text(
        json.dumps(
            {
                "tokens": [
                    {"name": "pipeline", "role": "read", "sha256": digest},
                    {"name": "ops", "role": "admin", "token": ADMIN_TOKEN},
                ]
            }
        )
    )
    toml_file = tmp_path / "tokens.toml"
    toml_file.write_text(f'[[tokens]]\nname = "pipeline"\nrole = "read"\nsha256 = "{digest}"\n')

    from_toml = TokenTable.from_settings(Settings(tokens_file=str(toml_file)))
    assert len(from_toml) == 1 and from_toml.authenticate(reader_token).role is Role.READ  # type: ignore[union-attr]
    assert from_toml.authenticate(digest) is None  # the digest itself is not a token

    settings = Settings.from_env({"REWRITE_DETECTOR_TOKENS_FILE": str(json_file)})
    server = start_server(hashing_embedder, tokens_file=settings.tokens_file)
    with Client(server.target, token=reader_token, retries=0) as reader:
        assert reader.stats().article_count == 0
        with pytest.raises(errors.PermissionDenied):
            reader.index_article("x", ARTICLE)
    with Client(server.target, token=ADMIN_TOKEN, retries=0) as admin:
        assert admin.index_article("x", ARTICLE).created


def test_tokens_from_environment() -> None:
    settings = Settings.from_env(
        {"REWRITE_DETECTOR_ADMIN_TOKEN": ADMIN_TOKEN, "REWRITE_DETECTOR_READ_TOKEN": READ_TOKEN}
    )
    tokens = TokenTable.from_settings(settings)
    assert tokens.authenticate(ADMIN_TOKEN).role is Role.ADMIN  # type: ignore[union-attr]
    assert tokens.authenticate(READ_TOKEN).role is Role.READ  # type: ignore[union-attr]
    assert tokens.authenticate("") is None and tokens.authenticate(READ_TOKEN + "x") is None
    assert not TokenTable.from_settings(Settings.from_env({}))  # nothing configured: auth off


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "not valid JSON"),
        ('{"tokens": []}', "non-empty 'tokens' list"),
        ('{"tokens": [{"role": "root", "token": "' + "x" * 20 + '"}]}', "role 'root'"),
        ('{"tokens": [{"role": "read", "token": "short"}]}', "at least 16 characters"),
        ('{"tokens": [{"role": "read", "sha256": "abc"}]}', "64 hex digits"),
        ('{"tokens": [{"role": "read"}]}', "neither 'token' nor 'sha256'"),
    ],
)
def test_bad_tokens_file_is_refused_with_a_reason(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "tokens.json"
    path.write_text(content)
    with pytest.raises(AuthConfigError, match=message):
        TokenTable.from_settings(Settings(tokens_file=str(path)))
    with pytest.raises(AuthConfigError, match="cannot read tokens file"):
        TokenTable.from_settings(Settings(tokens_file=str(tmp_path / "missing.json")))
    with pytest.raises(AuthConfigError, match="REWRITE_DETECTOR_ADMIN_TOKEN"):
        TokenTable.from_settings(Settings(admin_token="abc"))


def test_open_server_refuses_a_public_address(hashing_embedder, tmp_path: Path) -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("[::1]")
    assert not is_loopback("0.0.0.0") and not is_loopback("example.org") and not is_loopback("10.1.2.3")
    with pytest.raises(AuthConfigError, match=r"refusing to listen on '0\.0\.0\.0' without authentication"):
        create_server(object(), "0.0.0.0:0", Settings(data_dir=tmp_path))  # type: ignore[arg-type]
    tokens = TokenTable.from_settings(Settings(read_token=READ_TOKEN))
    check_exposure("0.0.0.0", tokens, Settings())  # tokens configured: allowed
    check_exposure("0.0.0.0", TokenTable(), Settings(insecure_no_auth=True))  # explicit opt-out: allowed
    assert Settings.from_env({"REWRITE_DETECTOR_INSECURE_NO_AUTH": "true"}).insecure_no_auth is True


def test_serve_cli_refuses_a_public_address_before_loading_the_model(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from rewrite_detector.cli import app

    result = CliRunner().invoke(
        app, ["serve", "--host", "0.0.0.0", "--port", "0", "--data-dir", str(tmp_path), "--model", "hashing"]
    )
    assert result.exit_code == 2
    assert "--insecure-no-auth" in result.output
    assert not (tmp_path / "store.sqlite3").exists()


# --------------------------------------------------------------------------------------------- TLS


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def tls_files(ca: trustme.CA, directory: Path) -> dict[str, str]:
    server_cert = ca.issue_cert("127.0.0.1", "localhost")
    cert, key = directory / "server.pem", directory / "server.key"
    server_cert.cert_chain_pems[0].write_to_path(str(cert))
    server_cert.private_key_pem.write_to_path(str(key))
    ca_file = directory / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    return {"tls_cert": str(cert), "tls_key": str(key), "ca": str(ca_file)}


def test_tls_server(start_server, hashing_embedder, ca: trustme.CA, tmp_path: Path) -> None:
    files = tls_files(ca, tmp_path)
    server = start_server(hashing_embedder, tls_cert=files["tls_cert"], tls_key=files["tls_key"])
    with Client(server.target, root_certificates=ca.cert_pem.bytes(), retries=0) as client:
        assert client.index_article("a", ARTICLE).created
        assert client.check(ARTICLE).verdict == pb.NEAR_DUPLICATE
    # A plaintext client, or one trusting another CA, cannot talk to it.
    with Client(server.target, retries=0, timeout=3) as plain, pytest.raises(errors.Unavailable):
        plain.stats()
    stranger = trustme.CA()
    other = Client(server.target, root_certificates=stranger.cert_pem.bytes(), retries=0, timeout=3)
    with other, pytest.raises(errors.Unavailable):
        other.stats()


def test_mutual_tls_with_tokens(start_server, hashing_embedder, ca: trustme.CA, tmp_path: Path) -> None:
    files = tls_files(ca, tmp_path)
    server = start_server(
        hashing_embedder,
        tls_cert=files["tls_cert"],
        tls_key=files["tls_key"],
        tls_client_ca=files["ca"],
        admin_token=ADMIN_TOKEN,
    )
    client_cert = ca.issue_cert("moderation-pipeline@example.org")
    root = ca.cert_pem.bytes()
    with Client(
        server.target,
        root_certificates=root,
        client_certificate=client_cert.cert_chain_pems[0].bytes(),
        client_key=client_cert.private_key_pem.bytes(),
        token=ADMIN_TOKEN,
        retries=0,
    ) as client:
        assert client.index_article("a", ARTICLE).created
    # The right CA but no client certificate: the handshake fails.
    anonymous = Client(server.target, root_certificates=root, token=ADMIN_TOKEN, retries=0, timeout=3)
    with anonymous, pytest.raises(errors.Unavailable):
        anonymous.stats()
    # A certificate alone is not enough: the token is still required.
    with (
        Client(
            server.target,
            root_certificates=root,
            client_certificate=client_cert.cert_chain_pems[0].bytes(),
            client_key=client_cert.private_key_pem.bytes(),
            retries=0,
        ) as no_token,
        pytest.raises(errors.Unauthenticated),
    ):
        no_token.stats()


def test_tls_misconfiguration_is_refused(hashing_embedder, tmp_path: Path, ca: trustme.CA) -> None:
    files = tls_files(ca, tmp_path)
    with pytest.raises(AuthConfigError, match="both tls_cert and tls_key"):
        create_server(object(), "127.0.0.1:0", Settings(tls_cert=files["tls_cert"]))  # type: ignore[arg-type]
    with pytest.raises(AuthConfigError, match="cannot read tls_key"):
        create_server(
            object(),  # type: ignore[arg-type]
            "127.0.0.1:0",
            Settings(tls_cert=files["tls_cert"], tls_key=str(tmp_path / "nope.key")),
        )
    with pytest.raises(ValueError, match="together"):
        Client("127.0.0.1:1", client_certificate=b"cert")
