"""Metrics and request-id logs of the real server: scrape /metrics over HTTP, read logs with caplog."""

from __future__ import annotations

import logging
import re
import socket
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector.v1 import detector_pb2_grpc as pb_grpc
from rewrite_detector_server.logging_setup import REQUEST_ID_HEADER, RequestIdFilter

ARTICLE = (
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros.\n\n"
    "Chief executive Maria Lopez credited strong demand for its shipping services in Rotterdam.\n\n"
    "The company plans to open three new warehouses in Poland before the end of 2025."
)
SERVICE = "rewrite_detector.v1.RewriteDetector"
SECRET = "s3cret-bearer-token-value"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """All samples of /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode("utf-8")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def rpc(method: str, code: str | None, rpc_type: str = "unary", **extra: str) -> tuple[tuple[str, str], ...]:
    """The label set of one RPC series (``code=None``: the series without a status label)."""
    labels = {"grpc_method": method, "grpc_type": rpc_type, "grpc_service": SERVICE, **extra}
    if code is not None:
        labels["grpc_code"] = code
    return tuple(sorted(labels.items()))


def test_metrics_endpoint_counts_rpcs_embeddings_and_index_size(
    start_server: Callable[..., Any], hashing_embedder: Any
) -> None:
    port = free_port()
    server = start_server(hashing_embedder, metrics_port=port, match_workers=2)
    assert server.running.metrics_port == port
    client = server.client
    client.index_article("a", ARTICLE)  # 3 paragraphs, none cached: one model call of 3 texts
    client.check(ARTICLE)  # the same 3 texts: all from the embedding cache, no model call
    with pytest.raises(Exception, match="missing"):
        client.get_article("missing")
    list(client.check_stream([{"text": ARTICLE, "request_id": "x"}, {"text": " ", "request_id": "y"}]))

    samples = scrape(port)
    handled = "grpc_server_handled_total"
    assert samples[(handled, rpc("IndexArticle", "OK"))] == 1
    assert samples[(handled, rpc("Check", "OK"))] == 1
    assert samples[(handled, rpc("GetArticle", "NOT_FOUND"))] == 1
    assert samples[(handled, rpc("CheckStream", "OK", "bidi_stream"))] == 1
    assert samples[("grpc_server_started_total", rpc("Check", None))] == 1
    assert samples[("grpc_server_handling_seconds_count", rpc("GetArticle", "NOT_FOUND"))] == 1
    assert samples[("grpc_server_handling_seconds_sum", rpc("Check", "OK"))] > 0
    assert samples[("grpc_server_handling_seconds_bucket", rpc("Check", "OK", le="+Inf"))] == 1
    assert samples[("grpc_server_handling_seconds_bucket", rpc("Check", "OK", le="300.0"))] == 1

    assert samples[("rewrite_detector_embed_batch_size_count", ())] == 1
    assert samples[("rewrite_detector_embed_batch_size_sum", ())] == 3
    cache = "rewrite_detector_embedding_cache_lookups_total"
    # index: 3 misses; check: 3 hits; the stream's good item: 3 hits (the blank one fails before).
    assert samples[(cache, (("result", "miss"),))] == 3
    assert samples[(cache, (("result", "hit"),))] == 6

    # The serving embedder stack below the detector: its LRU saw only the index's 3 texts (the store
    # answered the checks), and the model embedded them in one micro-batch.
    lru = "rewrite_detector_embedding_lru_lookups_total"
    assert (samples[(lru, (("result", "miss"),))], samples[(lru, (("result", "hit"),))]) == (3, 0)
    assert samples[("rewrite_detector_model_calls_total", ())] == 1
    assert samples[("rewrite_detector_model_texts_total", ())] == 3
    assert samples[("rewrite_detector_model_largest_batch", ())] == 3

    assert samples[("rewrite_detector_articles", ())] == 1
    assert samples[("rewrite_detector_stored_vectors", ())] == 3
    assert samples[("rewrite_detector_index_vectors", ())] == 3
    # One source per Check, each alone in the server: built in the serving process (see match_pool.py).
    assert samples[("rewrite_detector_match_workers", ())] == 2
    jobs = "rewrite_detector_match_jobs_total"
    assert samples[(jobs, (("where", "serving_process"),))] == 2
    assert samples[(jobs, (("where", "worker"),))] == 0
    assert samples[("rewrite_detector_match_pool_restarts_total", ())] == 0
    client.delete_article("a")
    after = scrape(port)
    assert after[("rewrite_detector_index_vectors", ())] == 0
    assert after[(handled, rpc("DeleteArticle", "OK"))] == 1


def test_refused_calls_are_counted(start_server: Callable[..., Any], hashing_embedder: Any) -> None:
    """Observability runs before auth, so a call refused for its token still shows up."""
    port = free_port()
    server = start_server(hashing_embedder, metrics_port=port, admin_token=SECRET)
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.RewriteDetectorStub(channel)
        with pytest.raises(grpc.RpcError) as refused:
            stub.GetStats(pb.GetStatsRequest(), timeout=10)
        assert refused.value.code() == grpc.StatusCode.UNAUTHENTICATED
        stub.GetStats(pb.GetStatsRequest(), timeout=10, metadata=(("authorization", f"Bearer {SECRET}"),))
    samples = scrape(port)
    assert samples[("grpc_server_handled_total", rpc("GetStats", "UNAUTHENTICATED"))] == 1
    assert samples[("grpc_server_handled_total", rpc("GetStats", "OK"))] == 1


def test_no_metrics_endpoint_by_default(start_server: Callable[..., Any], hashing_embedder: Any) -> None:
    server = start_server(hashing_embedder)
    assert server.running.metrics is None and server.running.metrics_port is None
    assert server.detector.observer.__class__.__name__ == "NullObserver"


def test_request_ids_reach_logs_and_trailers_and_tokens_do_not(
    start_server: Callable[..., Any], hashing_embedder: Any, caplog: pytest.LogCaptureFixture
) -> None:
    server = start_server(hashing_embedder)
    server.client.index_article("a", ARTICLE)
    caplog.handler.addFilter(RequestIdFilter())
    caplog.set_level(logging.INFO)
    bearer = ("authorization", f"Bearer {SECRET}")
    with grpc.insecure_channel(server.target) as channel:
        stub = pb_grpc.RewriteDetectorStub(channel)
        # The caller's id is kept and returned.
        _, call = stub.Check.with_call(
            pb.CheckRequest(text=ARTICLE), timeout=10, metadata=((REQUEST_ID_HEADER, "req-ok-1"), bearer)
        )
        assert (REQUEST_ID_HEADER, "req-ok-1") in call.trailing_metadata()
        # Errors carry it too, and so do the servicer's own log lines for the call.
        with pytest.raises(grpc.RpcError) as failed:
            stub.GetArticle(
                pb.GetArticleRequest(id="nope"),
                timeout=10,
                metadata=((REQUEST_ID_HEADER, "req-err-2"), bearer),
            )
        assert failed.value.code() == grpc.StatusCode.NOT_FOUND
        assert (REQUEST_ID_HEADER, "req-err-2") in failed.value.trailing_metadata()
        # No id, or one that could forge log fields: a fresh one is made.
        _, plain = stub.GetStats.with_call(pb.GetStatsRequest(), timeout=10)
        _, forged = stub.GetStats.with_call(
            pb.GetStatsRequest(), timeout=10, metadata=((REQUEST_ID_HEADER, "x level=ERROR"),)
        )
    generated = [dict(c.trailing_metadata())[REQUEST_ID_HEADER] for c in (plain, forged)]
    assert all(re.fullmatch(r"[0-9a-f]{32}", g) for g in generated) and generated[0] != generated[1]

    by_id: dict[str, list[str]] = {}
    for record in caplog.records:
        by_id.setdefault(record.request_id, []).append(record.getMessage())  # type: ignore[attr-defined]
    assert any(m.startswith("rpc=Check code=OK duration_ms=") for m in by_id["req-ok-1"])
    err_lines = by_id["req-err-2"]
    assert any("rpc=GetArticle" in m and "NOT_FOUND" in m and "duration_ms" not in m for m in err_lines)
    assert any(m.startswith("rpc=GetArticle code=NOT_FOUND duration_ms=") for m in err_lines)
    for request_id in generated:
        assert any(m.startswith("rpc=GetStats code=OK") for m in by_id[request_id])
    assert SECRET not in caplog.text
    assert all(SECRET not in str(record.args) for record in caplog.records)
