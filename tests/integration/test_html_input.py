"""HTML pages in, end to end through the real server: index, get, check and compare a saved news page."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import seed_text
from rewrite_detector import errors
from rewrite_detector.cli import app
from rewrite_detector.v1 import detector_pb2 as pb
from rewrite_detector_server.core.segment import normalize_inline

NEWS_PAGE = Path(__file__).resolve().parents[1] / "fixtures" / "news_page_001.html"
PAGE_TITLE = "Russia Lauds Taliban Efforts to Stabilize Afghanistan, Warns on Terrorism"


@pytest.fixture(scope="module")
def page() -> str:
    return NEWS_PAGE.read_text(encoding="utf-8")


def test_an_html_page_is_indexed_as_its_article(start_server, hashing_embedder, page: str) -> None:
    client = start_server(hashing_embedder).client
    indexed = client.index_article("mt-001", page, url="https://www.themoscowtimes.com/a75353")
    assert (indexed.format, indexed.created, indexed.paragraph_count) == (pb.HTML, True, 21)
    assert client.index_article("mt-001", page, url="https://www.themoscowtimes.com/a75353").unchanged

    got = client.get_article("mt-001", include_paragraphs=True)
    article = got.article
    assert article.text.startswith("Russia on Wednesday recognized Taliban efforts")
    assert "<" not in article.text and "Advertisement" not in article.text
    assert (article.title, article.published_at) == (PAGE_TITLE, "2021-10-20")
    assert dict(article.metadata) == {"author": "Marina Lapenkova", "source_format": "html"}
    assert got.summary.char_count == len(article.text)
    for paragraph in got.paragraphs:  # stored spans index the stored (extracted) text
        assert article.text[paragraph.span.start : paragraph.span.end].strip().endswith(paragraph.text[-5:])

    # What the caller gives wins over what the page says.
    client.index_article(
        "mt-002", page, title="My title", published_at="2021-10-19", metadata={"author": "X"}
    )
    mine = client.get_article("mt-002").article
    assert (mine.title, mine.published_at, mine.metadata["author"]) == ("My title", "2021-10-19", "X")

    # Forced TEXT: the page is indexed as it is, markup and all.
    forced = client.index_article("mt-raw", page, text_format="text")
    assert forced.format == pb.TEXT
    assert client.get_article("mt-raw").article.text == page


def test_checking_an_html_page_reports_spans_in_the_extracted_text(
    start_server, hashing_embedder, page: str
) -> None:
    client = start_server(hashing_embedder).client
    seed = seed_text("001")
    # The markdown seed, indexed as published a day after the page's date: the page is the original.
    client.index_article("seed-001", seed, published_at="2021-10-21T08:00:00Z")

    response = client.check(page, include_texts=True)
    assert response.format == pb.HTML
    extracted = response.extracted
    assert (extracted.title, extracted.author, extracted.published_at) == (
        PAGE_TITLE,
        "Marina Lapenkova",
        "2021-10-20",
    )
    assert response.verdict == pb.NEAR_DUPLICATE
    match = response.matches[0]
    assert match.source_id == "seed-001" and match.source_is_newer
    assert len(match.pairs) >= 20
    for pair in match.pairs:
        span = extracted.text[pair.submitted_span.start : pair.submitted_span.end]
        assert span.strip() and normalize_inline(span) in pair.submitted_text
        assert seed[pair.source_span.start : pair.source_span.end].strip()
    for paragraph in response.paragraphs:
        assert extracted.text[paragraph.span.start : paragraph.span.end].strip()

    # A text submission carries no extraction.
    as_text = client.check(seed)
    assert as_text.format == pb.TEXT and not as_text.HasField("extracted")
    # An explicit published_at beats the page's date: a submission from the 22nd is not the original.
    later = client.check(page, published_at="2021-10-22")
    assert not later.matches[0].source_is_newer


def test_compare_accepts_html_on_either_side(start_server, hashing_embedder, page: str) -> None:
    client = start_server(hashing_embedder).client
    response = client.compare(seed_text("001"), page, include_texts=True)
    assert (response.submitted_format, response.source_format) == (pb.TEXT, pb.HTML)
    assert response.verdict == pb.NEAR_DUPLICATE
    assert not response.HasField("submitted_extracted")
    source_text = response.source_extracted.text
    assert source_text.startswith("Russia on Wednesday")
    for paragraph in response.source_paragraphs:
        assert source_text[paragraph.span.start : paragraph.span.end].strip()


def test_bad_html_input_gets_invalid_argument(start_server, hashing_embedder) -> None:
    client = start_server(hashing_embedder).client
    empty_page = "<html><body><script>track()</script></body></html>"
    with pytest.raises(errors.InvalidArgument, match="read as HTML but no article text was found"):
        client.check(empty_page)
    with pytest.raises(errors.InvalidArgument, match="read as HTML but no article text was found"):
        client.index_article("empty", empty_page)
    # An enum value this server does not know (a newer client) is refused with the accepted values.
    unknown = pb.CheckRequest(text="Some text.", format=9)
    with pytest.raises(errors.InvalidArgument, match=r"format 9 is not a TextFormat"):
        client._unary(client._stub.Check, unknown)
    # In a bulk stream the bad page fails alone.
    responses = list(
        client.index_articles(
            [{"id": "bad", "text": empty_page}, {"id": "good", "text": "<p>A short story about a cat.</p>"}]
        )
    )
    assert [r.error_code for r in responses] == [3, 0]
    assert responses[1].format == pb.HTML


def test_cli_format_option(start_server, hashing_embedder, tmp_path: Path) -> None:
    server = start_server(hashing_embedder)
    runner = CliRunner()

    def cli(*args: str) -> dict:
        result = runner.invoke(app, ["--server", server.target, "--json", *args])
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)

    # A saved page under any name: sniffed as HTML by default, read as text when told so.
    page = tmp_path / "saved-page.txt"
    page.write_text(NEWS_PAGE.read_text(encoding="utf-8"), encoding="utf-8")
    cli("index", str(page))
    assert server.client.get_article("saved-page").article.title == PAGE_TITLE
    cli("index", str(page), "--id", "as-text", "--format", "TEXT")
    assert server.client.get_article("as-text").article.text.startswith("<!DOCTYPE html>")

    assert cli("check", str(page))["format"] == "HTML"
    assert cli("check", str(page), "--format", "text")["format"] == "TEXT"
    compared = cli("compare", str(page), str(page), "--format", "html")
    assert (compared["submitted_format"], compared["source_format"]) == ("HTML", "HTML")

    result = runner.invoke(app, ["--server", server.target, "check", str(page), "--format", "pdf"])
    assert result.exit_code == 2 and "pdf" in result.output


def test_size_limits_for_html_and_for_its_text(start_server, hashing_embedder, page: str) -> None:
    # Text limit 4 kB: raw HTML may be 8x that (32 kB); the extracted article must still fit 4 kB.
    client = start_server(hashing_embedder, max_text_bytes=4000).client
    assert len(page.encode()) > 4000
    assert client.index_article("page", page).format == pb.HTML  # 8.7 kB of page, 3.3 kB of article
    padded = page.replace("</head>", f"<script>{'x' * 40_000}</script></head>")
    with pytest.raises(errors.ResourceExhausted, match="the limit for HTML is 32000 bytes"):
        client.index_article("padded", padded)
    with pytest.raises(errors.ResourceExhausted, match="the limit is 4000 bytes"):
        client.check(seed_text("001") + seed_text("002"))  # plain text: the text limit applies


def test_client_format_arguments() -> None:
    from rewrite_detector import _shared

    names = ("auto", "TEXT", " Markdown ", "html", pb.HTML)
    assert [_shared.text_format(n) for n in names] == [0, 1, 2, 3, 3]
    for bad in ("pdf", 7, True):
        with pytest.raises(ValueError, match="unknown text format"):
            _shared.text_format(bad)  # type: ignore[arg-type]
    assert _shared.check_request({"text": "x", "format": "html"}, 0).format == pb.HTML
    assert _shared.index_request({"id": "a", "text": "x", "format": "markdown"}).article.format == pb.MARKDOWN
    with pytest.raises(ValueError, match="unknown text format 'doc'"):
        _shared.check_request({"text": "x", "format": "doc"}, 0)
