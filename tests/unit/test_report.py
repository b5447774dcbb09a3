"""The side-by-side HTML report, built from hand-made responses: row layout, word diff, escaping, CSP."""

from __future__ import annotations

import base64
import hashlib
import re
from html.parser import HTMLParser

import pytest

from rewrite_detector import report
from rewrite_detector.report import ReportParagraph, align_rows, divergence_colour, word_diff
from rewrite_detector.v1 import detector_pb2 as pb


def paragraphs(*texts: str, boilerplate: tuple[int, ...] = ()) -> list[ReportParagraph]:
    return [
        ReportParagraph(i, text, pb.BOILERPLATE if i in boilerplate else pb.BODY)
        for i, text in enumerate(texts)
    ]


def pair(sub: list[int], src: list[int], divergence: float = 0.1) -> pb.AlignedPair:
    return pb.AlignedPair(
        submitted_paragraphs=sub,
        source_paragraphs=src,
        similarity=1 - divergence,
        divergence=divergence,
        kind=pb.PARAPHRASE,
    )


def layout(rows: list[report.ReportRow]) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    return [(r.kind, tuple(p.index for p in r.submitted), tuple(p.index for p in r.source)) for r in rows]


# -- row layout ---------------------------------------------------------------------------------------


def test_rows_follow_both_articles_with_gaps_on_either_side() -> None:
    submitted = paragraphs("s0", "s1", "s2", "s3")
    source = paragraphs("t0", "t1", "t2", "t3", "t4")
    rows = align_rows(submitted, source, [pair([0], [1]), pair([2, 3], [3])])
    assert layout(rows) == [
        ("source-only", (), (0,)),  # the source's lead-in, before the first pair
        ("pair", (0,), (1,)),
        ("unaligned", (1,), (2,)),  # a gap on both sides: they face each other
        ("pair", (2, 3), (3,)),  # a merge (2:1) is one row
        ("source-only", (), (4,)),
    ]
    assert [r.number for r in rows if r.kind == "pair"] == [1, 2]


def test_every_paragraph_appears_once_even_when_pairs_are_reordered() -> None:
    submitted = paragraphs("s0", "s1", "s2", "s3")
    source = paragraphs("t0", "t1", "t2", "t3", "t4", "t5")
    pairs = [pair([0], [4]), pair([1], [1]), pair([3], [2, 3])]
    rows = align_rows(submitted, source, pairs)
    shown_sub = [p.index for r in rows for p in r.submitted]
    shown_src = [p.index for r in rows for p in r.source]
    assert sorted(shown_sub) == [0, 1, 2, 3] and len(shown_sub) == 4
    assert sorted(shown_src) == [0, 1, 2, 3, 4, 5] and len(shown_src) == 6
    # Rows follow the submitted article; t5 sits after the row showing t4 (its nearest earlier source).
    assert layout(rows) == [
        ("source-only", (), (0,)),
        ("pair", (0,), (4,)),
        ("source-only", (), (5,)),
        ("pair", (1,), (1,)),
        ("submitted-only", (2,), ()),
        ("pair", (3,), (2, 3)),
    ]


def test_without_pairs_the_two_articles_face_each_other() -> None:
    rows = align_rows(paragraphs("a", "b"), paragraphs("c"), [])
    assert layout(rows) == [("unaligned", (0,), (0,)), ("submitted-only", (1,), ())]


# -- word diff ----------------------------------------------------------------------------------------


def marks(fragment: str) -> list[tuple[str, str]]:
    return re.findall(r'<mark class="(\w+)">(.*?)</mark>', fragment)


def test_word_diff_marks_changed_words_on_both_sides() -> None:
    sub, src = word_diff(
        ["Russia acknowledged Taliban efforts on Wednesday."],
        ["Russia recognized Taliban efforts on Wednesday."],
    )
    assert marks(sub) == [("added", "acknowledged")]
    assert marks(src) == [("removed", "recognized")]
    assert sub.startswith("<p>Russia ") and sub.endswith("</p>")


def test_word_diff_ignores_case_punctuation_and_typographic_quotes() -> None:
    sub, src = word_diff(
        ["The Taliban’s “terrorist” groups, he said"], ['the Taliban\'s "terrorist" groups he said.']
    )
    assert marks(sub) == [] and marks(src) == []


def test_word_diff_tells_moved_words_from_new_ones() -> None:
    sub, src = word_diff(
        ["Since assuming power in mid-August, the talks have been one"],
        ["The talks are one since seizing power in mid-August."],
    )
    assert ("moved", "the talks") in marks(sub) and ("added", "assuming") in marks(sub)
    assert ("moved", "The talks") in marks(src) and ("removed", "seizing") in marks(src)


def test_word_diff_keeps_paragraphs_of_a_merge_apart() -> None:
    sub, src = word_diff(["First part.", "Second part."], ["First part. Second part."])
    assert sub == "<p>First part.</p><p>Second part.</p>"
    assert src == "<p>First part. Second part.</p>"


def test_word_diff_escapes_html() -> None:
    sub, src = word_diff(["<script>alert(1)</script> & co"], ["<b>bold</b> & co"])
    assert "<script>" not in sub and "&lt;script&gt;alert(1)&lt;/script&gt;" in sub
    assert "<b>" not in src and "&amp; co" in src


def test_divergence_colour_runs_from_red_to_yellow() -> None:
    assert divergence_colour(0.0) == ("hsl(0 90% 93%)", "hsl(0 80% 45%)")
    assert divergence_colour(0.15)[0] == "hsl(28 90% 93%)"
    assert divergence_colour(0.3) == divergence_colour(0.9) == ("hsl(55 90% 93%)", "hsl(55 80% 45%)")


# -- whole reports ------------------------------------------------------------------------------------


class _Collector(HTMLParser):
    """Rows by data-row, script bodies, and every URL-bearing attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.scripts: list[str] = []
        self.urls: list[tuple[str, str, str]] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "tr" and values.get("data-row"):
            self.rows.append(values["data-row"] or "")
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append((tag, name, values[name] or ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script:
            self.scripts[-1] += data


def parse(document: str) -> _Collector:
    collector = _Collector()
    collector.feed(document)
    return collector


def sample_check() -> tuple[pb.CheckResponse, pb.GetArticleResponse]:
    submitted = [
        pb.Paragraph(index=0, text="Russia acknowledged Taliban efforts on Wednesday.", role=pb.BODY),
        pb.Paragraph(
            index=1, text="Click here to subscribe <script>alert('x')</script>", role=pb.BOILERPLATE
        ),
        pb.Paragraph(index=2, text="Lavrov expressed disappointment.", role=pb.BODY),
    ]
    source = [
        pb.Paragraph(index=0, text="By Marina Lapenkova", role=pb.BOILERPLATE),
        pb.Paragraph(index=1, text="Russia recognized Taliban efforts on Wednesday.", role=pb.BODY),
        pb.Paragraph(index=2, text="Lavrov expressed regret.", role=pb.BODY),
    ]
    match = pb.SourceMatch(
        source_id="src-1",
        title="Russia Lauds Taliban",
        url="javascript:alert(1)",
        verdict=pb.REWRITE,
        score=0.81,
        coverage_submitted=0.9,
        coverage_source=0.8,
        mean_similarity=0.88,
        published_at="2021-10-21",
        source_is_newer=True,
        pairs=[pair([0], [1], 0.04), pair([2], [2], 0.2)],
    )
    response = pb.CheckResponse(
        verdict=pb.REWRITE,
        score=0.81,
        matches=[match, pb.SourceMatch(source_id="src-2", verdict=pb.PARTIAL_REUSE, score=0.4)],
        paragraphs=submitted,
        model="fake-model",
    )
    article = pb.GetArticleResponse(
        article=pb.Article(id="src-1", text="...", title="Russia Lauds Taliban"), paragraphs=source
    )
    return response, article


def test_check_report_has_verdict_scores_rows_and_warning() -> None:
    response, article = sample_check()
    document = report.report_from_check(
        response, article, submitted_name="suspect.txt", submitted_published_at="2021-10-20"
    )
    parsed = parse(document)
    assert parsed.rows == ["source-only", "pair", "submitted-only", "pair"]
    assert '<span class="verdict rewrite" id="verdict">REWRITE</span>' in document
    assert '<span id="score">0.81</span>' in document
    assert "<b>90%</b>" in document and "<b>0.88</b>" in document  # coverage of submitted, mean similarity
    assert "published on 2021-10-21, after the submitted article (2021-10-20)" in document
    assert "All matching sources" in document and "src-2" in document
    assert 'class="row unpaired boilerplate"' in document  # boilerplate greyed
    assert '<mark class="added">acknowledged</mark>' in document
    assert '<mark class="removed">recognized</mark>' in document


def test_report_is_self_contained_and_safe() -> None:
    response, article = sample_check()
    document = report.report_from_check(response, article)
    parsed = parse(document)
    # One inline script, allowed by hash in the page's CSP; nothing loaded from anywhere.
    assert len(parsed.scripts) == 1
    digest = base64.b64encode(hashlib.sha256(parsed.scripts[0].encode()).digest()).decode()
    assert f"script-src 'sha256-{digest}'" in document
    assert "default-src 'none'" in document
    assert parsed.urls == []  # the javascript: URL is printed, not linked
    assert "javascript:alert(1)" in document
    assert "<script>alert" not in document and "&lt;script&gt;alert(&#x27;x&#x27;)" in document


def test_a_web_url_is_linked() -> None:
    response, article = sample_check()
    response.matches[0].url = "https://example.org/a?b=1&c=2"
    parsed = parse(report.report_from_check(response, article))
    assert parsed.urls == [("a", "href", "https://example.org/a?b=1&c=2")]


def test_report_without_a_match_shows_the_submission_alone() -> None:
    response, _ = sample_check()
    del response.matches[:]
    response.verdict = pb.ORIGINAL
    document = report.report_from_check(response, None)
    assert parse(document).rows == ["submitted-only"] * 3
    assert "no matching source" in document and "ORIGINAL" in document


def test_report_needs_the_texts() -> None:
    response, _ = sample_check()
    with pytest.raises(ValueError, match="include_texts=True"):
        report.report_from_check(pb.CheckResponse(verdict=pb.ORIGINAL), None)
    with pytest.raises(ValueError, match="get_article"):
        report.report_from_check(response, None)
    with pytest.raises(ValueError, match="include_texts=True"):
        report.report_from_compare(pb.CompareResponse(submitted_paragraphs=[pb.Paragraph(index=0)]))


def test_compare_report_names_both_files_and_the_extraction() -> None:
    response = pb.CompareResponse(
        verdict=pb.NEAR_DUPLICATE,
        score=1.0,
        match=pb.SourceMatch(verdict=pb.NEAR_DUPLICATE, score=1.0, pairs=[pair([0], [0], 0.0)]),
        submitted_paragraphs=[pb.Paragraph(index=0, text="Same words.")],
        source_paragraphs=[pb.Paragraph(index=0, text="Same words.")],
        source_format=pb.HTML,
        source_extracted=pb.ExtractedArticle(
            text="Same words.", title="A page", author="A. Writer", published_at="2021-10-20"
        ),
    )
    document = report.report_from_compare(response, submitted_name="a.txt", source_name="page.html")
    assert parse(document).rows == ["pair"]
    assert "a.txt" in document and "page.html" in document and "A page" in document
    assert "text extracted from HTML by A. Writer" in document and "published 2021-10-20" in document
    assert "<mark" not in document.split("<tbody>")[1]  # identical pair: nothing highlighted
