"""Split an article into paragraphs with spans into the original text.

Articles reach us as markdown, as PDF re-extractions (hard-wrapped lines), as one-paragraph-per-line
dumps and as the PAN corpus' scraped web text (arbitrary line breaks). Everything downstream aligns
paragraphs, so the same article must come out as the same paragraph texts whatever its layout, and
every paragraph keeps a span into the caller's string so evidence can be highlighted there.

The contract: for every paragraph `p`, `normalize_inline(text[p.start:p.end]) == p.text`, with
non-empty text and increasing, non-overlapping spans. `segment` never raises on any string.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .types import Paragraph, Role, Segmented

__all__ = ["normalize_inline", "segment", "split_sentences"]

DEFAULT_MAX_PARAGRAPH_CHARS = 1200


def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# ---------------------------------------------------------------------------------------------------
# Inline normalisation
# ---------------------------------------------------------------------------------------------------

# Invisible characters that survive copy/paste and would make identical paragraphs compare unequal;
# the soft hyphen is dropped so a hyphenation hint does not split a word.
_INVISIBLE = re.compile("[\u00ad\u200b\u2060\ufeff]")
# Block markers that only mean something at the start of a paragraph: blockquote `>` (on every line,
# because quoted paragraphs repeat it), then heading hashes and unordered list bullets. Ordered list
# numbers are kept: they can be content ("1. ..." in a list of demands).
_QUOTE_MARKER = re.compile(r"(?:^|(?<=[\n\r\u2028\u2029]))[ \t]*>[ \t]?")
_HEADING_MARKER = re.compile(r"^\s*#{1,6}(?=\s|$)")
_HEADING_CLOSER = re.compile(r"\s#+\s*$")
_BULLET_MARKER = re.compile(r"^\s*[-*+•‣▪◦·](?=\s)")
# All inline markup in one alternation, so that at any position the leftmost construct wins and a
# backslash escape is consumed before `*`/`_`/`[` could be read as markup. Constructs whose content
# can itself hold markup (links, emphasis) are normalised recursively by `_inline_sub`. The leading
# lookahead only lets positions that can open a construct try the alternation (10x faster on prose).
_INLINE = re.compile(
    r"""
    (?=[\\<!\[*_])
    (?:
      \\(?P<esc>[!-/:-@\[-`{-~])
    | <(?P<auto>(?:[A-Za-z][A-Za-z0-9+.\-]{1,31}:|www\.)[^\s<>]*)>
    | (?P<img>!)?\[(?P<text>(?:\\[\s\S]|[^\\\[\]]|\[(?:\\[\s\S]|[^\\\[\]])*\])*)\]
      (?:\([^()\s]*(?:\([^()\s]*\)[^()\s]*)*(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)|\[[^\[\]]*\])
    | (?<![\w\\])(?P<td>\*\*\*|___)(?=\S)(?P<both>(?:\\[\s\S]|[^\\*_]|(?!(?P=td))[*_])+?)(?<=\S)(?P=td)(?!\w)
    | (?<![\w\\])(?P<sd>\*\*|__)(?=\S)(?P<strong>(?:\\[\s\S]|[^\\*_]|(?!(?P=sd))[*_])+?)(?<=\S)(?P=sd)(?!\w)
    | (?<![\w\\*])\*(?=[^\s*])(?P<em>(?:\\[\s\S]|[^\\*])+?)(?<=[^\s\\])\*(?![\w*])
    | (?<![\w\\_])_(?=[^\s_])(?P<em2>(?:\\[\s\S]|[^\\_])+?)(?<=[^\s\\])_(?![\w_])
    )
    """,
    re.VERBOSE,
)


def _inline_sub(m: re.Match[str]) -> str:
    if m.group("esc") is not None:
        return m.group("esc")
    if m.group("auto") is not None:
        return m.group("auto")
    if m.group("text") is not None:
        # An image is not article text; a link reads as its anchor text.
        return "" if m.group("img") else _INLINE.sub(_inline_sub, m.group("text"))
    for name in ("both", "strong", "em", "em2"):
        inner = m.group(name)
        if inner is not None:
            return _INLINE.sub(_inline_sub, inner)
    return m.group(0)  # pragma: no cover - every alternative has a named group


def normalize_inline(raw: str) -> str:
    """Normalise a raw paragraph slice: drop markdown markup, collapse all whitespace, strip.

    Quotes, apostrophes and case are left alone: other stages decide how to compare those.
    """
    s = _INVISIBLE.sub("", raw)
    if ">" in s:
        s = _QUOTE_MARKER.sub("", s)
    heading = _HEADING_MARKER.match(s)
    s = _HEADING_CLOSER.sub("", s[heading.end() :]) if heading else _BULLET_MARKER.sub("", s, count=1)
    s = _INLINE.sub(_inline_sub, s)
    # str.split() splits on exactly the characters `\s` matches (incl. NBSP), and is much faster.
    return " ".join(s.split())


# ---------------------------------------------------------------------------------------------------
# Sentence splitting
# ---------------------------------------------------------------------------------------------------
# Hand-written on purpose: NLTK punkt and spaCy need model downloads (impossible offline), and most
# splitters return strings rather than offsets into the original text, which we need for spans.

# A terminator run plus whatever closes around it (quotes, brackets, markdown emphasis). Latin
# terminators only end a sentence before whitespace; CJK ones need none.
_TERMINATOR = re.compile(r"""(?:(?P<latin>[.!?…]+)|(?P<cjk>[。！？]+))["'”’»)\]*_]*""")
_OPENERS = "\"'“‘«([*_"
_CLOSERS = "\"'”’»)]*_"
# Abbreviations before a name or number: a period after them never ends a sentence.
_TITLE_ABBREVIATIONS = _words(
    "mr mrs ms mx dr prof sen rep gov gen lt col capt cpt sgt maj adm cmdr rev hon pres supt insp "
    "fr messrs mme mlle sra st e.g i.e cf viz vs v pp p"
)
# Abbreviations that often close a sentence too ("... Apple Inc. The company ..."): they end one
# only when the next word is a typical sentence opener (see `_SENTENCE_STARTERS`).
_ABBREVIATIONS = _words(
    "jan feb apr jun jul aug sep sept oct nov dec mon tue tues thu thur thurs fri inc ltd co corp llc "
    "plc bros jr sr etc al dept univ assn ave blvd rd mt ft est min max govt intl natl no nos nr art "
    "fig figs vol vols ch sec ed eds op approx ca"
)
_SENTENCE_STARTERS = _words(
    "a an the he she it they we i you his her its their our my your this that these those there here "
    "but and or so yet in on at for of to by with from as if when while after before since because "
    "however meanwhile moreover still then now also some many most one two three all both each "
    "no not what who why how where which"
)
# Initials ("J.") and acronyms with inner dots ("U.S", "a.m") are abbreviations too.
_DOTTED_TOKEN = re.compile(r"(?:[A-Za-z]\.)*[A-Za-z]")


def _next_word(text: str, pos: int, end: int) -> str:
    """The word starting at `pos` (openers skipped), lower-cased."""
    while pos < end and text[pos] in _OPENERS:
        pos += 1
    stop = pos
    while stop < end and (text[stop].isalnum() or text[stop] in "'’-"):
        stop += 1
    return text[pos:stop].lower()


def _starts_lowercase_at(text: str, pos: int, end: int) -> bool:
    while pos < end and text[pos] in _OPENERS:
        pos += 1
    return pos < end and text[pos].islower()


def _is_boundary(text: str, term_start: int, term: str, next_pos: int, end: int) -> bool:
    if _starts_lowercase_at(text, next_pos, end):
        return False
    if term != ".":
        return True
    token_start = term_start
    while token_start > 0 and not text[token_start - 1].isspace():
        token_start -= 1
    token = text[token_start:term_start].lstrip(_OPENERS)
    if not token or token[-1] in _CLOSERS or token[-1].isdigit():
        return True
    lowered = token.lower()
    if lowered in _TITLE_ABBREVIATIONS:
        return False
    if lowered in _ABBREVIATIONS or _DOTTED_TOKEN.fullmatch(token):
        return _next_word(text, next_pos, end) in _SENTENCE_STARTERS
    return True


def split_sentences(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Sentence spans inside `text[start:end]`, as offsets into `text`, whitespace trimmed.

    Together the spans cover every non-whitespace character of the range, in order.
    """
    start = max(0, min(start, len(text)))
    end = max(start, min(end, len(text)))
    spans: list[tuple[int, int]] = []
    cur = start
    while cur < end and text[cur].isspace():
        cur += 1
    for m in _TERMINATOR.finditer(text, cur, end):
        after = m.end()
        if m.group("latin") is not None:
            if after < end and not text[after].isspace():
                continue
            next_pos = after
            while next_pos < end and text[next_pos].isspace():
                next_pos += 1
            if next_pos >= end or not _is_boundary(text, m.start(), m.group("latin"), next_pos, end):
                continue
        else:
            next_pos = after
            while next_pos < end and text[next_pos].isspace():
                next_pos += 1
            if next_pos >= end:
                continue
        if m.start() < cur:
            continue
        spans.append((cur, after))
        cur = next_pos
    stop = end
    while stop > cur and text[stop - 1].isspace():
        stop -= 1
    if stop > cur:
        spans.append((cur, stop))
    return spans


# ---------------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------------

_AGENCY = (
    r"(?:TASS|AFP|AP|Reuters|EPA(?:-EFE)?|EFE|Getty(?:\s+Images)?|Bloomberg|Shutterstock|Alamy|Sputnik"
    r"|RIA\s+Novosti|Xinhua|Anadolu(?:\s+Agency)?|NurPhoto|SOPA\s+Images|ZUMA(?:\s+(?:Press|Wire))?"
    r"|PA(?:\s+(?:Images|Wire))?|Press\s+Association|Kommersant|Vedomosti|Interfax|Kyodo|Yonhap|CNA"
    r"|dpa|ANSA|PTI|IANS|ANI|Pool|Handout|Wikimedia\s+Commons|Wikicommons|Flickr|Unsplash|Pexels"
    r"|Kremlin\.ru|(?:The\s+)?Moscow\s+Times|Taipei\s+Times|Xinhua\s+News\s+Agency|AAP|UPI)"
)
_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?"
    r"|Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)\.?"
)
_DATE = (
    rf"(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}|\d{{1,2}}(?:st|nd|rd|th)?\s+{_MONTH},?\s+\d{{4}}"
    rf"|{_MONTH}\s+\d{{4}}|\d{{4}}-\d{{2}}-\d{{2}}|\d{{1,2}}[/.]\d{{1,2}}[/.]\d{{2,4}})"
)
_TIME = r"\d{1,2}[:.]\d{2}(?:\s*[ap]\.?m\.?)?(?:\s*\(?[A-Z]{2,5}(?:[+-]\d{1,2})?\)?)?"

# A byline: "By Marina Lapenkova for AFP", "By JOHN SMITH and Jane Doe". Names only, so that a
# sentence starting with "By" ("By Wednesday the city had fallen.") stays body: see `_is_byline`.
_BYLINE = re.compile(r"^(?:by|written\s+by|words\s+by|story\s+by|text\s+by)\s*:?\s+(?P<names>.+)$", re.I)
_BYLINE_CONNECTORS = _words("and for in of with at from de da del der la le van von bin al & , the")
# Agency credit lines used instead of bylines ("Staff writer, with AFP", "Reporting by ...").
_CREDIT_LINE = re.compile(
    r"^(?:(?:staff|special)\s+(?:writer|reporter|correspondent)s?(?:\s*,\s*with\s+.{1,40})?"
    r"|(?:additional\s+)?(?:reporting|writing|editing)\s+by\b.{1,160}"
    r"|compiled\s+by\b.{1,80}|with\s+agencies|agencies)$",
    re.I,
)
# A standalone date or timestamp line ("October 20, 2021", "Published: 20 Oct 2021 10:45 GMT").
_DATE_LINE = re.compile(
    rf"^(?:(?:published|updated|posted|last\s+updated|first\s+published|date)(?:\s+on)?\s*:?\s*)?"
    rf"(?:(?:mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,?\s+)?{_DATE}"
    rf"(?:\s*(?:,|at|-|–|—|\|)?\s*{_TIME})?(?:\s*(?:\||-|–|—|/)\s*(?:updated|published).{{0,60}})?$",
    re.I,
)
# An all-caps dateline block ("AFP, MOSCOW", "REUTERS, WASHINGTON") or a lone agency name: they
# tell where the copy came from, not what happened.
_DATELINE = re.compile(
    rf"^(?:[A-Z][A-Z.&'’\- ]{{1,30}}(?:\s*,\s*[A-Z][A-Z.&'’\- ]{{1,30}}){{1,3}}"
    rf"|{_AGENCY}(?:\s*[,/&]\s*{_AGENCY})*)$"
)
# Photo captions end in a credit. Caption sentences are long and descriptive, so the credit is the
# only reliable tell: "... President Hotel. Sergei Bobylev / TASS", "... Photo: Reuters",
# "(AP Photo/Evan Vucci)", "... Getty Images".
# Agency names are matched case-sensitively ("AP", not "ap"); only the keywords ignore case.
_CAPTION_CREDIT = re.compile(
    rf"(?:(?:^|\s)(?i:photo(?:graph)?s?|image|picture|pic|credit|photo\s+credit)\s*(?i:by)?\s*[:/]\s*[^.!?:]{{1,80}}"
    rf"|(?:^|\s)(?i:photo(?:graph)?s?\s+(?:courtesy\s+of|by))\s+[^.!?]{{1,80}}"
    rf"|\([^()]*\b(?i:photos?)\b[^()]*\)"
    rf"|\([^()]*/\s*{_AGENCY}[^()]*\)"
    rf"|\S\s*/\s*{_AGENCY}(?:\s+via\s+{_AGENCY})?"
    rf"|[.!?\"”’)]\s+{_AGENCY}(?:\s+(?i:photo|images?))?"
    rf"|\bGetty\s+Images)\s*$"
)
# Links to other stories, calls to action, sharing and advertising furniture.
_RELATED = re.compile(
    r"^(?:related(?:\s+(?:articles?|stor(?:y|ies)|content|coverage|news|reading|links?|posts?|videos?))?"
    r"|read\s+(?:more|also|next|the\s+full\s+(?:story|article))|see\s+also|also\s+(?:read|see)"
    r"|more\s+on\s+this(?:\s+story)?|more\s+from\s+[^.!?]{1,40}|further\s+reading|recommended(?:\s+for\s+you)?"
    r"|you\s+(?:may|might)\s+also\s+like|most\s+(?:read|popular|viewed)|trending(?:\s+now)?"
    r"|watch(?:\s+(?:now|more|the\s+video))?|listen(?:\s+to\s+(?:this|the)\s+(?:article|story))?)"
    r"(?:\s*[:|»>].*|\s+[–—-]\s.*)?$",
    re.I,
)
# "click here", newsletter and subscription pitches: never article prose, but only trusted on
# short paragraphs, where they cannot be quoting someone's long statement.
# (The lookahead lets `search` skip every position that cannot start a phrase: 10x faster.)
_CALL_TO_ACTION = re.compile(
    r"(?=[cslf])\b(?:click\s+here|subscribe\s+to\s+our|sign\s+up\s+for\s+our|follow\s+us\s+on"
    r"|like\s+us\s+on\s+facebook)\b",
    re.I,
)
_CALL_TO_ACTION_START = re.compile(r"(?:subscribe|sign\s+up|register\s+now|join\s+us)\b", re.I)
# Sharing widgets and ad slots that extractors leave behind as whole paragraphs.
_WIDGET = re.compile(
    r"^(?:share(?:\s+(?:this|the)(?:\s+(?:article|story|post|page))?)?(?:\s+on\s+\w+)?|tweet|e-?mail|print"
    r"|comments?|advertisement|advertising|sponsored(?:\s+content)?|ad|skip\s+(?:advert|ad)"
    r"|story\s+continues\s+below(?:\s+advertisement)?|continue\s+reading(?:\s+below)?)\s*[:|]?\s*$",
    re.I,
)
# Where the copy came from: "Original url:", "Source: ...", copyright and syndication notes.
_SOURCE_NOTE = re.compile(
    r"(?:original\s+(?:url|article|link|source|story)|source(?:\s+(?:url|link))?|url|link|permalink)\s*:"
    r"|(?:©|\(c\)\s|copyright\s*(?:©|\(c\)|\d{4}))"
    r"|this\s+(?:article|story)\s+(?:was\s+)?(?:originally|first)\s+(?:published|appeared)\b",
    re.I,
)
_RIGHTS_RESERVED = re.compile(r"(?=[aA])\ball\s+rights\s+reserved\b", re.I)
# A paragraph that is nothing but a URL (autolinks are already unwrapped by `normalize_inline`).
_BARE_URL = re.compile(r"^<?(?:[a-z][a-z0-9+.\-]{1,31}://|www\.)\S+>?$", re.I)

_SHORT_BOILERPLATE_CHARS = 300
# Captions run to a few sentences; a longer paragraph ending in a credit is body that quotes one.
_CAPTION_MAX_CHARS = 600
_CAPTION_TAIL_CHARS = 250
_HEADING_MAX_WORDS = 16
_HEADING_MAX_CHARS = 150
_SENTENCE_FINAL = ".!?…:;,。！？"


def _is_byline(text: str) -> bool:
    m = _BYLINE.match(text)
    if not m or len(text) > 120 or text[-1] in ".!?":
        return False
    words = m.group("names").replace(",", " , ").split()
    if not words or not words[0][:1].isupper():
        return False
    return all(w[:1].isupper() or w.lower() in _BYLINE_CONNECTORS for w in words) and len(words) <= 12


def _looks_like_heading(text: str) -> bool:
    """A short line with no closing punctuation that starts like a title ("Terrorism and drug concerns")."""
    core = text.rstrip(_CLOSERS)
    if not core or core[-1] in _SENTENCE_FINAL or len(text) > _HEADING_MAX_CHARS:
        return False
    if len(text.split()) > _HEADING_MAX_WORDS:
        return False
    first = text.lstrip(_OPENERS)[:1]
    return bool(first) and (first.isupper() or first.isdigit()) and any(c.isalpha() for c in text)


def _is_boilerplate(text: str) -> bool:
    if len(text) <= _SHORT_BOILERPLATE_CHARS and (_SOURCE_NOTE.match(text) or _RIGHTS_RESERVED.search(text)):
        return True
    if _BARE_URL.match(text) or _WIDGET.match(text) or _DATE_LINE.match(text) or _DATELINE.match(text):
        return True
    if _is_byline(text) or _CREDIT_LINE.match(text) or _RELATED.match(text):
        return True
    if len(text) <= _SHORT_BOILERPLATE_CHARS and (
        _CALL_TO_ACTION_START.match(text) or _CALL_TO_ACTION.search(text)
    ):
        return True
    # Every credit form is anchored at the end and short, so only the tail needs scanning (`pos`
    # keeps `^` and lookbehinds seeing the real string).
    return len(text) <= _CAPTION_MAX_CHARS and bool(
        _CAPTION_CREDIT.search(text, max(0, len(text) - _CAPTION_TAIL_CHARS))
    )


# A paragraph with no letter or digit ("** --", "...") carries no text to compare: it keeps its span
# but is never embedded or counted.
_HAS_WORD = re.compile(r"[^\W_]")


def _classify(text: str, raw: str, *, is_title: bool) -> Role:
    if not _HAS_WORD.search(text):
        return Role.BOILERPLATE
    if is_title:
        return Role.HEADING
    stripped = raw.lstrip()
    if stripped.startswith("#") and _HEADING_MARKER.match(stripped):
        return Role.BOILERPLATE if _is_boilerplate(text) else Role.HEADING
    if _is_boilerplate(text):
        return Role.BOILERPLATE
    if _looks_like_heading(text):
        return Role.HEADING
    return Role.BODY


# ---------------------------------------------------------------------------------------------------
# Lines and blocks
# ---------------------------------------------------------------------------------------------------

# Every line-break convention; spans keep indexing the original string whichever is used.
_NEWLINE = re.compile(r"\r\n|[\n\r\u2028\u2029]")
# Lines that only separate: blank ones (whitespace incl. NBSP, invisible characters) and rules:
# markdown rules / setext underlines and code fences (with at most a language tag: "~~~ F. Kafka"
# is a signature, not a fence). A paragraph may continue across blank lines, never across a rule.
_BLANK_LINE = re.compile(r"[\s\u00ad\u200b\u2060\ufeff]*")
_RULE_LINE = re.compile(r"\s*(?:(?:[-*_=~]\s*){3,}|(?:`{3,}|~{3,})[\w+.#-]*\s*)")
# Lines that start a new paragraph whatever precedes them in the block.
_STRUCTURAL_LINE = re.compile(r"\s*(?:#{1,6}(?:\s|$)|(?:[-*+•‣▪◦·]|\d{1,3}[.)])\s+\S|\|.*\|\s*$)")
_HEADING_LINE = re.compile(r"\s*#{1,6}(?:\s|$)")
_URL_START = re.compile(r"\s*<?(?:[a-z][a-z0-9+.\-]{1,31}://|www\.)", re.I)
# The "date YYYY-MM-DD " prefix some feeds put before the title on the first line: metadata, not text.
_DATE_PREFIX = re.compile(r"[ \t\u00a0]*date[ \t\u00a0]+\d{4}-\d{2}-\d{2}(?=\s|$)[ \t\u00a0]*")
# A line ending in one of these words is cut mid-phrase, so the next line continues it.
_WRAP_WORDS = _words(
    "the a an of to in on at for with by from and or nor but as that than into onto over under between "
    "about against through during without within is are was were be been being has have had will would "
    "can could should may might must its their his her our your my this these those which who whose "
    "not very such"
)
# Lines longer than this cannot be hard wraps of any layout we see.
_MAX_WRAP_WIDTH = 140


@dataclass(slots=True)
class _Line:
    start: int  # first non-whitespace character
    end: int  # one past the last non-whitespace character
    indent: int
    raw: str
    structural: bool
    heading: bool

    @property
    def length(self) -> int:
        return self.end - self.start + self.indent


def _ends_closed(raw: str) -> bool:
    core = raw.rstrip().rstrip(_CLOSERS)
    return bool(core) and core[-1] in ".!?…:。！？"


def _ends_mid_phrase(raw: str) -> bool:
    core = raw.rstrip()
    if core.endswith((",", "&")):
        return True
    words = core.split()
    return bool(words) and words[-1].lower() in _WRAP_WORDS


def _starts_lowercase(raw: str) -> bool:
    s = raw.lstrip()
    if _URL_START.match(s):
        return False
    return _starts_lowercase_at(s, 0, len(s))


def _lines(text: str, begin: int) -> list[_Line | bool]:
    """Lines from offset `begin`: text lines as `_Line`; separators as False (blank) or True (rule)."""
    out: list[_Line | bool] = []
    pos = begin
    n = len(text)
    while pos <= n:
        m = _NEWLINE.search(text, pos)
        stop = m.start() if m else n
        raw = text[pos:stop]
        if _BLANK_LINE.fullmatch(raw):
            out.append(False)
        elif _RULE_LINE.fullmatch(raw):
            out.append(True)
        else:
            lead = len(raw) - len(raw.lstrip())
            trail = len(raw.rstrip())
            out.append(
                _Line(
                    start=pos + lead,
                    end=pos + trail,
                    indent=lead,
                    raw=raw,
                    structural=bool(_STRUCTURAL_LINE.match(raw)),
                    heading=bool(_HEADING_LINE.match(raw)),
                )
            )
        if not m:
            break
        pos = m.end()
    return out


def _blocks(lines: Sequence[_Line | bool]) -> tuple[list[list[_Line]], list[bool]]:
    """Runs of text lines, and for each whether a rule separates it from the previous run."""
    blocks: list[list[_Line]] = []
    after_rule: list[bool] = []
    current: list[_Line] = []
    rule = False
    for line in lines:
        if isinstance(line, _Line):
            if not current:
                after_rule.append(rule)
                rule = False
            current.append(line)
        else:
            rule = rule or line
            if current:
                blocks.append(current)
                current = []
    if current:
        blocks.append(current)
    return blocks, after_rule


@dataclass(slots=True)
class _Layout:
    """How single newlines inside a block behave in this document."""

    soft_wrapped: bool  # lines are wrapped prose: a newline is a space unless something says otherwise
    wrap_width: int | None  # set when the prose is hard-wrapped at a fixed width (PDF, email)


def _layout(blocks: Sequence[list[_Line]], *, has_blank_lines: bool) -> _Layout:
    pairs = [
        (a, b) for block in blocks for a, b in itertools.pairwise(block) if not b.structural and not a.heading
    ]
    if len(pairs) < 3:
        # Too few in-block newlines to learn from: blank-line separated text treats them as soft wraps
        # (markdown semantics), text without blank lines has one paragraph per line.
        return _Layout(soft_wrapped=has_blank_lines, wrap_width=None)
    signals = sum(
        1
        for a, b in pairs
        if not _ends_closed(a.raw) and (_starts_lowercase(b.raw) or _ends_mid_phrase(a.raw))
    )
    soft = signals >= 0.5 * len(pairs)
    width = None
    if soft:
        lengths = sorted(a.length for a, _ in pairs if not _ends_closed(a.raw))
        if len(lengths) >= 4:
            p90 = lengths[int(0.9 * (len(lengths) - 1))]
            near = sum(1 for x in lengths if x >= 0.75 * p90)
            if p90 <= _MAX_WRAP_WIDTH and near >= 0.6 * len(lengths):
                width = p90
    return _Layout(soft_wrapped=soft, wrap_width=width)


def _breaks_between(a: _Line, b: _Line, layout: _Layout) -> bool:
    """Whether the newline between consecutive lines `a` and `b` of one block ends a paragraph."""
    if a.heading or b.structural:
        return True
    a_closed = _ends_closed(a.raw)
    b_lower = _starts_lowercase(b.raw)
    if not a_closed and (b_lower or _ends_mid_phrase(a.raw)):
        return False
    if not layout.soft_wrapped:
        return True
    if b_lower:
        return False
    # In wrapped prose a paragraph still ends where the next line is indented (PDF first-line indent)
    # or where a line stops well short of the wrap width (it was not wrapped: it ended). A short
    # unpunctuated line after a finished sentence is a subheading or a label: it stands alone.
    if b.indent > a.indent and a_closed:
        return True
    width = layout.wrap_width
    if width is not None:
        if a.length < (0.75 if a_closed else 0.6) * width:
            return True
        if a_closed and b.length < 0.6 * width and not _ends_closed(b.raw):
            return True
    return False


# ---------------------------------------------------------------------------------------------------
# Long paragraphs
# ---------------------------------------------------------------------------------------------------


def _split_words(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Split a span at whitespace into pieces whose normalised text is at most `limit` chars.

    Raw lengths are used (a token plus one space per gap), which bound the normalised length from
    above because normalisation only ever removes characters. A token longer than `limit` (a URL, a
    run of symbols) is cut inside: never truncated.
    """
    tokens: list[tuple[int, int]] = []
    for m in re.finditer(r"\S+", text[start:end]):
        a, b = start + m.start(), start + m.end()
        while b - a > limit:
            tokens.append((a, a + limit))
            a += limit
        tokens.append((a, b))
    pieces: list[tuple[int, int]] = []
    cur: tuple[int, int] | None = None
    cur_len = 0
    for a, b in tokens:
        if cur is None:
            cur, cur_len = (a, b), b - a
        elif cur_len + 1 + (b - a) <= limit:
            cur, cur_len = (cur[0], b), cur_len + 1 + (b - a)
        else:
            pieces.append(cur)
            cur, cur_len = (a, b), b - a
    if cur is not None:
        pieces.append(cur)
    return pieces


def _split_long(text: str, start: int, end: int, limit: int) -> list[tuple[int, int]]:
    """Split an over-long paragraph at sentence boundaries into balanced pieces of <= `limit` chars."""
    units: list[tuple[int, int]] = []
    lengths: list[int] = []
    for a, b in split_sentences(text, start, end):
        n = len(normalize_inline(text[a:b]))
        if n <= limit:
            units.append((a, b))
            lengths.append(n)
        else:
            for piece in _split_words(text, a, b, limit):
                units.append(piece)
                lengths.append(len(normalize_inline(text[piece[0] : piece[1]])))
    # Aim for equal pieces rather than full ones followed by a scrap (each piece is embedded alone):
    # every piece stops at the boundary nearest to an equal share of what is left. Pieces are packed
    # on the sum of the units' normalised lengths (re-normalising every candidate would be
    # quadratic), then checked exactly below.
    remaining = [0] * (len(lengths) + 1)
    for i in range(len(lengths) - 1, -1, -1):
        remaining[i] = remaining[i + 1] + lengths[i] + 1
    groups: list[list[int]] = []
    cur_len = 0
    target = 0.0
    for i, n in enumerate(lengths):
        joined = cur_len + 1 + n
        if not groups or joined > limit or abs(cur_len - target) <= abs(joined - target):
            groups.append([i])
            cur_len = n
            target = remaining[i] / math.ceil(remaining[i] / limit)
        else:
            groups[-1].append(i)
            cur_len = joined
    pieces: list[tuple[int, int]] = []
    for group in groups:
        span = (units[group[0]][0], units[group[-1]][1])
        if len(group) == 1 or len(normalize_inline(text[span[0] : span[1]])) <= limit:
            pieces.append(span)
        else:
            # Markup or a list marker that normalises differently across the join: fall back to
            # one piece per unit, each of which fits.
            pieces.extend(units[i] for i in group)
    return pieces


# ---------------------------------------------------------------------------------------------------
# segment
# ---------------------------------------------------------------------------------------------------


def _units(text: str) -> tuple[list[list[_Line]], bool]:
    """Group lines into paragraph units; the flag says the first unit is a "date ..." title."""
    prefix = _DATE_PREFIX.match(text)
    lines = _lines(text, prefix.end() if prefix else 0)
    has_title = prefix is not None and isinstance(lines[0], _Line)
    blocks, after_rule = _blocks(lines)
    layout = _layout(blocks, has_blank_lines=len(blocks) >= 2)

    units: list[list[_Line]] = []
    for bi, block in enumerate(blocks):
        first_of_block = len(units)
        for li, line in enumerate(block):
            if li == 0 or _breaks_between(block[li - 1], line, layout) or (has_title and bi == 0 and li == 1):
                units.append([line])
            else:
                units[-1].append(line)
        # A paragraph broken across a blank line ("... told officials\n\nfrom 10 countries ..."):
        # the previous block stops mid-sentence and this one starts in lower case.
        if bi > 0 and not after_rule[bi] and not (has_title and first_of_block == 1):
            prev_last = units[first_of_block - 1][-1]
            head = units[first_of_block][0]
            if (
                not prev_last.heading
                and not head.structural
                and not _ends_closed(prev_last.raw)
                and _starts_lowercase(head.raw)
            ):
                units[first_of_block - 1].extend(units.pop(first_of_block))
    return units, has_title


def segment(text: str, *, max_paragraph_chars: int = DEFAULT_MAX_PARAGRAPH_CHARS) -> Segmented:
    """Split `text` into paragraphs with roles and spans into `text`.

    Paragraphs longer than `max_paragraph_chars` (normalised) are split at sentence boundaries, or at
    whitespace inside one over-long sentence, so that every piece fits the embedding model's window.
    """
    if max_paragraph_chars < 1:
        raise ValueError(f"max_paragraph_chars must be positive, got {max_paragraph_chars}")
    units, has_title = _units(text)
    paragraphs: list[Paragraph] = []
    title = ""
    seen_body = False
    for ui, unit in enumerate(units):
        start, end = unit[0].start, unit[-1].end
        raw = text[start:end]
        norm = normalize_inline(raw)
        if not norm:
            continue
        is_title = has_title and ui == 0
        role = _classify(norm, raw, is_title=is_title)
        if role is Role.HEADING and not title and not seen_body:
            title = norm
        seen_body = seen_body or role is Role.BODY
        spans = (
            [(start, end)]
            if len(norm) <= max_paragraph_chars
            else _split_long(text, start, end, max_paragraph_chars)
        )
        for a, b in spans:
            piece = norm if (a, b) == (start, end) else normalize_inline(text[a:b])
            if piece:
                paragraphs.append(Paragraph(index=len(paragraphs), start=a, end=b, text=piece, role=role))
    return Segmented(text=text, paragraphs=tuple(paragraphs), title=title)
