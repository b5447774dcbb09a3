"""Commands that score articles: check (against the index) and compare (two texts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.text import Text

from rewrite_detector import report
from rewrite_detector.cli import inputs, render
from rewrite_detector.cli._common import (
    EXIT_USAGE,
    FormatOption,
    InputError,
    JsonOption,
    TextFormatChoice,
    connect,
    fail,
    get_state,
    handle_errors,
    stderr_console,
    stdout_console,
)

_INCLUDE_TEXTS_HELP = "Return the paragraph texts (shown as excerpts; in full with --json)."

HtmlReportOption = Annotated[
    Path | None,
    typer.Option(
        "--html",
        metavar="REPORT.html",
        dir_okay=False,
        help="Also write a self-contained side-by-side HTML report (best match) to this file.",
        show_default=False,
    ),
]


def _write_report(path: Path, content: str) -> None:
    try:
        path.write_text(content, encoding="utf-8")
    except OSError as err:
        raise InputError(f"cannot write the report to {path}: {err.strerror or err}") from err
    stderr_console().print(Text(f"Report written to {path}", style="dim"))


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
    text_format: FormatOption = TextFormatChoice.AUTO,
    html_report: HtmlReportOption = None,
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
            include_texts=include_texts or html_report is not None,
            published_at=published_at,
            text_format=text_format.value,
        )
        if html_report is not None:
            # The source's full text and paragraphs come from the index: the report is built here, from
            # responses, so it works against a remote server.
            source = (
                client.get_article(response.matches[0].source_id, include_paragraphs=True)
                if response.matches
                else None
            )
            name = "stdin" if file == inputs.DASH else file
            content = report.report_from_check(
                response, source, submitted_name=name, submitted_published_at=published_at
            )
            _write_report(html_report, content)
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
    text_format: FormatOption = TextFormatChoice.AUTO,
    html_report: HtmlReportOption = None,
    json_output: JsonOption = False,
) -> None:
    """Align two texts directly, without the index. --format applies to both (auto sniffs each)."""
    state = get_state(ctx)
    if submitted == inputs.DASH and source == inputs.DASH:
        fail("only one of SUBMITTED and SOURCE can be - (stdin)", EXIT_USAGE)
    with handle_errors(state):
        submitted_text = inputs.read_input(submitted)
        source_text = inputs.read_input(source)
    with connect(ctx) as client:
        response = client.compare(
            submitted_text,
            source_text,
            include_texts=include_texts or html_report is not None,
            submitted_format=text_format.value,
            source_format=text_format.value,
        )
    if html_report is not None:
        with handle_errors(state):
            _write_report(
                html_report,
                report.report_from_compare(
                    response,
                    submitted_name="stdin" if submitted == inputs.DASH else submitted,
                    source_name="stdin" if source == inputs.DASH else source,
                ),
            )
    if state.json or json_output:
        typer.echo(render.to_json(response))
    else:
        render.print_compare(stdout_console(), response)
