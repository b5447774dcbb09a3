"""Client library and CLI, without the real server: error mapping, input reading, rendering, and the wire
behaviour (retries, token, streams) against a tiny in-process fake servicer."""

from __future__ import annotations

import asyncio
import io
import json
import socket
import subprocess
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from rich.console import Console
from typer.testing import CliRunner

import rewrite_detector
from rewrite_detector import _shared, errors
from rewrite_detector.cli import app, inputs, main, render
from rewrite_detector.cli._common import InputError
from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector.v1 import detector_pb2_grpc as pb_grpc

HEAVY_MODULES = ("torch", "numpy", "faiss", "sentence_transformers")
SUBMITTED_EXCERPT = "Russia acknowledged [bold]Taliban[/bold] efforts on Wednesday."
SOURCE_EXCERPT = "On Wednesday Russia recognised the Taliban's efforts."


# -- fixtures -----------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def sample_check_response(include_texts: bool = True) -> pb.CheckResponse:
    pair = pb.AlignedPair(
        submitted_paragraphs=[0],
        source_paragraphs=[1, 2],
        submitted_span=pb.Span(start=0, end=120),
        source_span=pb.Span(start=40, end=300),
        similarity=0.875,
        divergence=0.125,
        lexical_overlap=0.5,
        anchor_overlap=0.75,
        kind=pb.PARAPHRASE,
        submitted_text=SUBMITTED_EXCERPT if include_texts else "",
        source_text=SOURCE_EXCERPT if include_texts else "",
    )
    weak = pb.AlignedPair(
        submitted_paragraphs=[3],
        source_paragraphs=[5],
        submitted_span=pb.Span(start=200, end=260),
        source_span=pb.Span(start=500, end=560),
        similarity=0.5,
        divergence=0.5,
        kind=pb.WEAK,
    )
    match = pb.SourceMatch(
        source_id="src-001",
        title="Russia recognises Taliban efforts",
        verdict=pb.REWRITE,
        score=0.81,
        coverage_submitted=0.8,
        coverage_source=0.7,
        mean_similarity=0.85,
        order_preservation=1.0,
        pairs=[pair, weak],
    )
    other = pb.SourceMatch(source_id="src-004", verdict=pb.ORIGINAL, score=0.12, source_is_newer=True)
    return pb.CheckResponse(
        verdict=pb.REWRITE,
        score=0.81,
        matches=[match, other],
        model="fake-model",
        timing=pb.Timing(total_ms=12.5),
    )


class FakeServicer(pb_grpc.RewriteDetectorServicer):
    """Canned answers; records metadata; GetStats can fail with UNAVAILABLE a few times first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.articles: dict[str, pb.Article] = {}
        self.metadata: list[dict[str, str]] = []
        self.unavailable_left = 0
        self.stats_calls = 0

    def _record(self, context: grpc.ServicerContext) -> None:
        with self.lock:
            self.metadata.append({k: v for k, v in context.invocation_metadata() if isinstance(v, str)})

    def _index(self, article: pb.Article) -> pb.IndexArticleResponse:
        if not article.text.strip():
            return pb.IndexArticleResponse(
                id=article.id,
                error_code=grpc.StatusCode.INVALID_ARGUMENT.value[0],
                error_message="empty text",
            )
        with self.lock:
            previous = self.articles.get(article.id)
            self.articles[article.id] = article
        return pb.IndexArticleResponse(
            id=article.id,
            paragraph_count=article.text.count("\n\n") + 1,
            created=previous is None,
            unchanged=previous is not None and previous == article,
        )

    def IndexArticle(self, request, context):
        self._record(context)
        if not request.article.text.strip():
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "article text is empty")
        return self._index(request.article)

    def IndexArticles(self, request_iterator, context):
        self._record(context)
        for request in request_iterator:
            yield self._index(request.article)

    def DeleteArticle(self, request, context):
        with self.lock:
            article = self.articles.pop(request.id, None)
        if article is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"article {request.id!r} is not indexed")
        return pb.DeleteArticleResponse(id=request.id, paragraphs_removed=1)

    def GetArticle(self, request, context):
        article = self.articles.get(request.id)
        if article is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"article {request.id!r} is not indexed")
        paragraphs = []
        if request.include_paragraphs:
            paragraphs = [
                pb.Paragraph(index=0, span=pb.Span(start=0, end=len(article.text)), text=article.text)
            ]
        summary = pb.ArticleSummary(id=article.id, title=article.title, paragraph_count=1)
        return pb.GetArticleResponse(article=article, summary=summary, paragraphs=paragraphs)

    def ListArticles(self, request, context):
        ids = sorted(self.articles)
        start = int(request.page_token or 0)
        size = request.page_size or 100
        page = ids[start : start + size]
        token = str(start + size) if start + size < len(ids) else ""
        summaries = [pb.ArticleSummary(id=i, title=self.articles[i].title) for i in page]
        return pb.ListArticlesResponse(articles=summaries, next_page_token=token, total_count=len(ids))

    def GetStats(self, request, context):
        self._record(context)
        with self.lock:
            self.stats_calls += 1
            if self.unavailable_left > 0:
                self.unavailable_left -= 1
                context.abort(grpc.StatusCode.UNAVAILABLE, "warming up")
        return pb.GetStatsResponse(article_count=len(self.articles), model="fake-model", dimension=8)

    def Check(self, request, context):
        self._record(context)
        if list(request.options.source_ids) == ["missing"]:
            context.abort(grpc.StatusCode.NOT_FOUND, "source 'missing' is not indexed")
        response = sample_check_response(request.options.include_texts)
        response.request_id = request.request_id
        return response

    def CheckStream(self, request_iterator, context):
        for request in request_iterator:
            if not request.text:
                yield pb.CheckResponse(request_id=request.request_id, error_code=3, error_message="empty")
            else:
                yield pb.CheckResponse(request_id=request.request_id, verdict=pb.ORIGINAL)

    def Compare(self, request, context):
        match = sample_check_response(request.include_texts).matches[0]
        match.source_id = ""
        return pb.CompareResponse(verdict=match.verdict, score=match.score, match=match, model="fake-model")


@pytest.fixture(scope="module")
def fake_server():
    servicer = FakeServicer()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    pb_grpc.add_RewriteDetectorServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


@pytest.fixture
def fake(fake_server):
    servicer, target = fake_server
    with servicer.lock:
        servicer.articles.clear()
        servicer.metadata.clear()
        servicer.unavailable_left = 0
        servicer.stats_calls = 0
    return servicer, target


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


# -- package ------------------------------------------------------------------------------------------


def test_import_is_light():
    code = (
        "import json, sys, rewrite_detector; "
        "rewrite_detector.Client; rewrite_detector.AsyncClient; rewrite_detector.__version__; "
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r} "
        "or m.split('.')[0] in ('typer', 'rich', 'click'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_exports_and_version():
    for name in rewrite_detector.__all__:
        assert getattr(rewrite_detector, name) is not None
    assert isinstance(rewrite_detector.__version__, str) and rewrite_detector.__version__
    with pytest.raises(AttributeError):
        _ = rewrite_detector.no_such_attribute


def test_target_resolution(monkeypatch):
    monkeypatch.delenv(_shared.TARGET_ENV, raising=False)
    assert _shared.resolve_target(None) == "127.0.0.1:50051"
    monkeypatch.setenv(_shared.TARGET_ENV, "10.0.0.1:1234")
    assert _shared.resolve_target(None) == "10.0.0.1:1234"
    assert _shared.resolve_target("h:1") == "h:1"
    with rewrite_detector.Client() as client:
        assert client.target == "10.0.0.1:1234"


def test_client_rejects_bad_settings():
    with pytest.raises(ValueError):
        rewrite_detector.Client("h:1", timeout=0)
    with pytest.raises(ValueError):
        rewrite_detector.Client("h:1", retries=-1)
    with pytest.raises(ValueError):
        rewrite_detector.Client("h:1", max_message_mb=0)


# -- error mapping ------------------------------------------------------------------------------------


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "boom") -> None:
        self._code, self._details = code, details

    def code(self):
        return self._code

    def details(self):
        return self._details


EXPECTED_CLASS = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidArgument,
    grpc.StatusCode.OUT_OF_RANGE: errors.InvalidArgument,
    grpc.StatusCode.NOT_FOUND: errors.NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: errors.Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: errors.Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.DeadlineExceeded,
}


@pytest.mark.parametrize(
    "code", [c for c in grpc.StatusCode if c != grpc.StatusCode.OK], ids=lambda c: c.name
)
def test_error_mapping_every_status(code):
    err = errors.from_rpc_error(FakeRpcError(code, "details here"))
    expected = EXPECTED_CLASS.get(code, errors.ServerError)
    assert type(err) is expected
    assert isinstance(err, errors.RewriteDetectorError)
    assert err.code is code
    assert err.details == "details here"
    assert str(err) == f"{code.name}: details here"


def test_error_mapping_without_code():
    err = errors.from_rpc_error(grpc.RpcError("weird"))
    assert type(err) is errors.ServerError and err.code is None


def test_client_raises_mapped_error_from_rpc_error(fake):
    _, target = fake
    with rewrite_detector.Client(target, timeout=5) as client:
        with pytest.raises(errors.NotFound) as info:
            client.get_article("nope")
        assert info.value.code is grpc.StatusCode.NOT_FOUND
        assert "nope" in info.value.details
        assert isinstance(info.value.__cause__, grpc.RpcError)
        with pytest.raises(errors.InvalidArgument):
            client.index_article("a", "   ")


# -- client against the fake servicer -----------------------------------------------------------------


def test_client_round_trip(fake):
    servicer, target = fake
    with rewrite_detector.Client(target, timeout=5, token="s3cret") as client:
        client.wait_ready(5)
        first = client.index_article("a", "Para one.\n\nPara two.", title="A", metadata={"k": "v"})
        assert first.created and first.paragraph_count == 2
        again = client.index_article("a", "Para one.\n\nPara two.", title="A", metadata={"k": "v"})
        assert again.unchanged and not again.created
        responses = list(
            client.index_articles(
                [{"id": "b", "text": "B text"}, pb.Article(id="c", text="C"), {"id": "d", "text": " "}]
            )
        )
        assert [r.id for r in responses] == ["b", "c", "d"]
        assert responses[2].error_code != 0
        assert client.get_article("a", include_paragraphs=True).article.metadata["k"] == "v"
        assert [s.id for s in client.iter_articles(page_size=1)] == ["a", "b", "c"]
        assert client.stats().article_count == 3
        assert client.delete_article("c").paragraphs_removed == 1
        result = client.check("text", source_ids=["src-001"], include_texts=True)
        assert result.verdict == pb.REWRITE and result.matches[0].pairs[0].submitted_text
        assert client.compare("x", "y").verdict == pb.REWRITE
        streamed = list(client.check_stream([{"text": "one"}, {"text": "", "request_id": "r2"}]))
        assert [(r.request_id, r.error_code) for r in streamed] == [("0", 0), ("r2", 3)]
    assert servicer.metadata and all(m.get("authorization") == "Bearer s3cret" for m in servicer.metadata)


def test_no_token_no_authorization_header(fake):
    servicer, target = fake
    with rewrite_detector.Client(target, timeout=5) as client:
        client.stats()
    assert "authorization" not in servicer.metadata[-1]


def test_retries_unavailable_with_backoff(fake, monkeypatch):
    servicer, target = fake
    monkeypatch.setattr(_shared, "BACKOFF_BASE", 0.01)
    servicer.unavailable_left = 2
    with rewrite_detector.Client(target, timeout=5, retries=3) as client:
        assert client.stats().model == "fake-model"
    assert servicer.stats_calls == 3


def test_gives_up_after_retries(fake, monkeypatch):
    servicer, target = fake
    monkeypatch.setattr(_shared, "BACKOFF_BASE", 0.01)
    servicer.unavailable_left = 10
    with rewrite_detector.Client(target, timeout=5, retries=2) as client, pytest.raises(errors.Unavailable):
        client.stats()
    assert servicer.stats_calls == 3


def test_no_retry_on_other_errors(fake):
    _, target = fake
    with rewrite_detector.Client(target, timeout=5) as client, pytest.raises(errors.NotFound):
        client.delete_article("missing")


def test_stream_input_error_is_reraised_after_sent_items(fake):
    _, target = fake

    def articles():
        yield {"id": "ok", "text": "fine"}
        raise InputError("bad.jsonl:2: missing 'id'")

    received = []
    client = rewrite_detector.Client(target, timeout=5)
    with client, pytest.raises(InputError, match=r"bad\.jsonl:2"):
        for response in client.index_articles(articles()):
            received.append(response.id)
    assert received == ["ok"]


def test_request_builders_validate_dicts():
    with pytest.raises(ValueError, match="unknown article field"):
        _shared.index_request({"id": "a", "text": "t", "body": "x"})
    with pytest.raises(ValueError, match="'id' and 'text'"):
        _shared.index_request({"text": "t"})
    with pytest.raises(TypeError):
        _shared.index_request(42)
    nested = _shared.check_request({"text": "t", "options": {"max_sources": 3}}, 7)
    assert nested.options.max_sources == 3 and nested.request_id == "7"
    flat = _shared.check_request({"text": "t", "source_ids": ["a"], "request_id": "x"}, 0)
    assert list(flat.options.source_ids) == ["a"] and flat.request_id == "x"
    with pytest.raises(TypeError):
        _shared.make_check_request("t", source_ids="abc")


def test_async_client(fake):
    _, target = fake

    async def scenario():
        async with rewrite_detector.AsyncClient(target, timeout=5, token="t") as client:
            await client.wait_ready(5)
            await client.index_article("x", "text")
            streamed = [r.id async for r in client.index_articles([{"id": "y", "text": "text"}])]
            listed = [s.id async for s in client.iter_articles()]
            result = await client.check("text")
            with pytest.raises(errors.NotFound):
                await client.get_article("missing")
            return streamed, listed, result.verdict

    assert asyncio.run(scenario()) == (["y"], ["x", "y"], pb.REWRITE)


def test_unreachable_server_raises_unavailable():
    with rewrite_detector.Client(f"127.0.0.1:{free_port()}", timeout=0.5) as client:
        with pytest.raises(errors.Unavailable):
            client.stats()
        with pytest.raises(errors.Unavailable):
            client.wait_ready(0.2)


# -- input reading ------------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_plan_files_dirs_and_jsonl(tmp_path):
    write(tmp_path / "corpus" / "b.txt", "B")
    write(tmp_path / "corpus" / "a.md", "A")
    write(tmp_path / "corpus" / "sub" / "c.html", "<p>C</p>")
    write(tmp_path / "corpus" / "skip.pdf", "no")
    write(tmp_path / "corpus" / ".hidden" / "h.txt", "no")
    write(
        tmp_path / "corpus" / "more.jsonl",
        '{"id": "j1", "text": "J1", "title": "T", "metadata": {"n": 1}, "extra": true}\n\n'
        '{"id": "j2", "text": "J2"}\n',
    )
    single = write(tmp_path / "one.txt", "One")
    sources = inputs.plan_index([str(tmp_path / "corpus"), str(single)])
    articles = list(inputs.iter_articles(sources))
    assert [a["id"] for a in articles] == ["a", "b", "j1", "j2", "c", "one"]
    assert sum(s.count for s in sources) == 6
    assert articles[2] == {
        "id": "j1",
        "text": "J1",
        "title": "T",
        "url": "",
        "published_at": "",
        "metadata": {"n": "1"},
    }
    assert inputs.plan_index([str(single)], "custom")[0].article_id == "custom"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('{"text": "no id"}', "missing 'id'"),
        ('{"id": "x"}', "missing 'text'"),
        ('{"id": "x", "text": ""}', "'text'"),
        ("not json", "invalid JSON"),
        ('["a"]', "expected a JSON object"),
        ('{"id": "x", "text": "t", "title": 3}', "'title' must be a string"),
        ('{"id": "x", "text": "t", "metadata": {"a": [1]}}', "metadata value 'a'"),
    ],
)
def test_jsonl_bad_line_names_line_number(tmp_path, line, message):
    path = write(tmp_path / "in.jsonl", '{"id": "ok", "text": "fine"}\n' + line + "\n")
    with pytest.raises(InputError) as info:
        inputs.plan_index([str(path)])
    assert f"{path}:2" in str(info.value) and message in str(info.value)


def test_plan_rejects_bad_combinations(tmp_path):
    a = write(tmp_path / "a.txt", "A")
    b = write(tmp_path / "b.txt", "B")
    jsonl = write(tmp_path / "x.jsonl", '{"id": "1", "text": "t"}\n')
    write(tmp_path / "d1" / "same.txt", "1")
    write(tmp_path / "d2" / "same.md", "2")
    (tmp_path / "empty").mkdir()
    cases = [
        (([str(a), str(b)], "id"), "--id can only be used with a single file"),
        (([str(tmp_path / "d1")], "id"), "is a directory"),
        (([str(jsonl)], "id"), "--id cannot be used with a JSONL file"),
        ((["-"], None), "needs --id"),
        (([str(tmp_path / "nope.txt")], None), "no such file or directory"),
        (([str(tmp_path / "d1"), str(tmp_path / "d2")], None), "same id 'same'"),
        (([str(tmp_path / "empty")], None), "nothing to index"),
        (([], None), "nothing to index"),
    ]
    for (names, article_id), message in cases:
        with pytest.raises(InputError, match=message):
            inputs.plan_index(names, article_id)


def test_non_utf8_file_is_an_input_error(tmp_path):
    path = tmp_path / "latin.txt"
    path.write_bytes("caf\xe9".encode("latin-1"))
    with pytest.raises(InputError, match="not valid UTF-8"):
        list(inputs.iter_articles(inputs.plan_index([str(path)])))


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["index", "-"], "needs --id"),
        (["index", "--id", "x", "a.txt", "b.txt"], "--id can only be used with a single file"),
        (["index", "bad.jsonl"], "bad.jsonl:2: missing 'id'"),
        (["index", "missing.txt"], "no such file"),
        (["check", "missing.txt"], "no such file"),
        (["compare", "-", "-"], "only one of SUBMITTED and SOURCE"),
    ],
)
def test_cli_input_errors_need_no_server(runner, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.txt", "A")
    write(tmp_path / "b.txt", "B")
    write(tmp_path / "bad.jsonl", '{"id": "1", "text": "t"}\n{"text": "no id"}\n')
    unreachable = f"127.0.0.1:{free_port()}"
    result = runner.invoke(app, ["--server", unreachable, "--timeout", "0.3", *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.startswith("Error:")
    assert "Traceback" not in result.output


# -- rendering ----------------------------------------------------------------------------------------


def capture(fn, message, width: int = 200) -> str:
    buffer = io.StringIO()
    fn(Console(file=buffer, width=width, color_system=None), message)
    return buffer.getvalue()


def test_check_json_contract_field_names():
    data = json.loads(render.to_json(sample_check_response()))
    assert data["verdict"] == "REWRITE"
    assert data["score"] == pytest.approx(0.81)
    match = data["matches"][0]
    for field in ("source_id", "verdict", "score", "coverage_submitted", "coverage_source", "pairs"):
        assert field in match
    assert match["source_id"] == "src-001" and match["verdict"] == "REWRITE"
    pair = match["pairs"][0]
    assert pair["submitted_paragraphs"] == [0] and pair["source_paragraphs"] == [1, 2]
    assert pair["submitted_span"] == {"start": 0, "end": 120}
    assert pair["source_span"] == {"start": 40, "end": 300}
    for field in ("similarity", "divergence", "lexical_overlap", "kind"):
        assert field in pair
    assert pair["kind"] == "PARAPHRASE" and pair["similarity"] == pytest.approx(0.875)
    # Fields with default values are printed too (always_print_fields_with_no_presence).
    assert data["matches"][1]["pairs"] == [] and data["error_code"] == 0 and data["request_id"] == ""
    assert render.to_json(sample_check_response()) == render.to_json(sample_check_response())
    assert "\n" not in render.to_json(sample_check_response(), indent=None)


def test_print_check_human():
    text = capture(render.print_check, sample_check_response())
    assert "Verdict: REWRITE" in text and "score 0.81" in text
    assert "src-001" in text and "src-004 (newer)" in text and "ORIGINAL" in text
    assert "80%" in text and "70%" in text
    assert "Aligned pairs with src-001" in text
    assert "1,2" in text and "0.88" in text and "PARAPHRASE" in text and "WEAK" in text
    # Texts are rendered literally (no rich markup injection) as excerpts.
    assert "Excerpts" in text
    assert "[bold]Taliban[/bold]" in text
    assert "recognised the Taliban" in text


def test_print_check_without_matches_and_texts():
    empty = capture(render.print_check, pb.CheckResponse(verdict=pb.ORIGINAL))
    assert "ORIGINAL" in empty and "No matching sources." in empty
    no_texts = capture(render.print_check, sample_check_response(include_texts=False))
    assert "Excerpts" not in no_texts and "PARAPHRASE" in no_texts


def test_print_compare_and_others():
    compare = pb.CompareResponse(
        verdict=pb.NEAR_DUPLICATE, score=0.99, match=sample_check_response().matches[0]
    )
    text = capture(render.print_compare, compare)
    assert "NEAR_DUPLICATE" in text and "Aligned pairs" in text
    stats = capture(render.print_stats, pb.GetStatsResponse(article_count=5, model="m", dimension=384))
    assert "articles" in stats and "384" in stats
    article = pb.GetArticleResponse(
        article=pb.Article(id="a", text="Hello world", metadata={"k": "v"}),
        summary=pb.ArticleSummary(id="a", paragraph_count=1, indexed_at=0.0),
        paragraphs=[pb.Paragraph(index=0, span=pb.Span(start=0, end=11), text="Hello world", role=pb.BODY)],
    )
    shown = capture(render.print_article, article)
    assert "metadata.k" in shown and "BODY" in shown and "0-11" in shown


def test_index_outcomes():
    responses = [
        pb.IndexArticleResponse(id="a", created=True),
        pb.IndexArticleResponse(id="b"),
        pb.IndexArticleResponse(id="c", unchanged=True),
        pb.IndexArticleResponse(id="d", error_code=3, error_message="bad"),
    ]
    assert render.summarize_index(responses) == {"indexed": 1, "replaced": 1, "unchanged": 1, "failed": 1}


# -- CLI end to end (fake servicer / unreachable) -----------------------------------------------------


def test_cli_unreachable_server_clean_error(runner, tmp_path):
    article = write(tmp_path / "a.txt", "Some text.")
    result = runner.invoke(
        app, ["--server", f"127.0.0.1:{free_port()}", "--timeout", "0.3", "check", str(article)]
    )
    assert result.exit_code == 7
    assert result.stderr.startswith("Error: server unavailable")
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_unreachable_server_subprocess(tmp_path):
    server = f"127.0.0.1:{free_port()}"
    result = subprocess.run(
        [sys.executable, "-m", "rewrite_detector", "--server", server, "--timeout", "0.3", "stats"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 7
    assert "Error:" in result.stderr and "Traceback" not in result.stderr
    assert result.stdout == ""


def test_main_maps_escaped_library_errors(capsys, monkeypatch):
    def boom(*args, **kwargs):
        raise errors.PermissionDenied("read-only token", code=grpc.StatusCode.PERMISSION_DENIED)

    monkeypatch.setattr(type(app), "__call__", boom)
    with pytest.raises(SystemExit) as info:
        main(["stats"])
    assert info.value.code == 5
    assert "permission denied: read-only token" in capsys.readouterr().err


def test_cli_index_summary_and_json(runner, fake, tmp_path):
    _, target = fake
    corpus = tmp_path / "corpus"
    write(corpus / "one.txt", "First article.\n\nSecond paragraph.")
    write(corpus / "two.md", "# Two\n\nBody.")
    write(corpus / "blank.txt", "   ")
    result = runner.invoke(app, ["--server", target, "index", str(corpus)])
    assert result.exit_code == 1, result.output
    assert "indexed 2" in result.stdout and "failed 1" in result.stdout
    assert "failed blank: empty text" in result.stderr
    write(corpus / "blank.txt", "now filled")
    result = runner.invoke(app, ["--server", target, "--json", "index", str(corpus)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(d["id"], d["created"], d["unchanged"]) for d in lines] == [
        ("blank", True, False),
        ("one", False, True),
        ("two", False, True),
    ]


def test_cli_index_stdin_with_id(runner, fake):
    servicer, target = fake
    result = runner.invoke(app, ["--server", target, "index", "--id", "from-stdin", "-"], input="Piped text.")
    assert result.exit_code == 0, result.output
    assert servicer.articles["from-stdin"].text == "Piped text."


def test_cli_check_and_compare(runner, fake, tmp_path):
    _, target = fake
    article = write(tmp_path / "a.txt", "Some text.")
    human = runner.invoke(app, ["--server", target, "check", str(article), "--include-texts"])
    assert human.exit_code == 0, human.output
    assert "Verdict: REWRITE" in human.stdout and "src-001" in human.stdout
    as_json = runner.invoke(app, ["--server", target, "check", "--json", "-"], input="Piped.")
    assert as_json.exit_code == 0, as_json.output
    data = json.loads(as_json.stdout)
    assert data["matches"][0]["pairs"][0]["submitted_span"] == {"start": 0, "end": 120}
    missing = runner.invoke(app, ["--server", target, "check", str(article), "--source-id", "missing"])
    assert missing.exit_code == 4 and missing.stderr.startswith("Error: not found")
    compared = runner.invoke(app, ["--server", target, "--json", "compare", str(article), "-"], input="x")
    assert compared.exit_code == 0, compared.output
    assert json.loads(compared.stdout)["verdict"] == "REWRITE"


def test_cli_get_list_delete_stats(runner, fake, tmp_path):
    servicer, target = fake
    with rewrite_detector.Client(target, timeout=5) as client:
        for name in ("a", "b", "c"):
            client.index_article(name, f"text {name}", title=f"Title {name}")
    base = ["--server", target, "--token", "tok"]
    got = runner.invoke(app, [*base, "get", "a", "--paragraphs"])
    assert got.exit_code == 0 and "Title a" in got.stdout
    listed = runner.invoke(app, [*base, "--json", "list", "--page-size", "2"])
    assert [json.loads(line)["id"] for line in listed.stdout.splitlines()] == ["a", "b", "c"]
    limited = runner.invoke(app, [*base, "list", "--limit", "1"])
    assert "1 of 3 articles" in limited.stdout
    stats = runner.invoke(app, [*base, "stats", "--json"])
    assert json.loads(stats.stdout)["model"] == "fake-model"
    deleted = runner.invoke(app, [*base, "delete", "b"])
    assert deleted.exit_code == 0 and "Deleted b" in deleted.stdout
    again = runner.invoke(app, [*base, "delete", "b"])
    assert again.exit_code == 4 and "not indexed" in again.stderr
    assert servicer.metadata[-1]["authorization"] == "Bearer tok"


def test_cli_version_and_help(runner):
    version = runner.invoke(app, ["--version"])
    assert version.exit_code == 0 and version.stdout.startswith("rewrite-detector ")
    helped = runner.invoke(app, ["--help"])
    assert helped.exit_code == 0 and "Exit codes" in helped.stdout


def test_serve_reports_missing_server_extra(runner, monkeypatch):
    monkeypatch.setitem(sys.modules, "rewrite_detector_server.app", None)  # import -> ImportError
    # `from package import app` finds an attribute left by any earlier import of the submodule.
    import rewrite_detector_server

    monkeypatch.delattr(rewrite_detector_server, "app", raising=False)
    result = runner.invoke(app, ["serve", "--port", "0"])
    assert result.exit_code == 1, result.output
    assert "pip install 'rewrite-detector[server]'" in result.stderr
    assert "Traceback" not in result.output


def test_serve_calls_serve_forever(runner, monkeypatch, tmp_path):
    import types

    calls = []
    fake_app = types.ModuleType("rewrite_detector_server.app")
    fake_app.serve_forever = lambda **kwargs: calls.append(kwargs)
    monkeypatch.setitem(sys.modules, "rewrite_detector_server.app", fake_app)
    import rewrite_detector_server

    monkeypatch.setattr(rewrite_detector_server, "app", fake_app, raising=False)
    result = runner.invoke(app, ["serve", "--host", "0.0.0.0", "--port", "6000", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert calls == [{"host": "0.0.0.0", "port": 6000, "data_dir": tmp_path, "model": None}]
    result = runner.invoke(app, ["serve", "--index-type", "hnsw"])
    assert result.exit_code == 0, result.output
    assert calls[-1] == {"host": None, "port": None, "data_dir": None, "model": None, "index_type": "hnsw"}
