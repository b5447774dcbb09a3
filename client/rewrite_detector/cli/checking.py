"""Commands that score articles: check (against the index) and compare (two texts)."""

from __future__ import annotations

from typing import Annotated

import typer

from rewrite_detector.cli import inputs, render
from rewrite_detector.cli._common import (
    EXIT_USAGE,
    JsonOption,
    connect,
    fail,
    get_state,
    handle_errors,
    stdout_console,
)

_INCLUDE_TEXTS_HELP = "Return the paragraph texts (shown as excerpts; in full with --json)."


def check(
    ctx: typer.Context,
    file: Annotated[
        str,
        typer.Argument(metavar="FILE|-", help="The submitted article (- reads stdin).", show_default=False),
    ],
    source_ids: Annotated[
        list[str] | None,
        typer.Option(
            "--source-id", help="Only compare with this indexed article (repeatable).", show_default=False
        ),
    ] = None,
    max_sources: Annotated[
        int, typer.Option("--max-sources", min=0, max=100, help="Sources to return (0 = server default, 5).")
    ] = 0,
    min_similarity: Annotated[
        float,
        typer.Option(
            "--min-similarity", min=0.0, max=1.0, help="Hide pairs below this similarity (0 = calibrated)."
        ),
    ] = 0.0,
    include_texts: Annotated[bool, typer.Option("--include-texts", help=_INCLUDE_TEXTS_HELP)] = False,
    title: Annotated[str, typer.Option("--title", help="Title of the submitted article.")] = "",
    published_at: Annotated[
        str, typer.Option("--published-at", help="ISO 8601 date of the submitted article.")
    ] = "",
    json_output: JsonOption = False,
) -> None:
    """Is FILE a rewrite of an indexed article? Verdict, matching sources and aligned paragraphs."""
    state = get_state(ctx)
    with handle_errors(state):
        text = inputs.read_input(file)
    with connect(ctx) as client:
        response = client.check(
            text,
            title=title,
            source_ids=source_ids or (),
            max_sources=max_sources,
            min_similarity=min_similarity,
            include_texts=include_texts,
            published_at=published_at,
        )
    if state.json or json_output:
        typer.echo(render.to_json(response))
    else:
        render.print_check(stdout_console(), response)


def compare(
    ctx: typer.Context,
    submitted: Annotated[
        str,
        typer.Argument(metavar="SUBMITTED", help="The suspected rewrite (file or -).", show_default=False),
    ],
    source: Annotated[
        str, typer.Argument(metavar="SOURCE", help="The possible source (file or -).", show_default=False)
    ],
    include_texts: Annotated[bool, typer.Option("--include-texts", help=_INCLUDE_TEXTS_HELP)] = False,
    json_output: JsonOption = False,
) -> None:
    """Align two texts directly, without the index."""
    state = get_state(ctx)
    if submitted == inputs.DASH and source == inputs.DASH:
        fail("only one of SUBMITTED and SOURCE can be - (stdin)", EXIT_USAGE)
    with handle_errors(state):
        submitted_text = inputs.read_input(submitted)
        source_text = inputs.read_input(source)
    with connect(ctx) as client:
        response = client.compare(submitted_text, source_text, include_texts=include_texts)
    if state.json or json_output:
        typer.echo(render.to_json(response))
    else:
        render.print_compare(stdout_console(), response)
