"""HTML in: format sniffing and article extraction (trafilatura) from a saved news page, no network."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import seed_text
from rewrite_detector_server.core.extract import (
    TextFormat,
    extract_html,
    prepare_text,
    sniff_format,
)
from rewrite_detector_server.core.segment import normalize_inline, segment
from rewrite_detector_server.core.types import Role
from rewrite_detector_server.errors import InvalidInputError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
# Seed 001 as The Moscow Times page a browser would save: cookie banner, navigation, ads, a figure caption,
# an inline "Related article" box, tags, share links, a "Most Read" sidebar, a newsletter form, a footer.
NEWS_PAGE = FIXTURES / "news_page_001.html"
# Strings that live only in the page's chrome, never in the article.
PAGE_CHROME = [
    "We use cookies",
    "Support The Moscow Times",
    "Advertisement",
    "Book your winter holiday",
    "Learn Russian in 30 days",
    "Most Read",
    "Gazprom Says",
    "Subscribe to our daily newsletter",
    "Privacy policy",
    "all rights reserved",
    "Share this article",
    "gtag(",
]


@pytest.fixture(scope="module")
def page() -> str:
    return NEWS_PAGE.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<!DOCTYPE html><html><body><p>Hi</p></body></html>", TextFormat.HTML),
        ("\ufeff\n  <!doctype HTML>\n<html lang=en>", TextFormat.HTML),
        (
            '<?xml version="1.0"?>\n<!DOCTYPE html>\n<html xmlns="http://www.w3.org/1999/xhtml">',
            TextFormat.HTML,
        ),
        ("<p>A fragment from a CMS.</p><p>Second paragraph.</p>", TextFormat.HTML),
        ('<article class="story"><h1>Title</h1>', TextFormat.HTML),
        ("<!-- saved from url=(0042)https://example.org -->\n<html>", TextFormat.HTML),
        ("# Heading\n\nA markdown article with <b>inline</b> HTML further down.", TextFormat.TEXT),
        ("<https://example.org/a> is where this story first ran.\n\nSecond paragraph.", TextFormat.TEXT),
        ("<<< BREAKING >>> Markets fell sharply on Monday.", TextFormat.TEXT),
        ("Plain text about the <div> element and <p> tags.", TextFormat.TEXT),
        ("", TextFormat.TEXT),
    ],
)
def test_sniff_format(text: str, expected: TextFormat) -> None:
    assert sniff_format(text) is expected


def test_the_seeds_sniff_as_text(seeds: dict[str, str]) -> None:
    assert {name: sniff_format(text) for name, text in seeds.items()} == dict.fromkeys(seeds, TextFormat.TEXT)


def test_news_page_sniffs_as_html(page: str) -> None:
    assert sniff_format(page) is TextFormat.HTML


def test_extraction_keeps_the_article_and_its_metadata(page: str) -> None:
    extracted = extract_html(page)
    assert extracted is not None
    assert extracted.title == "Russia Lauds Taliban Efforts to Stabilize Afghanistan, Warns on Terrorism"
    assert extracted.author == "Marina Lapenkova"
    assert extracted.published_at == "2021-10-20"
    for chrome in PAGE_CHROME:
        assert chrome not in extracted.text, chrome
    assert "<" not in extracted.text  # no markup left
    # The article body is all there, first to last paragraph, in order.
    first = extracted.text.index("Russia on Wednesday recognized Taliban efforts")
    middle = extracted.text.index("Brussels has pledged one billion euros ($1.2 billion)")
    last = extracted.text.index("more than 14,000 Soviet troops.")
    assert first < middle < last


def test_extracted_paragraphs_are_the_seed_paragraphs(page: str) -> None:
    """Segmenting the extracted text gives the seed article's body paragraphs, the heading as a heading."""
    extracted = extract_html(page)
    assert extracted is not None
    paragraphs = segment(extracted.text).paragraphs
    seed_flat = normalize_inline(" ".join(seed_text("001").split()))
    assert len(paragraphs) == 21  # the 20 body paragraphs of the seed (one re-joined) + a heading
    for paragraph in paragraphs:
        assert paragraph.text in seed_flat, paragraph.text
        assert normalize_inline(extracted.text[paragraph.start : paragraph.end]) == paragraph.text
    headings = [p.text for p in paragraphs if p.role is Role.HEADING]
    assert headings == ["Terrorism and drug concerns"]


def test_extraction_of_a_fragment_and_of_nothing() -> None:
    fragment = "<p>Profits at Northwind rose 12 percent.</p><p>The chief executive credited demand.</p>"
    extracted = extract_html(fragment)
    assert extracted is not None
    assert extracted.text == "Profits at Northwind rose 12 percent.\n\nThe chief executive credited demand."
    assert (extracted.title, extracted.author, extracted.published_at) == ("", "", "")
    # A one-paragraph fragment too (trafilatura alone drops it; it is wrapped in a document first).
    single = extract_html("<p>A short story about a cat.</p>")
    assert single is not None and single.text == "A short story about a cat."
    assert extract_html("<html><head><title>x</title></head><body><nav></nav></body></html>") is None


def test_prepare_text(page: str) -> None:
    auto = prepare_text(page, TextFormat.AUTO, "submitted text")
    assert auto.text_format is TextFormat.HTML and auto.extracted is not None
    assert auto.text == auto.extracted.text

    forced_text = prepare_text(page, TextFormat.TEXT, "submitted text")
    assert (forced_text.text, forced_text.text_format, forced_text.extracted) == (page, TextFormat.TEXT, None)

    markdown = seed_text("001")
    as_markdown = prepare_text(markdown, TextFormat.MARKDOWN, "x")
    assert (as_markdown.text, as_markdown.text_format) == (markdown, TextFormat.MARKDOWN)
    assert prepare_text(markdown, TextFormat.AUTO, "x").text_format is TextFormat.TEXT

    with pytest.raises(InvalidInputError, match="submitted text was read as HTML but no article text"):
        prepare_text(
            '<html><body><script>var a = 1;</script><img src="x.jpg"></body></html>',
            TextFormat.AUTO,
            "submitted text",
        )
