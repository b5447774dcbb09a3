"""``rewrite-detector batch IN OUT``: score a corpus over CheckStream, resumably (rewrite_detector.batch)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from rewrite_detector import batch as batch_lib
from rewrite_detector.cli import render
from rewrite_detector.cli._common import (
    EXIT_FAILED,
    EXIT_USAGE,
    JsonOption,
    connect,
    fail,
    get_state,
    stderr_console,
    stdout_console,
)
from rewrite_detector.v1 import detector_pb2 as pb

_VERDICT_ORDER = ("NEAR_DUPLICATE", "REWRITE", "PARTIAL_REUSE", "ORIGINAL")


class RateColumn(ProgressColumn):
    """Articles per second (rich's own speed columns are for bytes)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("-- /s" if speed is None else f"{speed:.1f}/s", style="progress.data.speed")


def batch(
    ctx: typer.Context,
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="IN",
            exists=True,
            help="JSONL or CSV (id, text, optional title, published_at, format), a directory of .txt/.md/"
            ".html files (id = relative path without suffix), or Parquet (needs pyarrow).",
            show_default=False,
        ),
    ],
    output_path: Annotated[
        Path,
        typer.Argument(
            metavar="OUT",
            dir_okay=False,
            help="JSONL or CSV, one row per article: id, verdict, score, top_source, coverage, pair_count, "
            "source_is_newer, error. Ids already in OUT are skipped (resume).",
            show_default=False,
        ),
    ],
    streams: Annotated[
        int, typer.Option("--streams", min=1, max=32, help="CheckStream calls run side by side.")
    ] = 2,
    in_flight: Annotated[
        int, typer.Option("--in-flight", min=1, max=1024, help="Requests sent ahead on each stream.")
    ] = 8,
    max_sources: Annotated[
        int, typer.Option("--max-sources", min=0, max=100, help="Sources per article (0 = server default).")
    ] = 0,
    min_similarity: Annotated[
        float,
        typer.Option(
            "--min-similarity", min=0.0, max=1.0, help="Hide pairs below this similarity (0 = calibrated)."
        ),
    ] = 0.0,
    json_output: JsonOption = False,
) -> None:
    """Score many articles against the index; resumable; a summary table at the end. Exits 1 if any
    article was rejected (its row carries the error)."""
    state = get_state(ctx)
    as_json = state.json or json_output
    progress = Progress(
        TextColumn("scoring"),
        BarColumn(),
        MofNCompleteColumn(),
        RateColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        TimeElapsedColumn(),
        console=stderr_console(),
        disable=as_json or not sys.stderr.isatty(),
        transient=False,
    )
    task = progress.add_task("scoring", total=None, start=False)

    def on_start(todo: int, skipped: int) -> None:
        if skipped and not as_json:
            stderr_console().print(Text(f"resuming: {skipped} already in {output_path}", style="dim"))
        progress.update(task, total=todo)
        progress.start_task(task)

    try:
        with connect(ctx) as client, progress:
            summary = batch_lib.run_batch(
                client,
                input_path,
                output_path,
                streams=streams,
                in_flight=in_flight,
                max_sources=max_sources,
                min_similarity=min_similarity,
                on_start=on_start,
                on_row=lambda _row: progress.advance(task),
            )
    except batch_lib.BatchInputError as err:
        fail(str(err), EXIT_USAGE)
    except KeyboardInterrupt:
        fail(f"interrupted; rows written so far are in {output_path}: run again to resume", EXIT_FAILED)

    if as_json:
        typer.echo(json.dumps(summary.as_dict()))
    else:
        stdout_console().print(summary_table(summary, output_path))
    if summary.failed:
        raise typer.Exit(EXIT_FAILED)


def summary_table(summary: batch_lib.BatchSummary, output_path: Path) -> Table:
    table = Table(title=f"Batch summary → {output_path}", title_justify="left")
    table.add_column("", style="bold")
    table.add_column("articles", justify="right")
    table.add_column("share", justify="right")
    scored_ok = summary.scored - summary.failed
    verdicts = sorted(summary.verdicts, key=lambda v: (*_VERDICT_ORDER, v).index(v))
    for verdict in verdicts:
        count = summary.verdicts[verdict]
        share = render.percent(count / scored_ok) if scored_ok else "-"
        table.add_row(Text(verdict, style=_verdict_style(verdict)), str(count), share)
    table.add_section()
    table.add_row(Text("failed", style="red" if summary.failed else ""), str(summary.failed), "")
    table.add_row("scored this run", str(summary.scored), "")
    table.add_row("skipped (already in output)", str(summary.skipped), "")
    table.add_row("total in input", str(summary.total), "")
    table.add_row("time", f"{summary.elapsed_seconds:.1f} s", f"{summary.rate:.1f}/s")
    return table


def _verdict_style(verdict: str) -> str:
    found = pb.Verdict.DESCRIPTOR.values_by_name.get(verdict)
    return render.VERDICT_STYLES.get(found.number, "bold") if found is not None else "bold"
