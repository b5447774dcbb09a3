"""The real gRPC server on 127.0.0.1:0 with the hashing embedder: every RPC, restart, bad input."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from rewrite_detector import errors
from rewrite_detector.v1 import detector_pb2 as pb

ARTICLE_A = (
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros.\n\n"
    "Chief executive Maria Lopez credited strong demand for its shipping services in Rotterdam.\n\n"
    "The company plans to open three new warehouses in Poland before the end of 2025."
)
ARTICLE_B = (
    "A storm closed schools across the northern valley on Friday.\n\n"
    "Officials said roads would reopen once snowploughs had cleared the main pass."
)


def test_index_get_list_stats_delete_round_trip(start_server, hashing_embedder) -> None:
    server = start_server(hashing_embedder)
    client = server.client
    first = client.index_article("a", ARTICLE_A, title="Northwind", url="https://example.org/a")
    assert (first.id, first.created, first.unchanged, first.paragraph_count) == ("a", True, False, 3)
    again = client.index_article("a", ARTICLE_A, title="Northwind", url="https://example.org/a")
    assert (again.created, again.unchanged) == (False, True)
    client.index_article("b", ARTICLE_B)

    got = client.get_article("a", include_paragraphs=True)
    assert got.article.text == ARTICLE_A
    assert got.summary.title == "Northwind"
    assert [ARTICLE_A[p.span.start : p.span.end] for p in got.paragraphs] == ARTICLE_A.split("\n\n")

    listed = client.list_articles(page_size=1)
    assert [a.id for a in listed.articles] == ["a"] and listed.total_count == 2
    assert [a.id for a in client.iter_articles(page_size=1)] == ["a", "b"]

    stats = client.stats()
    assert (stats.article_count, stats.paragraph_count, stats.vector_count) == (2, 5, 5)
    assert stats.model == hashing_embedder.name and stats.dimension == 384

    assert client.delete_article("a").paragraphs_removed == 3
    with pytest.raises(errors.NotFound):
        client.get_article("a")
    assert client.stats().vector_count == 2


def test_replacing_an_article_replaces_its_vectors(start_server, hashing_embedder) -> None:
    client = start_server(hashing_embedder).client
    client.index_article("a", ARTICLE_A)
    replaced = client.index_article("a", ARTICLE_B)
    assert (replaced.created, replaced.unchanged) == (False, False)
    assert client.stats().vector_count == 2
    # The old text is gone from the index: checking it finds nothing verbatim any more.
    assert client.check(ARTICLE_A).verdict == pb.ORIGINAL


def test_check_finds_the_copied_article_with_spans(start_server, hashing_embedder) -> None:
    client = start_server(hashing_embedder).client
    client.index_article("a", ARTICLE_A)
    client.index_article("b", ARTICLE_B)
    submitted = "Reposted:\n\n" + ARTICLE_A.replace("\n\n", "\n\n\n")
    response = client.check(submitted, include_texts=True)
    assert response.verdict == pb.NEAR_DUPLICATE
    assert response.matches[0].source_id == "a"
    pairs = response.matches[0].pairs
    assert len(pairs) == 3 and all(p.kind == pb.VERBATIM for p in pairs)
    for pair in pairs:
        assert submitted[pair.submitted_span.start : pair.submitted_span.end] == pair.submitted_text
        assert ARTICLE_A[pair.source_span.start : pair.source_span.end] == pair.source_text
        assert pair.divergence == pytest.approx(1 - pair.similarity)
    assert response.timing.total_ms > 0 and response.model == hashing_embedder.name

    restricted = client.check(submitted, source_ids=["b"])
    assert restricted.verdict == pb.ORIGINAL
    with pytest.raises(errors.NotFound, match="nope"):
        client.check(submitted, source_ids=["nope"])


def test_streams_report_errors_per_item_and_go_on(start_server, hashing_embedder) -> None:
    client = start_server(hashing_embedder).client
    responses = list(
        client.index_articles(
            [{"id": "a", "text": ARTICLE_A}, {"id": "", "text": "x"}, {"id": "b", "text": ARTICLE_B}]
        )
    )
    assert [r.error_code for r in responses] == [0, grpc.StatusCode.INVALID_ARGUMENT.value[0], 0]
    assert "id" in responses[1].error_message
    checks = list(
        client.check_stream([{"text": ARTICLE_A, "request_id": "x"}, {"text": "   ", "request_id": "y"}])
    )
    assert [(c.request_id, c.error_code) for c in checks] == [
        ("x", 0),
        ("y", grpc.StatusCode.INVALID_ARGUMENT.value[0]),
    ]
    assert checks[0].verdict == pb.NEAR_DUPLICATE


def test_compare_needs_no_index(start_server, hashing_embedder) -> None:
    client = start_server(hashing_embedder).client
    same = client.compare(ARTICLE_A, ARTICLE_A)
    assert same.verdict == pb.NEAR_DUPLICATE and same.match.coverage_submitted == pytest.approx(1.0)
    different = client.compare(ARTICLE_A, ARTICLE_B)
    assert different.verdict == pb.ORIGINAL and not [p for p in different.match.pairs if p.kind != pb.WEAK]
    assert client.stats().article_count == 0


def test_restart_finds_everything_again(start_server, hashing_embedder) -> None:
    server = start_server(hashing_embedder)
    server.client.index_article("a", ARTICLE_A)
    server.client.index_article("b", ARTICLE_B)
    before = server.client.check(ARTICLE_A)
    server.stop()

    restarted = start_server(hashing_embedder, data_dir=server.data_dir)
    stats = restarted.client.stats()
    assert (stats.article_count, stats.vector_count) == (2, 5)
    after = restarted.client.check(ARTICLE_A)
    assert after.verdict == before.verdict == pb.NEAR_DUPLICATE
    assert [m.source_id for m in after.matches] == [m.source_id for m in before.matches]
    assert restarted.client.get_article("b").article.text == ARTICLE_B


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda c: c.index_article("x", ""), errors.InvalidArgument, "empty"),
        (lambda c: c.index_article("x", " \n\t "), errors.InvalidArgument, "empty"),
        (lambda c: c.index_article("x", "**  ** -- ##"), errors.InvalidArgument, "no paragraphs"),
        (lambda c: c.index_article("", ARTICLE_B), errors.InvalidArgument, "id is missing"),
        (lambda c: c.index_article("x" * 300, ARTICLE_B), errors.InvalidArgument, "at most 256"),
        (lambda c: c.index_article("a\nb", ARTICLE_B), errors.InvalidArgument, "control characters"),
        (lambda c: c.index_article("big", "word " * 500_000), errors.ResourceExhausted, "limit"),
        (lambda c: c.check(""), errors.InvalidArgument, "empty"),
        (lambda c: c.check(ARTICLE_B, max_sources=-1), errors.InvalidArgument, "max_sources"),
        (lambda c: c.check(ARTICLE_B, max_sources=10**6), errors.InvalidArgument, "max_sources"),
        (lambda c: c.check(ARTICLE_B, min_similarity=1.5), errors.InvalidArgument, "min_similarity"),
        (lambda c: c.check(ARTICLE_B, source_ids=["missing"]), errors.NotFound, "missing"),
        (lambda c: c.get_article("missing"), errors.NotFound, "missing"),
        (lambda c: c.delete_article("missing"), errors.NotFound, "missing"),
        (lambda c: c.list_articles(page_size=-5), errors.InvalidArgument, "page_size"),
        (lambda c: c.list_articles(page_token="zz-not-hex"), errors.InvalidArgument, "page_token"),
        (lambda c: c.compare("", ARTICLE_B), errors.InvalidArgument, "submitted text"),
        (lambda c: c.compare(ARTICLE_B, "  "), errors.InvalidArgument, "source text"),
    ],
)
def test_bad_input_gets_a_specific_status_and_changes_nothing(
    start_server, hashing_embedder, call, error, message
) -> None:
    client = start_server(hashing_embedder).client
    client.index_article("keep", ARTICLE_A)
    with pytest.raises(error, match=message):
        call(client)
    stats = client.stats()
    assert (stats.article_count, stats.vector_count) == (1, 3)
    assert client.check(ARTICLE_A).matches[0].source_id == "keep"


def test_missing_article_field_is_invalid_argument(start_server, hashing_embedder) -> None:
    server = start_server(hashing_embedder)
    with pytest.raises(errors.InvalidArgument, match="article is missing"):
        server.client._unary(server.client._stub.IndexArticle, pb.IndexArticleRequest())


def test_health_and_reflection(start_server, hashing_embedder) -> None:
    server = start_server(hashing_embedder)
    with grpc.insecure_channel(server.target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "rewrite_detector.v1.RewriteDetector"):
            reply = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        request = reflection_pb2.ServerReflectionRequest(list_services="")
        (reply,) = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
        names = {s.name for s in reply.list_services_response.service}
        assert {"rewrite_detector.v1.RewriteDetector", "grpc.health.v1.Health"} <= names
