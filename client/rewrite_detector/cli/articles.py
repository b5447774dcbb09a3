"""Commands that manage the index: index, get, delete, list, stats."""

from __future__ import annotations

import sys
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

from rewrite_detector.cli import inputs, render
from rewrite_detector.cli._common import (
    EXIT_FAILED,
    FormatOption,
    JsonOption,
    TextFormatChoice,
    connect,
    get_state,
    handle_errors,
    stderr_console,
    stdout_console,
)
from rewrite_detector.v1 import detector_pb2 as pb


def index(
    ctx: typer.Context,
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Files (id = file stem), directories (*.txt, *.md, *.html, *.jsonl, recursively), "
            "JSONL files (one article per line: id, text, optional title, url, published_at, metadata) "
            "or - for stdin (needs --id).",
            show_default=False,
        ),
    ],
    article_id: Annotated[
        str | None, typer.Option("--id", help="Article id; only with a single file or -.", show_default=False)
    ] = None,
    published_at: Annotated[
        str | None,
        typer.Option(
            "--published-at",
            metavar="DATE",
            help="ISO 8601 publication date (2021-10-20, 2021-10-20T12:46:00+03:00); only with a single "
            "file or - (JSONL lines carry their own).",
            show_default=False,
        ),
    ] = None,
    text_format: FormatOption = TextFormatChoice.AUTO,
    json_output: JsonOption = False,
) -> None:
    """Index (upsert) articles, streamed to the server. Exits 1 if any article failed."""
    state = get_state(ctx)
    as_json = state.json or json_output
    with handle_errors(state):
        sources = inputs.plan_index(paths, article_id, published_at)
    total = sum(source.count for source in sources)
    counts = {"indexed": 0, "replaced": 0, "unchanged": 0, "failed": 0}
    failures: list[tuple[str, str]] = []
    out = stdout_console()
    progress = Progress(
        TextColumn("indexing"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        disable=as_json or not sys.stderr.isatty(),
        transient=True,
    )
    with connect(ctx) as client, progress:
        task = progress.add_task("indexing", total=total)
        articles = ({**article, "format": text_format.value} for article in inputs.iter_articles(sources))
        for response in client.index_articles(articles):
            progress.advance(task)
            counts[render.index_outcome(response)] += 1
            if response.error_code:
                failures.append((response.id, response.error_message))
            if as_json:
                typer.echo(render.to_json(response, indent=None))
    if not as_json:
        out.print(render.index_summary_text(counts))
        err = stderr_console()
        for failed_id, message in failures:
            line = Text.assemble(("failed ", "red"), failed_id or "(no id)", f": {message}")
            err.print(line, soft_wrap=True)
    if counts["failed"]:
        raise typer.Exit(EXIT_FAILED)


def get(
    ctx: typer.Context,
    article_id: Annotated[str, typer.Argument(metavar="ID", help="Article id.", show_default=False)],
    paragraphs: Annotated[
        bool, typer.Option("--paragraphs", help="Also show the paragraphs and their spans.")
    ] = False,
    json_output: JsonOption = False,
) -> None:
    """Show one indexed article."""
    with connect(ctx) as client:
        response = client.get_article(article_id, include_paragraphs=paragraphs)
    if get_state(ctx).json or json_output:
        typer.echo(render.to_json(response))
    else:
        render.print_article(stdout_console(), response)


def delete(
    ctx: typer.Context,
    article_id: Annotated[str, typer.Argument(metavar="ID", help="Article id.", show_default=False)],
    json_output: JsonOption = False,
) -> None:
    """Remove an article from the index."""
    with connect(ctx) as client:
        response = client.delete_article(article_id)
    if get_state(ctx).json or json_output:
        typer.echo(render.to_json(response))
    else:
        stdout_console().print(
            Text(f"Deleted {response.id or article_id} ({response.paragraphs_removed} paragraphs removed)")
        )


def list_articles(
    ctx: typer.Context,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000, help="Articles per call.")] = 100,
    limit: Annotated[int, typer.Option("--limit", min=0, help="Stop after this many (0 = all).")] = 0,
    json_output: JsonOption = False,
) -> None:
    """List indexed articles (follows every page). --json prints one JSON object per line."""
    as_json = get_state(ctx).json or json_output
    summaries: list[pb.ArticleSummary] = []
    total = 0
    with connect(ctx) as client:
        token = ""
        while True:
            page = client.list_articles(page_size=page_size, page_token=token)
            total = page.total_count
            for summary in page.articles:
                if limit and len(summaries) >= limit:
                    break
                summaries.append(summary)
                if as_json:
                    typer.echo(render.to_json(summary, indent=None))
            token = page.next_page_token
            if not token or (limit and len(summaries) >= limit):
                break
    if not as_json:
        out = stdout_console()
        out.print(render.articles_table(summaries))
        out.print(Text(f"{len(summaries)} of {total} articles", style="dim"))


def stats(ctx: typer.Context, json_output: JsonOption = False) -> None:
    """Show index statistics: counts, model, index type, uptime."""
    with connect(ctx) as client:
        response = client.stats()
    if get_state(ctx).json or json_output:
        typer.echo(render.to_json(response))
    else:
        render.print_stats(stdout_console(), response)
