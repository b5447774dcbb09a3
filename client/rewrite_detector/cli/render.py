"""Human (rich) and JSON rendering of response messages. Pure: messages in, console output out."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from google.protobuf.json_format import MessageToJson
from google.protobuf.message import Message
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from rewrite_detector.v1 import detector_pb2 as pb

VERDICT_STYLES: dict[int, str] = {
    pb.ORIGINAL: "bold green",
    pb.PARTIAL_REUSE: "bold yellow",
    pb.REWRITE: "bold red",
    pb.NEAR_DUPLICATE: "bold magenta",
}
KIND_STYLES: dict[int, str] = {
    pb.VERBATIM: "red",
    pb.NEAR_VERBATIM: "red",
    pb.PARAPHRASE: "yellow",
    pb.WEAK: "dim",
}
EXCERPT_CHARS = 80


def to_json(message: Message, *, indent: int | None = 2) -> str:
    """The JSON contract: proto field names, every field printed, enums by name.

    ``indent=None`` gives one line per message (JSON Lines, used by ``index`` and ``list``).
    """
    return MessageToJson(
        message,
        preserving_proto_field_name=True,
        always_print_fields_with_no_presence=True,
        indent=indent,
    )


def _enum_name(enum: Any, value: int) -> str:
    found = enum.DESCRIPTOR.values_by_number.get(value)
    return found.name if found is not None else str(value)


def verdict_name(verdict: int) -> str:
    return _enum_name(pb.Verdict, verdict)


def kind_name(kind: int) -> str:
    return _enum_name(pb.PairKind, kind)


def verdict_text(verdict: int) -> Text:
    return Text(verdict_name(verdict), style=VERDICT_STYLES.get(verdict, "bold"))


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def paragraph_list(indexes: Sequence[int]) -> str:
    return ",".join(str(i) for i in indexes) or "-"


def percent(value: float) -> str:
    return f"{value * 100:.0f}%"


def timestamp(seconds: float) -> str:
    if not seconds:
        return ""
    return dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc).strftime("%Y-%m-%d %H:%M")


def _header(verdict: int, score: float, model: str, timing: pb.Timing | None) -> Text:
    header = Text.assemble("Verdict: ", verdict_text(verdict), f"   score {score:.2f}")
    extra = []
    if model:
        extra.append(f"model {model}")
    if timing is not None and timing.total_ms:
        extra.append(f"{timing.total_ms:.0f} ms")
    if extra:
        header.append(f"   ({', '.join(extra)})", style="dim")
    return header


def matches_table(matches: Iterable[pb.SourceMatch]) -> Table:
    table = Table(title="Matching sources", title_justify="left")
    table.add_column("source", overflow="fold")
    table.add_column("verdict", no_wrap=True)
    table.add_column("score", justify="right")
    table.add_column("coverage submitted", justify="right", max_width=10)
    table.add_column("coverage source", justify="right", max_width=10)
    table.add_column("pairs", justify="right")
    for match in matches:
        source = Text(match.source_id)
        if match.source_is_newer:
            source.append(" (newer)", style="yellow")
        cell: RenderableType = source
        if match.title:
            cell = Group(source, Text(match.title, style="dim", no_wrap=True, overflow="ellipsis"))
        table.add_row(
            cell,
            verdict_text(match.verdict),
            f"{match.score:.2f}",
            percent(match.coverage_submitted),
            percent(match.coverage_source),
            str(len(match.pairs)),
        )
    return table


def match_summary(match: pb.SourceMatch) -> Text:
    return Text(
        f"coverage submitted {percent(match.coverage_submitted)} · coverage source "
        f"{percent(match.coverage_source)} · mean similarity {match.mean_similarity:.2f} · lexical overlap "
        f"{match.lexical_overlap:.2f} · anchor overlap {match.anchor_overlap:.2f} · order preservation "
        f"{match.order_preservation:.2f}",
        style="dim",
    )


def pairs_table(match: pb.SourceMatch, title: str = "Aligned pairs") -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("#", justify="right")
    table.add_column("sub ¶")
    table.add_column("src ¶")
    table.add_column("similarity", justify="right", min_width=10)
    table.add_column("divergence", justify="right", min_width=10)
    table.add_column("lexical", justify="right")
    table.add_column("kind", no_wrap=True)
    for number, pair in enumerate(match.pairs, start=1):
        table.add_row(
            str(number),
            paragraph_list(pair.submitted_paragraphs),
            paragraph_list(pair.source_paragraphs),
            f"{pair.similarity:.2f}",
            f"{pair.divergence:.2f}",
            f"{pair.lexical_overlap:.2f}",
            Text(kind_name(pair.kind), style=KIND_STYLES.get(pair.kind, "")),
        )
    return table


def excerpts_table(match: pb.SourceMatch) -> Table | None:
    """Short excerpts of both sides of each pair; ``None`` when the response carries no texts."""
    if not any(p.submitted_text or p.source_text for p in match.pairs):
        return None
    table = Table(title="Excerpts", title_justify="left", show_header=False, box=None, padding=(0, 1))
    table.add_column(justify="right")
    table.add_column(style="bold")
    table.add_column(overflow="fold", ratio=1)
    for number, pair in enumerate(match.pairs, start=1):
        table.add_row(str(number), "submitted", Text(excerpt(pair.submitted_text)))
        table.add_row("", "source", Text(excerpt(pair.source_text), style="dim"))
    return table


def _print_pairs(console: Console, match: pb.SourceMatch, title: str) -> None:
    console.print(pairs_table(match, title=title))
    excerpts = excerpts_table(match)
    if excerpts is not None:
        console.print(excerpts)
    console.print(match_summary(match))


def print_check(console: Console, response: pb.CheckResponse) -> None:
    console.print(_header(response.verdict, response.score, response.model, response.timing))
    if not response.matches:
        console.print("No matching sources.")
        return
    console.print(matches_table(response.matches))
    top = response.matches[0]
    if top.pairs:
        label = f"Aligned pairs with {top.source_id}" + (f" ({top.title})" if top.title else "")
        _print_pairs(console, top, label)


def print_compare(console: Console, response: pb.CompareResponse) -> None:
    console.print(_header(response.verdict, response.score, response.model, response.timing))
    if not response.match.pairs:
        console.print("No aligned paragraphs.")
        return
    _print_pairs(console, response.match, "Aligned pairs")


def print_article(console: Console, response: pb.GetArticleResponse) -> None:
    summary, article = response.summary, response.article
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    table.add_row("id", summary.id or article.id)
    table.add_row("title", summary.title or article.title)
    table.add_row("url", summary.url or article.url)
    table.add_row("published at", summary.published_at or article.published_at)
    table.add_row("paragraphs", str(summary.paragraph_count))
    table.add_row("characters", str(summary.char_count))
    table.add_row("indexed at", timestamp(summary.indexed_at))
    for key in sorted(article.metadata):
        table.add_row(f"metadata.{key}", article.metadata[key])
    if article.text:
        table.add_row("text", excerpt(article.text, 200))
    console.print(table)
    if response.paragraphs:
        paragraphs = Table(title="Paragraphs", title_justify="left")
        paragraphs.add_column("#", justify="right")
        paragraphs.add_column("role")
        paragraphs.add_column("span")
        paragraphs.add_column("text", overflow="fold", ratio=1)
        for paragraph in response.paragraphs:
            role = _enum_name(pb.ParagraphRole, paragraph.role)
            paragraphs.add_row(
                str(paragraph.index),
                role,
                f"{paragraph.span.start}-{paragraph.span.end}",
                Text(excerpt(paragraph.text, 120)),
            )
        console.print(paragraphs)


def articles_table(articles: Iterable[pb.ArticleSummary]) -> Table:
    table = Table()
    table.add_column("id", overflow="fold")
    table.add_column("title", overflow="ellipsis")
    table.add_column("published")
    table.add_column("paras", justify="right")
    table.add_column("chars", justify="right")
    table.add_column("indexed at", no_wrap=True)
    for summary in articles:
        table.add_row(
            summary.id,
            Text(excerpt(summary.title, 40)),
            summary.published_at,
            str(summary.paragraph_count),
            str(summary.char_count),
            timestamp(summary.indexed_at),
        )
    return table


def print_stats(console: Console, stats: pb.GetStatsResponse) -> None:
    table = Table(show_header=False, box=None)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("articles", str(stats.article_count))
    table.add_row("paragraphs", str(stats.paragraph_count))
    table.add_row("vectors", str(stats.vector_count))
    table.add_row("model", stats.model)
    table.add_row("dimension", str(stats.dimension))
    table.add_row("index type", stats.index_type)
    table.add_row("uptime", f"{stats.uptime_seconds:.0f} s")
    console.print(table)


def index_outcome(response: pb.IndexArticleResponse) -> str:
    """``indexed`` (new id), ``replaced``, ``unchanged`` or ``failed``."""
    if response.error_code:
        return "failed"
    if response.unchanged:
        return "unchanged"
    return "indexed" if response.created else "replaced"


def summarize_index(responses: Iterable[pb.IndexArticleResponse]) -> dict[str, int]:
    """Counts of indexed (new) / replaced / unchanged / failed responses."""
    counts = {"indexed": 0, "replaced": 0, "unchanged": 0, "failed": 0}
    for response in responses:
        counts[index_outcome(response)] += 1
    return counts


def index_summary_text(counts: dict[str, int]) -> Text:
    text = Text()
    for i, (label, style) in enumerate(
        [("indexed", "green"), ("replaced", "cyan"), ("unchanged", "dim"), ("failed", "red")]
    ):
        if i:
            text.append(" · ")
        value = counts.get(label, 0)
        text.append(f"{label} {value}", style=style if value else "")
    return text
