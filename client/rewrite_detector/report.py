"""Side-by-side HTML report of a check or a compare: one self-contained file a moderator can open.

The submitted article and its source run in two aligned columns; each aligned pair is one row, tinted by
its divergence (red = copied word for word, yellow = reworded), with the words that differ highlighted
inside the pair; unaligned paragraphs of the two sides face each other in rows of their own; boilerplate is
greyed. The verdict and the scores sit at the top.

Built on the client from the responses alone (``Check``/``Compare`` with ``include_texts`` and, for a check,
``GetArticle`` of the source), so it works against a remote server. Pure: messages in, an HTML string out;
no torch, no network, no external assets (inline CSS and script, allowed by the page's own CSP).

The word diff is stdlib ``difflib.SequenceMatcher`` over word tokens: paragraphs are at most a few hundred
words (the segmenter caps them), so its quadratic worst case never matters, its opcodes are exactly the
equal / replace / insert / delete runs we highlight, and the light client keeps no extra dependency
(rapidfuzz lives in the server extra).
"""

from __future__ import annotations

import base64
import datetime as dt
import difflib
import hashlib
import html
import itertools
import re
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from string import Template
from typing import Literal

from rewrite_detector.v1 import detector_pb2 as pb

__all__ = [
    "ReportParagraph",
    "ReportRow",
    "align_rows",
    "divergence_colour",
    "report_from_check",
    "report_from_compare",
    "word_diff",
]

# "unaligned": a gap on both sides, one unaligned paragraph of each side facing each other.
RowKind = Literal["pair", "unaligned", "submitted-only", "source-only"]

_TEMPLATE = "report_template.html"
_SCRIPT_MARKER = re.compile(r"<script>(.*?)</script>", re.DOTALL)
_WORD = re.compile(r"\S+")
_EDGE_PUNCTUATION = re.compile(r"^[\W_]+|[\W_]+$")
# Typographic and straight quotes / dashes are the same word to a reader ("Taliban’s" = "Taliban's").
_TYPOGRAPHY = str.maketrans(
    {"‘": "'", "’": "'", "‚": "'", "‛": "'", "“": '"', "”": '"', "„": '"', "–": "-", "—": "-"}
)
# A pair whose divergence reaches this is drawn in the last colour of the scale (yellow); paraphrases
# by the bundled model sit at 0.1-0.3, copies below 0.05.
_DIVERGENCE_SCALE_END = 0.3

_UNPAIRED_NOTES = {"unaligned": "not aligned", "submitted-only": "not in source", "source-only": "not used"}
_NO_SOURCE_HEAD = '<div class="side-head"><div class="side-label">Source</div>no matching source</div>'
_VERDICT_TEXT: dict[int, str] = {
    pb.ORIGINAL: "Nothing material taken from an indexed source.",
    pb.PARTIAL_REUSE: "Some paragraphs come from the source; most of the article does not.",
    pb.REWRITE: "Most of the article is a paraphrase of the source.",
    pb.NEAR_DUPLICATE: "The same text as the source, formatting aside.",
}


@dataclass(frozen=True, slots=True)
class ReportParagraph:
    index: int
    text: str
    role: int = pb.BODY

    @property
    def is_boilerplate(self) -> bool:
        return self.role == pb.BOILERPLATE


@dataclass(frozen=True, slots=True)
class ReportRow:
    """One row of the side-by-side table: an aligned pair, or a paragraph one side has and the other not."""

    kind: RowKind
    submitted: tuple[ReportParagraph, ...] = ()
    source: tuple[ReportParagraph, ...] = ()
    pair: pb.AlignedPair | None = None
    number: int = 0  # 1-based pair number; 0 for unpaired rows


@dataclass(frozen=True, slots=True)
class _Side:
    label: str
    name: str = ""
    title: str = ""
    url: str = ""
    published_at: str = ""
    note: str = ""
    paragraphs: tuple[ReportParagraph, ...] = ()


@dataclass(frozen=True, slots=True)
class _Report:
    verdict: int
    score: float
    submitted: _Side
    source: _Side | None
    match: pb.SourceMatch | None
    other_matches: Sequence[pb.SourceMatch] = ()
    model: str = ""
    total_ms: float = 0.0
    kind: str = "check"
    warnings: list[str] = field(default_factory=list)


# -- public API ---------------------------------------------------------------------------------------


def report_from_check(
    response: pb.CheckResponse,
    source: pb.GetArticleResponse | None = None,
    *,
    submitted_name: str = "submitted article",
    submitted_published_at: str = "",
) -> str:
    """The report of a ``Check`` made with ``include_texts=True`` against its best match.

    ``source`` is ``GetArticle(best match id, include_paragraphs=True)``; ``None`` when nothing matched
    (the report then shows the submitted article alone). ``submitted_published_at`` is the date sent with
    the check (the date extracted from an HTML submission is used when it is empty).
    """
    if not response.paragraphs:
        raise ValueError("the check response carries no paragraphs: call check with include_texts=True")
    match = response.matches[0] if response.matches else None
    if match is not None and (source is None or not source.paragraphs):
        raise ValueError(
            f"the source {match.source_id!r} is needed with its paragraphs: "
            "pass get_article(source_id, include_paragraphs=True)"
        )
    extracted = response.extracted if response.HasField("extracted") else None
    submitted = _Side(
        label="Submitted",
        name=submitted_name,
        title=extracted.title if extracted else "",
        published_at=submitted_published_at or (extracted.published_at if extracted else ""),
        note=_extracted_note(extracted),
        paragraphs=_paragraphs(response.paragraphs),
    )
    source_side = None
    warnings = []
    if match is not None and source is not None:
        article = source.article
        source_side = _Side(
            label="Source",
            name=match.source_id,
            title=match.title or article.title,
            url=match.url or article.url,
            published_at=match.published_at or article.published_at,
            note="text extracted from HTML" if article.metadata.get("source_format") == "html" else "",
            paragraphs=_paragraphs(source.paragraphs),
        )
        if match.source_is_newer:
            warnings.append(_newer_warning(match, submitted.published_at))
    return _render(
        _Report(
            verdict=response.verdict,
            score=response.score,
            submitted=submitted,
            source=source_side,
            match=match,
            other_matches=list(response.matches),
            model=response.model,
            total_ms=response.timing.total_ms,
            kind="check",
            warnings=warnings,
        )
    )


def report_from_compare(
    response: pb.CompareResponse, *, submitted_name: str = "submitted", source_name: str = "source"
) -> str:
    """The report of a ``Compare`` made with ``include_texts=True``."""
    if not any(p.text for p in response.submitted_paragraphs):
        raise ValueError(
            "the compare response carries no paragraph texts: call compare with include_texts=True"
        )
    sub_extracted = response.submitted_extracted if response.HasField("submitted_extracted") else None
    src_extracted = response.source_extracted if response.HasField("source_extracted") else None
    submitted = _Side(
        label="Submitted",
        name=submitted_name,
        title=sub_extracted.title if sub_extracted else "",
        published_at=sub_extracted.published_at if sub_extracted else "",
        note=_extracted_note(sub_extracted),
        paragraphs=_paragraphs(response.submitted_paragraphs),
    )
    source = _Side(
        label="Source",
        name=source_name,
        title=src_extracted.title if src_extracted else "",
        published_at=src_extracted.published_at if src_extracted else "",
        note=_extracted_note(src_extracted),
        paragraphs=_paragraphs(response.source_paragraphs),
    )
    return _render(
        _Report(
            verdict=response.verdict,
            score=response.score,
            submitted=submitted,
            source=source,
            match=response.match,
            model=response.model,
            total_ms=response.timing.total_ms,
            kind="compare",
        )
    )


def align_rows(
    submitted: Sequence[ReportParagraph],
    source: Sequence[ReportParagraph],
    pairs: Sequence[pb.AlignedPair],
) -> list[ReportRow]:
    """The rows of the side-by-side table.

    Rows follow the submitted article. A pair appears where its first submitted paragraph is; a submitted
    paragraph in no pair gets a row of its own; a source paragraph in no pair is placed after the row
    showing the nearest earlier source paragraph, so that for an order-preserving alignment both columns
    read top to bottom in order (a reordered pair shows its source paragraph numbers out of sequence).
    Where both sides have unaligned paragraphs in the same gap they face each other, one of each per
    ``unaligned`` row. Every paragraph of both sides appears exactly once.
    """
    sub_by_index = {p.index: p for p in submitted}
    src_by_index = {p.index: p for p in source}
    first_of_pair: dict[int, tuple[int, pb.AlignedPair]] = {}
    paired_sub: set[int] = set()
    paired_src: set[int] = set()
    for number, pair in enumerate(pairs, start=1):
        subs = [i for i in pair.submitted_paragraphs if i in sub_by_index]
        if not subs:
            continue
        first_of_pair.setdefault(min(subs), (number, pair))
        paired_sub.update(pair.submitted_paragraphs)
        paired_src.update(pair.source_paragraphs)

    rows: list[ReportRow] = []
    for paragraph in submitted:
        if paragraph.index in first_of_pair:
            number, pair = first_of_pair[paragraph.index]
            rows.append(
                ReportRow(
                    kind="pair",
                    submitted=tuple(sub_by_index[i] for i in pair.submitted_paragraphs if i in sub_by_index),
                    source=tuple(src_by_index[j] for j in pair.source_paragraphs if j in src_by_index),
                    pair=pair,
                    number=number,
                )
            )
        elif paragraph.index not in paired_sub:
            rows.append(ReportRow(kind="submitted-only", submitted=(paragraph,)))

    # Each unpaired source paragraph goes after the row showing the nearest earlier source paragraph (its
    # anchor), past any submitted-only rows that follow it: a gap on both sides reads as a gap.
    source_rows = [(position, _max_source(row)) for position, row in enumerate(rows) if row.source]
    inserts: dict[int, list[ReportParagraph]] = defaultdict(list)
    for paragraph in source:
        if paragraph.index in paired_src:
            continue
        earlier = [(shown, position) for position, shown in source_rows if shown < paragraph.index]
        anchor = max(earlier)[1] if earlier else -1
        insert_at = next((position for position, _ in source_rows if position > anchor), len(rows))
        inserts[insert_at].append(paragraph)
    placed: list[ReportRow] = []
    for position in range(len(rows) + 1):
        gap_sources = sorted(inserts.get(position, ()), key=lambda p: p.index)
        # The submitted-only rows just before this point share the gap with these source paragraphs.
        gap_start = len(placed)
        while gap_start > 0 and placed[gap_start - 1].kind == "submitted-only":
            gap_start -= 1
        gap_submitted = [row.submitted[0] for row in placed[gap_start:]]
        del placed[gap_start:]
        for sub, src in itertools.zip_longest(gap_submitted, gap_sources):
            if sub is not None and src is not None:
                placed.append(ReportRow(kind="unaligned", submitted=(sub,), source=(src,)))
            elif sub is not None:
                placed.append(ReportRow(kind="submitted-only", submitted=(sub,)))
            else:
                placed.append(ReportRow(kind="source-only", source=(src,)))
        if position < len(rows):
            placed.append(rows[position])
    return placed


def word_diff(submitted: Sequence[str], source: Sequence[str]) -> tuple[str, str]:
    """HTML of both sides of a pair (one ``<p>`` per paragraph) with the differing words in ``<mark>``.

    Words compare case-insensitively, without surrounding punctuation and with typographic quotes as
    straight ones, so "Wednesday," and "wednesday" are the same word. A word only one side has is
    ``added`` (submitted side) or ``removed`` (source side); a word both sides have but out of the common
    order (a clause moved to the front) is ``moved`` on both sides.
    """
    sub_tokens = [_WORD.findall(text) for text in submitted]
    src_tokens = [_WORD.findall(text) for text in source]
    sub_keys = [_word_key(t) for tokens in sub_tokens for t in tokens]
    src_keys = [_word_key(t) for tokens in src_tokens for t in tokens]
    sub_changed = [True] * len(sub_keys)
    src_changed = [True] * len(src_keys)
    matcher = difflib.SequenceMatcher(None, sub_keys, src_keys, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            sub_changed[i1:i2] = [False] * (i2 - i1)
            src_changed[j1:j2] = [False] * (j2 - j1)
    sub_spare = Counter(k for k, changed in zip(sub_keys, sub_changed, strict=True) if changed)
    src_spare = Counter(k for k, changed in zip(src_keys, src_changed, strict=True) if changed)
    common = sub_spare & src_spare  # words both sides have outside the common order
    return (
        _marked(sub_tokens, _classes(sub_keys, sub_changed, Counter(common), "added")),
        _marked(src_tokens, _classes(src_keys, src_changed, Counter(common), "removed")),
    )


def _classes(keys: Sequence[str], changed: Sequence[bool], common: Counter[str], other: str) -> list[str]:
    """Per token: "" (in the common order), "moved" (the other side has it elsewhere) or ``other``.

    A content word found on the other side is moved; a short function word ("the", "in") only when it
    sits next to a moved word (part of the moved phrase): alone it matches by accident everywhere.
    """
    classes = ["" if not is_changed else other for is_changed in changed]
    for position, key in enumerate(keys):
        if classes[position] and _is_content_word(key) and common[key] > 0:
            common[key] -= 1
            classes[position] = "moved"
    for position, key in enumerate(keys):
        beside_moved = "moved" in classes[max(position - 1, 0) : position + 2]
        if classes[position] == other and beside_moved and common[key] > 0:
            common[key] -= 1
            classes[position] = "moved"
    return classes


def _is_content_word(key: str) -> bool:
    return len(key) >= 4 or any(c.isdigit() for c in key)


def divergence_colour(divergence: float) -> tuple[str, str]:
    """(background, edge) colours for a pair: red at divergence 0 (copied) through orange to yellow at
    0.3 and above (reworded)."""
    share = min(max(divergence, 0.0) / _DIVERGENCE_SCALE_END, 1.0)
    hue = round(share * 55)
    return f"hsl({hue} 90% 93%)", f"hsl({hue} 80% 45%)"


# -- rendering ----------------------------------------------------------------------------------------


def _render(report: _Report) -> str:
    template = resources.files("rewrite_detector").joinpath(_TEMPLATE).read_text(encoding="utf-8")
    match = report.match
    pairs = list(match.pairs) if match is not None else []
    source_paragraphs = report.source.paragraphs if report.source else ()
    rows = align_rows(report.submitted.paragraphs, source_paragraphs, pairs)
    script = _SCRIPT_MARKER.search(template)
    if script is None:
        raise RuntimeError(f"{_TEMPLATE} has no <script> element")
    # The page's CSP allows exactly this inline script and no other: defence in depth under the escaping.
    script_hash = base64.b64encode(hashlib.sha256(script.group(1).encode("utf-8")).digest()).decode()
    values = {
        "page_title": _e(f"{_verdict_name(report.verdict)} · {report.submitted.name}"),
        "script_hash": script_hash,
        "verdict": _e(_verdict_name(report.verdict)),
        "verdict_class": _verdict_name(report.verdict).lower().replace("_", "-"),
        "verdict_text": _e(_VERDICT_TEXT.get(report.verdict, "")),
        "score": f"{report.score:.2f}",
        "warnings": "".join(f'<p class="warning">{_e(w)}</p>' for w in report.warnings),
        "scores": _scores_table(match) if match is not None else "",
        "matches": _matches_table(report.other_matches) if len(report.other_matches) > 1 else "",
        "submitted_head": _side_head(report.submitted),
        "source_head": _side_head(report.source) if report.source else _NO_SOURCE_HEAD,
        "rows": "\n".join(_row_html(row) for row in rows),
        "pair_count": str(len(pairs)),
        "row_count": str(len(rows)),
        "footer": _e(_footer(report)),
    }
    return Template(template).substitute(values)


def _row_html(row: ReportRow) -> str:
    if row.kind == "pair" and row.pair is not None:
        pair = row.pair
        background, edge = divergence_colour(pair.divergence)
        sub_html, src_html = word_diff([p.text for p in row.submitted], [p.text for p in row.source])
        gutter = (
            f'<span class="num">{row.number}</span>'
            f'<span class="kind">{_e(_enum_name(pb.PairKind, pair.kind))}</span>'
            f'<span class="div" title="divergence = 1 - similarity">div {pair.divergence:.2f}</span>'
            f'<span class="lex" title="lexical overlap">lex {pair.lexical_overlap:.2f}</span>'
        )
        boiler = " boilerplate" if all(p.is_boilerplate for p in row.submitted) else ""
        return (
            f'<tr class="row pair{boiler}" data-row="pair" data-pair="{row.number}" '
            f'data-divergence="{pair.divergence:.4f}" style="--bg: {background}; --edge: {edge}">'
            f'<td class="text submitted">{_labels(row.submitted)}{sub_html}</td>'
            f'<td class="gutter">{gutter}</td>'
            f'<td class="text source">{_labels(row.source)}{src_html}</td></tr>'
        )
    shown = [*row.submitted, *row.source]
    classes = "row unpaired" + (" boilerplate" if all(p.is_boilerplate for p in shown) else "")
    left = f"{_labels(row.submitted)}{_plain(row.submitted)}" if row.submitted else ""
    right = f"{_labels(row.source)}{_plain(row.source)}" if row.source else ""
    return (
        f'<tr class="{classes}" data-row="{row.kind}">'
        f'<td class="text submitted">{left}</td>'
        f'<td class="gutter"><span class="note">{_UNPAIRED_NOTES[row.kind]}</span></td>'
        f'<td class="text source">{right}</td></tr>'
    )


def _labels(paragraphs: Sequence[ReportParagraph]) -> str:
    if not paragraphs:
        return ""
    numbers = ", ".join(str(p.index) for p in paragraphs)
    roles = {p.role for p in paragraphs} - {pb.BODY, pb.PARAGRAPH_ROLE_UNSPECIFIED}
    role = f" · {_enum_name(pb.ParagraphRole, min(roles)).lower()}" if roles else ""
    return f'<span class="para-label">¶ {numbers}{role}</span>'


def _plain(paragraphs: Sequence[ReportParagraph]) -> str:
    return "".join(f"<p>{_e(p.text)}</p>" for p in paragraphs)


def _marked(paragraph_tokens: Sequence[Sequence[str]], classes: Sequence[str]) -> str:
    out: list[str] = []
    position = 0
    for tokens in paragraph_tokens:
        parts: list[str] = []
        run: list[str] = []
        run_class = ""
        for token in tokens:
            css_class = classes[position]
            position += 1
            if run and css_class != run_class:
                parts.append(f'<mark class="{run_class}">{" ".join(run)}</mark>')
                run = []
            if css_class:
                run.append(_e(token))
                run_class = css_class
            else:
                parts.append(_e(token))
        if run:
            parts.append(f'<mark class="{run_class}">{" ".join(run)}</mark>')
        out.append(f"<p>{' '.join(parts)}</p>")
    return "".join(out)


def _side_head(side: _Side) -> str:
    parts = [
        f'<div class="side-label">{_e(side.label)}</div>',
        f'<div class="side-name">{_e(side.name)}</div>',
    ]
    if side.title and side.title != side.name:
        parts.append(f'<div class="side-title">{_e(side.title)}</div>')
    details = []
    if side.url:
        details.append(_link(side.url))
    if side.published_at:
        details.append(f"published {_e(side.published_at)}")
    if side.note:
        details.append(_e(side.note))
    if details:
        parts.append(f'<div class="side-meta">{" · ".join(details)}</div>')
    return f'<div class="side-head">{"".join(parts)}</div>'


def _link(url: str) -> str:
    # Only web links become links: a stored "javascript:" URL must not run when a moderator clicks it.
    if re.match(r"https?://", url, re.IGNORECASE):
        return f'<a href="{_e(url)}" rel="noopener noreferrer">{_e(url)}</a>'
    return _e(url)


def _scores_table(match: pb.SourceMatch) -> str:
    cells = [
        ("source score", f"{match.score:.2f}"),
        ("coverage of submitted", _percent(match.coverage_submitted)),
        ("coverage of source", _percent(match.coverage_source)),
        ("mean similarity", f"{match.mean_similarity:.2f}"),
        ("lexical overlap", f"{match.lexical_overlap:.2f}"),
        ("anchor overlap", f"{match.anchor_overlap:.2f}"),
        ("order preservation", f"{match.order_preservation:.2f}"),
        ("aligned pairs", str(len(match.pairs))),
    ]
    body = "".join(f'<div class="metric"><span>{_e(k)}</span><b>{_e(v)}</b></div>' for k, v in cells)
    return f'<div class="metrics">{body}</div>'


def _matches_table(matches: Sequence[pb.SourceMatch]) -> str:
    rows = []
    for rank, match in enumerate(matches, start=1):
        newer = ' <span class="newer">published after the submission</span>' if match.source_is_newer else ""
        rows.append(
            f"<tr><td>{rank}</td><td>{_e(match.source_id)}{newer}</td><td>{_e(match.title)}</td>"
            f"<td>{_e(_verdict_name(match.verdict))}</td><td>{match.score:.2f}</td>"
            f"<td>{_percent(match.coverage_submitted)}</td><td>{len(match.pairs)}</td></tr>"
        )
    head = "".join(
        f"<th>{name}</th>" for name in ("#", "source", "title", "verdict", "score", "coverage", "pairs")
    )
    return (
        '<details class="matches"><summary>All matching sources (the table below shows the first)</summary>'
        f"<table><tr>{head}</tr>{''.join(rows)}</table></details>"
    )


def _footer(report: _Report) -> str:
    parts = [f"rewrite-detector {report.kind} report"]
    if report.model:
        parts.append(f"model {report.model}")
    if report.total_ms:
        parts.append(f"{report.total_ms:.0f} ms")
    parts.append(dt.datetime.now(dt.timezone.utc).strftime("generated %Y-%m-%d %H:%M UTC"))
    return " · ".join(parts)


def _newer_warning(match: pb.SourceMatch, submitted_published_at: str) -> str:
    submitted = f" ({submitted_published_at})" if submitted_published_at else ""
    return (
        f"The source {match.source_id!r} was published on {match.published_at}, after the submitted "
        f"article{submitted}: the submitted article may be the original and this source its copy."
    )


def _extracted_note(extracted: pb.ExtractedArticle | None) -> str:
    if extracted is None:
        return ""
    by = f" by {extracted.author}" if extracted.author else ""
    return f"text extracted from HTML{by}"


def _paragraphs(paragraphs: Sequence[pb.Paragraph]) -> tuple[ReportParagraph, ...]:
    return tuple(ReportParagraph(index=p.index, text=p.text, role=p.role) for p in paragraphs)


def _max_source(row: ReportRow) -> int:
    return max((p.index for p in row.source), default=-1)


def _word_key(token: str) -> str:
    return _EDGE_PUNCTUATION.sub("", token.translate(_TYPOGRAPHY).casefold()) or token


def _verdict_name(verdict: int) -> str:
    return _enum_name(pb.Verdict, verdict)


def _enum_name(enum: object, value: int) -> str:
    found = enum.DESCRIPTOR.values_by_number.get(value)  # type: ignore[attr-defined]
    return found.name if found is not None else str(value)


def _percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def _e(text: str) -> str:
    return html.escape(text, quote=True)
