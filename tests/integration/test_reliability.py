"""Reliability on the real server: the bad-input catalogue, races, deadlines, cancellation, shutdown,
and (marked slow) the crash, load and fuzz scripts of bench/ run in short versions.

Every bad input must get a specific status and an actionable message, leave the server up and leave
what is stored exactly as it was.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest

from rewrite_detector import Client, errors
from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector_models import HashingEmbedder
from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import Settings
from rewrite_detector_server.core.segment import normalize_inline
from rewrite_detector_server.core.types import ArticleInput
from rewrite_detector_server.storage import ArticleStore, FaissVectorIndex
from rewrite_detector_server.storage.facade import INDEX_FILE, STORE_FILE

ROOT = Path(__file__).resolve().parents[2]
SERVICE = pb.DESCRIPTOR.services_by_name["RewriteDetector"].full_name

ARTICLE_A = (
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros.\n\n"
    "Chief executive Maria Lopez credited strong demand for its shipping services in Rotterdam.\n\n"
    "The company plans to open three new warehouses in Poland before the end of 2025."
)
ARTICLE_B = (
    "A storm closed schools across the northern valley on Friday.\n\n"
    "Officials said roads would reopen once snowploughs had cleared the main pass."
)


_VOCABULARY = [f"{a}{b}{c}" for a in "bdfgklmnprstvz" for b in "aeiou" for c in ("n", "r", "s", "l")]


def article_text(n: int) -> str:
    """A distinct three-paragraph article per ``n``: its own words, so nothing is a near-duplicate of it
    and no embedding is reused."""
    rng = random.Random(n)
    return "\n\n".join(
        f"Report town{n} part {p}: " + " ".join(rng.choices(_VOCABULARY, k=25)) + "." for p in range(3)
    )


class SlowEmbedder:
    """The hashing embedder with a delay per batch, recording what it was asked to embed."""

    def __init__(self, delay: float) -> None:
        self._inner = HashingEmbedder()
        self.delay = delay
        self.seen: list[str] = []
        self.calls = 0

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.seen.extend(texts)
        time.sleep(self.delay)
        return self._inner.embed_batch(texts)


def stored_fingerprint(client: Client) -> tuple[Any, ...]:
    stats = client.stats()
    articles = {s.id: client.get_article(s.id).article.text for s in client.iter_articles()}
    return stats.article_count, stats.paragraph_count, stats.vector_count, articles


def assert_still_serving(client: Client, before: tuple[Any, ...]) -> None:
    client.wait_ready(timeout=5)
    assert stored_fingerprint(client) == before
    found = client.check(ARTICLE_A)
    assert found.verdict == pb.NEAR_DUPLICATE and found.matches[0].source_id == "keep"


@pytest.fixture
def server(start_server, hashing_embedder):  # type: ignore[no-untyped-def]
    handle = start_server(hashing_embedder)
    handle.client.index_article("keep", ARTICLE_A, title="Northwind")
    handle.client.index_article("keep-too", ARTICLE_B)
    return handle


def raw_call(target: str, method: str, payload: bytes, *, streaming: bool = False) -> Any:
    """Send already-serialized bytes, bypassing the client's own checks (and its size limit)."""
    options = [("grpc.max_send_message_length", 256 << 20), ("grpc.max_receive_message_length", 256 << 20)]
    with grpc.insecure_channel(target, options=options) as channel:
        if streaming:
            stream = channel.stream_stream(f"/{SERVICE}/{method}")
            return list(stream(iter([payload]), timeout=30))
        return channel.unary_unary(f"/{SERVICE}/{method}")(payload, timeout=30)


def invalid_utf8(message: Any, field_value: str) -> bytes:
    """``message`` serialized, with ``field_value`` (2 ASCII chars) swapped for bytes that are not UTF-8."""
    raw = message.SerializeToString()
    assert raw.count(field_value.encode()) == 1
    return raw.replace(field_value.encode(), b"\xff\xfe")


# ------------------------------------------------------------------------------ bad-input catalogue

TEN_MB = "word " * 2_000_000
# 1500 x 1500 paragraphs = 2.25M pairs to align, over DetectorLimits.max_alignment_pairs (2M).
MANY_PARAGRAPHS = "\n\n".join(f"Line {n} of the long report on harbour dues." for n in range(1500))
HUNDRED_K_PARAGRAPHS = "".join(f"P{i}.\n\n" for i in range(100_000))

CATALOGUE: list[tuple[str, Callable[[Client], Any], type[errors.RewriteDetectorError], str]] = [
    ("empty text", lambda c: c.check(""), errors.InvalidArgument, "empty"),
    ("whitespace text", lambda c: c.index_article("x", " \t\n\u3000 \n"), errors.InvalidArgument, "empty"),
    (
        "punctuation only",
        lambda c: c.check("!!! ??? ... ---"),
        errors.InvalidArgument,
        "no paragraphs of article text",
    ),
    (
        "punctuation only index",
        lambda c: c.index_article("x", "«…» — !!"),
        errors.InvalidArgument,
        "no paragraphs of article text",
    ),
    ("symbols only", lambda c: c.compare("♥♥♥ ★★★ 🙂🙂", ARTICLE_A), errors.InvalidArgument, "no paragraphs"),
    (
        "control characters only",
        lambda c: c.check("\x00\x01\x02 \x1b"),
        errors.InvalidArgument,
        "no paragraphs",
    ),
    ("10 MB check", lambda c: c.check(TEN_MB), errors.ResourceExhausted, "the limit is"),
    ("10 MB index", lambda c: c.index_article("big", TEN_MB), errors.ResourceExhausted, "the limit is"),
    ("10 MB compare", lambda c: c.compare(ARTICLE_A, TEN_MB), errors.ResourceExhausted, "source text"),
    (
        "quadratic compare",
        lambda c: c.compare(MANY_PARAGRAPHS, MANY_PARAGRAPHS),
        errors.ResourceExhausted,
        "2250000 paragraph pairs; the limit is 2000000",
    ),
    (
        "100k paragraphs",
        lambda c: c.check(HUNDRED_K_PARAGRAPHS),
        errors.ResourceExhausted,
        "100000 paragraphs",
    ),
    (
        "negative max_sources",
        lambda c: c.check(ARTICLE_A, max_sources=-1),
        errors.InvalidArgument,
        "max_sources",
    ),
    ("k = 10^9", lambda c: c.check(ARTICLE_A, max_sources=10**9), errors.InvalidArgument, "max_sources"),
    (
        "NaN similarity",
        lambda c: c.check(ARTICLE_A, min_similarity=math.nan),
        errors.InvalidArgument,
        "min_sim",
    ),
    (
        "infinite similarity",
        lambda c: c.check(ARTICLE_A, min_similarity=math.inf),
        errors.InvalidArgument,
        "min",
    ),
    ("negative similarity", lambda c: c.check(ARTICLE_A, min_similarity=-0.5), errors.InvalidArgument, "0-1"),
    ("page size 10^9", lambda c: c.list_articles(page_size=10**9), errors.InvalidArgument, "page_size"),
    ("negative page size", lambda c: c.list_articles(page_size=-1), errors.InvalidArgument, "page_size"),
    ("forged page token", lambda c: c.list_articles(page_token="ffff"), errors.InvalidArgument, "page_token"),
    (
        "100k source ids",
        lambda c: c.check(ARTICLE_A, source_ids=[f"s{i}" for i in range(100_000)]),
        errors.InvalidArgument,
        "at most 1000",
    ),
    (
        "unknown source id",
        lambda c: c.check(ARTICLE_A, source_ids=["keep", "nope"]),
        errors.NotFound,
        "'nope'",
    ),
    ("unknown get", lambda c: c.get_article("nope"), errors.NotFound, "no indexed article has id 'nope'"),
    ("unknown delete", lambda c: c.delete_article("nope"), errors.NotFound, "nope"),
    ("empty id", lambda c: c.index_article("", ARTICLE_B), errors.InvalidArgument, "id is missing"),
    (
        "NUL in id",
        lambda c: c.index_article("a\x00b", ARTICLE_B),
        errors.InvalidArgument,
        "control characters",
    ),
    ("tab in id", lambda c: c.get_article("a\tb"), errors.InvalidArgument, "control characters"),
    ("padded id", lambda c: c.delete_article(" keep "), errors.InvalidArgument, "surrounding whitespace"),
    (
        "257-character id",
        lambda c: c.index_article("é" * 257, ARTICLE_B),
        errors.InvalidArgument,
        "at most 256",
    ),
]


@pytest.mark.parametrize(("name", "call", "error", "message"), CATALOGUE, ids=[c[0] for c in CATALOGUE])
def test_bad_input_catalogue(
    server, name: str, call: Callable[[Client], Any], error: type, message: str
) -> None:
    before = stored_fingerprint(server.client)
    with pytest.raises(error, match=message) as caught:
        call(server.client)
    assert len(caught.value.details) < 500  # a message a person reads, not a dump of the input
    assert_still_serving(server.client, before)


@pytest.mark.parametrize(
    ("method", "payload", "streaming"),
    [
        ("Check", invalid_utf8(pb.CheckRequest(text="XY"), "XY"), False),
        ("Compare", invalid_utf8(pb.CompareRequest(submitted_text="XY", source_text="a"), "XY"), False),
        ("GetArticle", invalid_utf8(pb.GetArticleRequest(id="XY"), "XY"), False),
        (
            "IndexArticle",
            invalid_utf8(pb.IndexArticleRequest(article=pb.Article(id="n", text="XY")), "XY"),
            False,
        ),
        (
            "IndexArticles",
            invalid_utf8(pb.IndexArticleRequest(article=pb.Article(id="XY", text="t")), "XY"),
            True,
        ),
        ("CheckStream", invalid_utf8(pb.CheckRequest(text="XY"), "XY"), True),
        ("Check", b"\x0a\xff\xff\xff\xff\x0f", False),  # a length prefix far past the end
        ("Check", b"\xff" * 64, False),  # not protobuf at all
    ],
    ids=[
        "check-utf8",
        "compare-utf8",
        "get-id-utf8",
        "index-utf8",
        "bulk-index-utf8",
        "check-stream-utf8",
        "truncated",
        "garbage",
    ],
)
def test_undecodable_requests_are_invalid_argument(
    server, method: str, payload: bytes, streaming: bool
) -> None:
    """Invalid UTF-8 in a string field (sent as raw bytes) or broken protobuf: INVALID_ARGUMENT, not
    gRPC's default INTERNAL "Exception deserializing request!"."""
    before = stored_fingerprint(server.client)
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(server.target, method, payload, streaming=streaming)
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded" in caught.value.details()
    assert_still_serving(server.client, before)


def test_message_over_the_transport_limit_is_resource_exhausted(start_server, hashing_embedder) -> None:
    handle = start_server(hashing_embedder, max_message_bytes=4 << 20)
    handle.client.index_article("keep", ARTICLE_A)
    before = stored_fingerprint(handle.client)
    with pytest.raises(grpc.RpcError) as caught:
        raw_call(handle.target, "Check", pb.CheckRequest(text="x" * (5 << 20)).SerializeToString())
    assert caught.value.code() is grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "larger than max" in caught.value.details()
    assert_still_serving(handle.client, before)


def test_control_characters_and_nul_in_text_are_kept_verbatim(server) -> None:
    """Scraped text carries stray control characters; they are content: stored byte-exact, spans valid."""
    text = (
        "Sirens\x00 sounded at noon \x07in the old port.\n\n"
        "The \x1b[1mmayor\x1b[0m said\x0b nothing\x7f more."
    )
    assert server.client.index_article("ctl", text).created
    got = server.client.get_article("ctl", include_paragraphs=True)
    assert got.article.text == text
    for paragraph in got.paragraphs:
        assert normalize_inline(text[paragraph.span.start : paragraph.span.end]) == paragraph.text
    found = server.client.check(text)
    assert found.verdict == pb.NEAR_DUPLICATE and found.matches[0].source_id == "ctl"


ODD_IDS = [
    "ünïcödé-ид-标识",
    "emoji 🙂 with spaces inside",
    "../../etc/passwd",
    "'; DROP TABLE articles; --",
    "%00%2F?query=1&x=<y>",
    "rtl\u202eoverride",
    "zero\u200bwidth",
    "back\\slash/and:colon",
    "x" * 256,
]


def test_ids_with_odd_characters_round_trip_exactly(server) -> None:
    for n, article_id in enumerate(ODD_IDS):
        assert server.client.index_article(article_id, article_text(n)).created
    for n, article_id in enumerate(ODD_IDS):
        assert server.client.get_article(article_id).article.text == article_text(n)
        assert server.client.check(article_text(n)).matches[0].source_id == article_id
    listed = [s.id for s in server.client.iter_articles(page_size=2)]  # page tokens across odd ids
    assert sorted(listed) == sorted([*ODD_IDS, "keep", "keep-too"])
    for article_id in ODD_IDS:
        assert server.client.delete_article(article_id).paragraphs_removed == 3
    assert server.client.stats().article_count == 2


def test_duplicate_ids(server) -> None:
    client = server.client
    again = client.index_article("keep", ARTICLE_A, title="Northwind")
    assert (again.created, again.unchanged) == (False, True)  # same content: a no-op
    responses = list(
        client.index_articles(
            [
                {"id": "dup", "text": article_text(1)},
                {"id": "dup", "text": article_text(2)},
                {"id": "dup", "text": article_text(2)},
            ]
        )
    )
    assert [(r.error_code, r.created, r.unchanged) for r in responses] == [
        (0, True, False),
        (0, False, False),
        (0, False, True),
    ]
    assert client.get_article("dup").article.text == article_text(2)  # last write wins
    assert client.check(article_text(1)).verdict != pb.NEAR_DUPLICATE  # the replaced text's vectors are gone
    twice = client.check(ARTICLE_A, source_ids=["keep", "keep", "keep"])
    assert [m.source_id for m in twice.matches] == ["keep"]
    assert client.stats().vector_count == 3 + 2 + 3


def test_check_against_a_huge_indexed_source_is_bounded(server) -> None:
    """A big submission against a big indexed article would be minutes of O(n*m) alignment: refused."""
    assert server.client.index_article("long-report", MANY_PARAGRAPHS).paragraph_count == 1500
    before = stored_fingerprint(server.client)
    with pytest.raises(errors.ResourceExhausted, match="of source 'long-report' is 2250000 paragraph pairs"):
        server.client.check(MANY_PARAGRAPHS)
    small = "\n\n".join(MANY_PARAGRAPHS.split("\n\n")[:20])  # 20 x 1500 is fine
    assert server.client.check(small).matches[0].source_id == "long-report"
    assert_still_serving(server.client, before)


# ------------------------------------------------------------------------------------------ races


@pytest.mark.parametrize("moment", ["after-search", "after-lookup"])
def test_article_deleted_while_being_checked(tmp_path: Path, moment: str) -> None:
    """A source deleted between retrieval and alignment is skipped, not an error (Detector level, where
    the interleaving can be forced)."""
    detector = build_detector(Settings(data_dir=tmp_path / "data"), HashingEmbedder())
    try:
        detector.index(ArticleInput(id="a", text=ARTICLE_A))
        detector.index(ArticleInput(id="b", text=ARTICLE_A + "\n\nOne more paragraph about warehouses."))
        storage = detector.storage
        original = storage.search if moment == "after-search" else storage.content_vectors
        deleted: list[str] = []

        def delete_first(*args: Any, **kwargs: Any) -> Any:
            if not deleted:
                deleted.append("a")
                detector.delete("a")
            return original(*args, **kwargs)

        setattr(storage, "search" if moment == "after-search" else "content_vectors", delete_first)
        result = detector.check(ARTICLE_A)
        assert deleted == ["a"]
        assert [m.source_id for m in result.matches] == ["b"]
        assert detector.get("b").article.id == "b"
    finally:
        detector.close()


def test_concurrent_deletes_and_checks_over_grpc(server) -> None:
    """Checkers racing a writer that deletes and re-indexes the very article they match: every call
    succeeds, each answer is either 'found it' or 'not there'."""
    client = server.client
    stop = threading.Event()
    failures: list[BaseException] = []
    verdicts: set[int] = set()

    def checker() -> None:
        with Client(server.target, retries=0) as own:
            while not stop.is_set():
                try:
                    verdicts.add(own.check(ARTICLE_B).verdict)
                except BaseException as err:  # any error at all is a failure here
                    failures.append(err)
                    return

    threads = [threading.Thread(target=checker) for _ in range(4)]
    for thread in threads:
        thread.start()
    try:
        for _ in range(40):
            client.delete_article("keep-too")
            client.index_article("keep-too", ARTICLE_B)
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
    assert not failures, failures[:3]
    assert pb.NEAR_DUPLICATE in verdicts
    assert client.stats().vector_count == 5


# -------------------------------------------------------------------------- deadlines, cancellation


def consistent_on_disk(data_dir: Path) -> tuple[int, int]:
    """(articles, vectors) of a stopped server's data dir, asserting index ids == store ids."""
    embedder = HashingEmbedder()
    index = FaissVectorIndex.load(data_dir / INDEX_FILE, embedder.dimension, "flat")
    store = ArticleStore(data_dir / STORE_FILE, dimension=embedder.dimension)
    try:
        np.testing.assert_array_equal(np.sort(index.ids()), store.all_vector_ids())
        return store.count_articles(), store.count_vectors()
    finally:
        store.close()
        index.close()


@pytest.mark.parametrize("how", ["cancel", "deadline"])
def test_interrupted_bulk_ingest_stops_and_stays_consistent(start_server, how: str) -> None:
    embedder = SlowEmbedder(delay=0.02)
    handle = start_server(embedder)
    articles = ({"id": f"bulk-{n}", "text": article_text(n)} for n in range(500))
    received = 0
    if how == "cancel":
        stream = handle.client.index_articles(articles)
        for response in stream:
            assert response.error_code == 0
            received += 1
            if received == 10:
                break
        stream.close()  # the client's finally: call.cancel()
    else:
        with pytest.raises(errors.DeadlineExceeded):
            for _ in handle.client.index_articles(articles, timeout=0.5):
                received += 1
    time.sleep(0.3)  # let the server notice
    stored = handle.client.stats().article_count
    time.sleep(0.5)
    assert handle.client.stats().article_count == stored, "work went on after the stream ended"
    assert received <= stored < 100, (received, stored)
    handle.stop()
    assert consistent_on_disk(handle.data_dir) == (stored, 3 * stored)


def test_call_whose_deadline_passes_in_the_queue_is_not_worked_on(start_server) -> None:
    """Overload: a call still waiting for a worker when its deadline passes is dropped unworked (grpcio
    checks for cancellation before running the handler), so a backlog does not burn CPU on answers
    nobody will read."""
    embedder = SlowEmbedder(delay=1.0)
    handle = start_server(embedder, max_workers=1)
    embedder.seen.clear()
    blocker = threading.Thread(target=lambda: handle.client.compare(article_text(1), article_text(2)))
    blocker.start()
    time.sleep(0.2)  # the only worker is busy for a second
    with Client(handle.target, retries=0, timeout=0.3) as hasty, pytest.raises(errors.DeadlineExceeded):
        hasty.check(article_text(3))
    blocker.join(timeout=30)
    time.sleep(0.3)
    assert not any("town3" in text for text in embedder.seen), "the expired call was still embedded"
    embedder.delay = 0.0
    assert handle.client.check(article_text(3)).verdict == pb.ORIGINAL  # and the server is fine


def test_graceful_shutdown_drains_in_flight_calls(start_server) -> None:
    embedder = SlowEmbedder(delay=0.0)
    # No micro-batching, so that the four calls are inside the model at once when shutdown begins.
    handle = start_server(embedder, embed_batch_size=1)
    embedder.delay = 0.8
    results: list[Any] = []

    def call(n: int) -> None:
        with Client(handle.target, retries=0, timeout=30) as own:
            try:
                results.append(own.index_article(f"late-{n}", article_text(n)))
            except errors.RewriteDetectorError as err:
                results.append(err)

    callers = [threading.Thread(target=call, args=(n,)) for n in range(4)]
    for thread in callers:
        thread.start()
    deadline = time.monotonic() + 10
    while embedder.calls < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert embedder.calls == 4, "calls never reached the server"
    started = time.monotonic()
    stopper = threading.Thread(target=handle.running.stop, args=(10.0,))
    stopper.start()
    time.sleep(0.1)
    with Client(handle.target, retries=0, timeout=2) as newcomer, pytest.raises(errors.Unavailable):
        newcomer.stats()  # no new calls once shutdown began
    for thread in [*callers, stopper]:
        thread.join(timeout=30)
    assert all(isinstance(r, pb.IndexArticleResponse) and r.created for r in results), results
    assert time.monotonic() - started < 5  # drained, not waited out to the grace period
    handle.detector.close()
    assert consistent_on_disk(handle.data_dir) == (4, 12)


# ------------------------------------------------------------------------ bench scripts, short runs


def run_script(*args: str, timeout: float) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, *args, "--json"], capture_output=True, text=True, timeout=timeout, cwd=ROOT
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return json.loads(completed.stdout)


@pytest.mark.slow
def test_sigkill_during_bulk_ingest_loses_no_acknowledged_write(tmp_path: Path) -> None:
    """4 SIGKILL points (trial 4 also tears the index file); bench/stress_kill.py does 24."""
    report = run_script(
        "bench/stress_kill.py",
        "--trials",
        "4",
        "--max-kill-seconds",
        "1.5",
        "--workdir",
        str(tmp_path),
        timeout=240,
    )
    summary = report["summary"]
    assert summary["trials"] == 4 and summary["failed"] == 0
    assert summary["acknowledged_writes"] > 0 and summary["torn_index_trials"] == 1
    assert summary["rebuilt_on_restart"] >= 1
    assert all(t["ok"] and t["restart_status"] in {"loaded", "rebuilt"} for t in report["trials"])


@pytest.mark.slow
def test_load_ten_seconds_without_errors() -> None:
    report = run_script(
        "bench/load.py", "--seconds", "10", "--clients", "32", "--model", "hashing", timeout=180
    )
    assert report["errors"] == 0 and report["requests"] > 0
    for method in ("Check", "IndexArticle", "Compare"):
        assert report["latency_ms"][method]["count"] > 0
        assert report["latency_ms"][method]["p50"] <= report["latency_ms"][method]["p99"]
    assert report["rss_growth_ratio"] < 1.5


@pytest.mark.slow
def test_request_fuzzer_finds_no_crash_or_internal_error() -> None:
    report = run_script("bench/fuzz_requests.py", "--requests", "1000", "--seed", "3", timeout=240)
    assert report["requests"] == 1000
    assert report["crashes"] == 0 and report["internal_errors"] == 0
    assert report["statuses"].get("INVALID_ARGUMENT", 0) > 0 and report["statuses"].get("OK", 0) > 0
