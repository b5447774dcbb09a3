"""The same service suite on both vector backends: embedded FAISS and Milvus (milvus-lite, a real one).

Each test starts the real gRPC server with ``vector_backend`` set, so everything from the RPC down to the
index goes through the backend under test. ``test_backends_agree`` is the congruence check (after
qdrant-client's congruence tests): the same calls against both backends must give the same answers.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from rewrite_detector import Client, errors
from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector_server.errors import IncompatibleIndexError

ARTICLE_A = (
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros.\n\n"
    "Chief executive Maria Lopez credited strong demand for its shipping services in Rotterdam.\n\n"
    "The company plans to open three new warehouses in Poland before the end of 2025."
)
ARTICLE_B = (
    "A storm closed schools across the northern valley on Friday.\n\n"
    "Officials said roads would reopen once snowploughs had cleared the main pass."
)
ARTICLE_C = (
    "The city council approved a new budget for public libraries on Tuesday evening.\n\n"
    "Three branches will extend their opening hours, the mayor said after the vote.\n\n"
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros."
)
BACKENDS = ["faiss", "milvus"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def serve(start_server: Callable[..., Any], hashing_embedder: Any, backend: str) -> Callable[..., Any]:
    """start_server with the backend under test (milvus: milvus-lite in <data_dir>/milvus.db)."""

    def start(**overrides: Any) -> Any:
        return start_server(hashing_embedder, vector_backend=backend, **overrides)

    return start


def test_index_check_replace_delete(serve: Callable[..., Any], backend: str) -> None:
    server = serve()
    assert server.detector.storage.vector_backend == backend
    client = server.client
    assert client.index_article("a", ARTICLE_A).created
    assert client.index_article("a", ARTICLE_A).unchanged
    client.index_article("b", ARTICLE_B)
    stats = client.stats()
    assert (stats.article_count, stats.vector_count) == (2, 5)
    assert server.detector.storage.index_ntotal == 5

    found = client.check("Reposted:\n\n" + ARTICLE_A, include_texts=True)
    assert found.verdict == pb.NEAR_DUPLICATE and found.matches[0].source_id == "a"
    assert [p.kind for p in found.matches[0].pairs] == [pb.VERBATIM] * 3
    assert client.check(ARTICLE_A, source_ids=["b"]).verdict == pb.ORIGINAL

    client.index_article("a", ARTICLE_C)  # replace: the old vectors must leave the index
    assert server.detector.storage.index_ntotal == client.stats().vector_count == 5
    replaced = client.check(ARTICLE_A)
    assert replaced.verdict != pb.NEAR_DUPLICATE

    assert client.delete_article("a").paragraphs_removed == 3
    assert server.detector.storage.index_ntotal == 2
    with pytest.raises(errors.NotFound):
        client.get_article("a")
    assert client.check(ARTICLE_C).verdict == pb.ORIGINAL


def test_restart_serves_the_same_index(serve: Callable[..., Any], backend: str) -> None:
    server = serve()
    server.client.index_article("a", ARTICLE_A)
    server.client.index_article("b", ARTICLE_B)
    server.client.delete_article("b")
    before = server.client.check(ARTICLE_A)
    server.stop()

    restarted = serve(data_dir=server.data_dir)
    report = restarted.detector.storage.last_reconcile
    # Nothing had to be replayed from the store: the index (FAISS snapshot / Milvus collection) was whole.
    assert (report.index_status, report.missing_added, report.orphans_removed) == ("loaded", 0, 0)
    assert report.snapshot_vectors == 3
    after = restarted.client.check(ARTICLE_A)
    assert after.verdict == before.verdict == pb.NEAR_DUPLICATE
    assert [(m.source_id, round(m.score, 5)) for m in after.matches] == [
        (m.source_id, round(m.score, 5)) for m in before.matches
    ]


def test_streams_and_bad_input(serve: Callable[..., Any]) -> None:
    client = serve().client
    results = list(client.index_articles([{"id": "a", "text": ARTICLE_A}, {"id": "", "text": "x"}]))
    assert [r.error_code for r in results] == [0, 3]  # OK, INVALID_ARGUMENT
    checks = list(
        client.check_stream([{"text": ARTICLE_A, "request_id": "1"}, {"text": " ", "request_id": "2"}])
    )
    assert [(c.request_id, c.verdict, c.error_code) for c in checks] == [
        ("1", pb.NEAR_DUPLICATE, 0),
        ("2", pb.VERDICT_UNSPECIFIED, 3),
    ]
    with pytest.raises(errors.NotFound):
        client.check(ARTICLE_A, source_ids=["missing"])
    assert client.stats().vector_count == 3


def test_backends_agree(start_server: Callable[..., Any], hashing_embedder: Any, tmp_path: Any) -> None:
    faiss = start_server(hashing_embedder, data_dir=tmp_path / "faiss", vector_backend="faiss").client
    milvus = start_server(hashing_embedder, data_dir=tmp_path / "milvus", vector_backend="milvus").client
    for client in (faiss, milvus):
        client.index_article("a", ARTICLE_A)
        client.index_article("b", ARTICLE_B)
        client.index_article("c", ARTICLE_C)
        client.delete_article("b")
    for text in (ARTICLE_A, ARTICLE_B, ARTICLE_C, ARTICLE_A + "\n\n" + ARTICLE_B):
        expected, got = faiss.check(text, include_texts=True), milvus.check(text, include_texts=True)
        assert got.verdict == expected.verdict
        assert [m.source_id for m in got.matches] == [m.source_id for m in expected.matches]
        for g, e in zip(got.matches, expected.matches, strict=True):
            assert g.score == pytest.approx(e.score, abs=1e-5)
            assert [(p.submitted_span.start, p.source_span.start) for p in g.pairs] == [
                (p.submitted_span.start, p.source_span.start) for p in e.pairs
            ]


def test_milvus_collection_belongs_to_one_data_dir(
    start_server: Callable[..., Any], hashing_embedder: Any, tmp_path: Any
) -> None:
    """Two data dirs on one collection would delete each other's vectors at start-up: refuse the second."""
    shared = str(tmp_path / "shared.db")
    first = start_server(
        hashing_embedder, data_dir=tmp_path / "one", vector_backend="milvus", milvus_uri=shared
    )
    first.client.index_article("a", ARTICLE_A)
    with pytest.raises(IncompatibleIndexError, match="each data dir its own collection"):
        start_server(hashing_embedder, data_dir=tmp_path / "two", vector_backend="milvus", milvus_uri=shared)
    second = start_server(
        hashing_embedder,
        data_dir=tmp_path / "two",
        vector_backend="milvus",
        milvus_uri=shared,
        milvus_collection="second_dir",
    )
    second.client.index_article("b", ARTICLE_B)
    assert first.client.check(ARTICLE_A).matches[0].source_id == "a"
    assert first.client.check(ARTICLE_B).verdict == pb.ORIGINAL  # b lives in the other collection
    assert second.client.check(ARTICLE_B).matches[0].source_id == "b"


def test_milvus_outage_is_unavailable_and_heals(
    start_server: Callable[..., Any], hashing_embedder: Any, milvus_server: Any
) -> None:
    """A Milvus server (reached over http://, as a cluster would be) goes down and comes back."""
    server = start_server(hashing_embedder, vector_backend="milvus", milvus_uri=milvus_server.uri)
    client = server.client
    no_retry = Client(server.target, retries=0)
    client.index_article("a", ARTICLE_A)
    milvus_server.stop()
    with pytest.raises(errors.Unavailable, match="Milvus is up"):
        no_retry.check(ARTICLE_A)
    with pytest.raises(errors.Unavailable):
        no_retry.index_article("b", ARTICLE_B)  # stored, but its vectors could not reach Milvus
    no_retry.close()
    # Retrying finds it stored: the write is acknowledged, and no search runs before the index has it.
    assert client.index_article("b", ARTICLE_B).unchanged
    assert client.compare(ARTICLE_A, ARTICLE_B).verdict == pb.ORIGINAL  # needs no index: still served

    milvus_server.start()
    deadline = time.monotonic() + 20
    while True:  # gRPC reconnects to Milvus after its backoff
        try:
            found = client.check(ARTICLE_B)
            break
        except errors.Unavailable:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
    # b was acknowledged by the store during the outage; the index caught up before this search.
    assert found.verdict == pb.NEAR_DUPLICATE and found.matches[0].source_id == "b"
    assert server.detector.storage.index_ntotal == client.stats().vector_count == 5
