"""What kind of text a caller sent, and the article inside an HTML page.

A saved news page is mostly not the article: navigation, cookie banners, ads, "most read" lists, share
buttons, footers. Segmenting the page as text would index all of that and make every page of one site
look alike, so HTML goes through trafilatura first (well kept, built for exactly this: main-text
extraction plus title / author / date metadata), and only the extracted article text is segmented.

The extracted text is markdown (trafilatura's markdown serialisation): headings stay headings (``## ...``),
so the segmenter gives them the HEADING role, and paragraphs are separated by blank lines.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from rewrite_detector_server.errors import InvalidInputError

__all__ = ["ExtractedArticle", "PreparedText", "TextFormat", "extract_html", "prepare_text", "sniff_format"]


class TextFormat(enum.Enum):
    """How the caller's text is to be read. AUTO sniffs HTML; TEXT and MARKDOWN are segmented alike (the
    segmenter reads plain text and markdown), they only say "this is not HTML, do not extract"."""

    AUTO = "auto"
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"


@dataclass(frozen=True, slots=True)
class ExtractedArticle:
    """The article found in an HTML page. Empty strings where trafilatura found nothing."""

    text: str
    title: str = ""
    author: str = ""
    # ISO 8601 date (YYYY-MM-DD) as htmldate reports it.
    published_at: str = ""


@dataclass(frozen=True, slots=True)
class PreparedText:
    """The text to segment, the format it was read as, and the extraction when the input was HTML."""

    text: str
    text_format: TextFormat
    extracted: ExtractedArticle | None = None


# Only the head of the input is sniffed: an HTML document or fragment announces itself at once.
_SNIFF_CHARS = 2048
# A document or fragment starts with markup; these elements do not occur at the start of a markdown or
# plain-text article (a markdown autolink `<https://...>` does not match: no element name follows `<`).
_HTML_START = re.compile(
    r"<(?:!doctype\s+html|\?xml|!--|html|head|body|meta|title|article|main|section|header|nav|div|p|h[1-6]"
    r"|span|br|ul|ol|li|table|figure|blockquote|a)(?=[\s>/])",
    re.IGNORECASE,
)
_HTML_DOCUMENT = re.compile(r"<(?:!doctype\s+html|html|head|body)(?=[\s>])", re.IGNORECASE)


def sniff_format(text: str) -> TextFormat:
    """HTML when the text starts with an HTML element (after whitespace / BOM) or declares a document in
    its head; otherwise TEXT. Markdown with inline HTML further down stays TEXT."""
    head = text[:_SNIFF_CHARS].lstrip("\ufeff \t\r\n")
    if head.startswith("<") and (_HTML_START.match(head) or _HTML_DOCUMENT.search(head)):
        return TextFormat.HTML
    return TextFormat.TEXT


def extract_html(html: str) -> ExtractedArticle | None:
    """The main article of an HTML page or fragment with its metadata; ``None`` when there is none.

    Comments sections are left out (reader comments are not the article); tables are kept (they can be
    the article's content). No network access: the page is parsed as given.
    """
    # Imported here: trafilatura pulls in lxml, htmldate, justext (~0.7 s); text-only servers never pay.
    import trafilatura
    from trafilatura.settings import Document
    from trafilatura.xml import xmltotxt

    if not _HTML_DOCUMENT.search(html[:_SNIFF_CHARS]):
        # trafilatura gives up on a bare one-element fragment ("<p>...</p>" from a CMS field) that it
        # extracts fine inside a document; give it one.
        html = f"<html><body>{html}</body></html>"
    document = trafilatura.bare_extraction(
        html,
        with_metadata=True,
        include_comments=False,
        include_tables=True,
        include_formatting=True,
        include_links=False,
        include_images=False,
    )
    if not isinstance(document, Document) or document.body is None:
        return None
    # The same serialisation trafilatura's own `output_format="markdown"` uses, from the one parse above
    # (extract() would parse the page a second time to give the text without the metadata).
    text = unicodedata.normalize("NFC", xmltotxt(document.body, include_formatting=True)).strip()
    if not text:
        return None
    return ExtractedArticle(
        text=text,
        title=_clean(document.title),
        author=_clean(document.author),
        published_at=_clean(document.date),
    )


def prepare_text(text: str, text_format: TextFormat, what: str) -> PreparedText:
    """Resolve AUTO and extract the article from HTML. ``what`` names the input in error messages."""
    resolved = sniff_format(text) if text_format is TextFormat.AUTO else text_format
    if resolved is not TextFormat.HTML:
        return PreparedText(text=text, text_format=resolved)
    extracted = extract_html(text)
    if extracted is None:
        raise InvalidInputError(
            f"{what} was read as HTML but no article text was found in it (only markup, navigation or "
            "boilerplate): send the page with its article body, or set format TEXT if it is not HTML"
        )
    return PreparedText(text=extracted.text, text_format=TextFormat.HTML, extracted=extracted)


def _clean(value: str | None) -> str:
    return " ".join(value.split()) if value else ""
