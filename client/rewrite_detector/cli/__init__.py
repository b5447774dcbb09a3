"""The ``rewrite-detector`` command line: a thin typer layer over :class:`rewrite_detector.Client`.

Each command group lives in its own module (articles, checking, serve); rendering in ``render``, input
reading in ``inputs``. Tests can drive ``app`` with ``typer.testing.CliRunner`` or call ``main(argv)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Annotated

import typer

from rewrite_detector import errors
from rewrite_detector.cli import articles, batch, checking, serve
from rewrite_detector.cli._common import (
    EXIT_CODES_HELP,
    State,
    error_message,
    exit_code_for,
    print_error,
)

__all__ = ["app", "main"]

app = typer.Typer(
    name="rewrite-detector",
    help="Detect rewritten news articles: index sources, then check whether an article is a paraphrase "
    f"of one of them, with the aligned paragraphs as evidence.\n\n{EXIT_CODES_HELP}",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,  # never print a --token in a traceback
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version_callback(value: bool) -> None:
    if value:
        from rewrite_detector import __version__

        typer.echo(f"rewrite-detector {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    ctx: typer.Context,
    server: Annotated[
        str,
        typer.Option(
            "--server", envvar="REWRITE_DETECTOR_SERVER", metavar="HOST:PORT", help="Server address."
        ),
    ] = "127.0.0.1:50051",
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.001, help="Seconds per call, retries included.")
    ] = 30.0,
    token: Annotated[
        str | None,
        typer.Option(
            "--token",
            envvar="REWRITE_DETECTOR_TOKEN",
            help="Bearer token for the server.",
            show_default=False,
        ),
    ] = None,
    ca_cert: Annotated[
        Path | None,
        typer.Option(
            "--ca-cert",
            envvar="REWRITE_DETECTOR_CA_CERT",
            dir_okay=False,
            help="PEM root certificates: connect with TLS.",
            show_default=False,
        ),
    ] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version_callback, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    ctx.obj = State(server=server, timeout=timeout, token=token, ca_cert=ca_cert, json=json_output)


app.command("serve")(serve.serve)
app.command("index")(articles.index)
app.command("check")(checking.check)
app.command("compare")(checking.compare)
app.command("batch")(batch.batch)
app.command("get")(articles.get)
app.command("delete")(articles.delete)
app.command("list")(articles.list_articles)
app.command("stats")(articles.stats)


def main(argv: Sequence[str] | None = None) -> None:
    """Console-script entry point. Library errors that escape a command become one red line on stderr
    and an exit code per kind (see ``--help``), never a traceback."""
    try:
        app(args=list(argv) if argv is not None else None, prog_name="rewrite-detector")
    except errors.RewriteDetectorError as err:
        print_error(error_message(err))
        raise SystemExit(exit_code_for(err)) from None
