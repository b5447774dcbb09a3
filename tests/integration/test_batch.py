"""Batch scoring against the real server: every input kind, both output kinds, the in-flight bound,
resuming after a kill mid-write, the CLI with its summary, and the example script."""

from __future__ import annotations

import csv
import json
import runpy
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import ROOT, seed_text
from rewrite_detector import Client, errors
from rewrite_detector.batch import (
    OUTPUT_FIELDS,
    BatchInputError,
    BatchItem,
    completed_ids,
    read_items,
    run_batch,
    score_items,
)
from rewrite_detector.cli import app
from rewrite_detector.v1 import detector_pb2 as pb

SEEDS = ("000", "001", "002", "003", "004")


@pytest.fixture
def served(start_server, hashing_embedder):  # type: ignore[no-untyped-def]
    """A server with seed 001 indexed (dated 2021-10-20) and seed 004 (a same-topic, different article)."""
    server = start_server(hashing_embedder)
    server.client.index_article("src-001", seed_text("001"), published_at="2021-10-20")
    server.client.index_article("src-004", seed_text("004"))
    return server


def articles(count: int) -> list[dict[str, str]]:
    """Copies of seed 001 (NEAR_DUPLICATE of src-001) and of an unrelated text (ORIGINAL), alternating."""
    unrelated = "A storm closed schools across the northern valley on Friday.\n\nRoads reopen on Monday."
    return [
        {
            "id": f"a{i:03d}",
            "text": seed_text("001") if i % 2 == 0 else unrelated,
            "published_at": "2021-10-19",
        }
        for i in range(count)
    ]


def write_jsonl(path: Path, records: Iterable[dict[str, str]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def read_rows(path: Path) -> list[dict[str, str]]:
    if path.suffix == ".csv":
        with path.open(encoding="utf-8", newline="") as handle:
            return list(csv.DictReader(handle))
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_jsonl_in_csv_out_with_verdicts_sources_and_dates(served, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", articles(10))
    out = tmp_path / "out.csv"
    summary = run_batch(served.client, source, out, streams=2, in_flight=3)
    assert (summary.total, summary.skipped, summary.scored, summary.failed) == (10, 0, 10, 0)
    assert summary.verdicts == {"NEAR_DUPLICATE": 5, "ORIGINAL": 5}
    assert out.read_text(encoding="utf-8").splitlines()[0] == ",".join(OUTPUT_FIELDS)
    rows = {r["id"]: r for r in read_rows(out)}
    assert sorted(rows) == [f"a{i:03d}" for i in range(10)]
    copy, original = rows["a000"], rows["a001"]
    assert (copy["verdict"], copy["top_source"], copy["source_is_newer"]) == (
        "NEAR_DUPLICATE",
        "src-001",
        "true",
    )
    assert float(copy["score"]) > 0.9 and float(copy["coverage"]) == 1.0 and int(copy["pair_count"]) >= 20
    assert (original["verdict"], original["top_source"], original["pair_count"]) == ("ORIGINAL", "", "0")
    # The same rows as single Check calls give.
    single = served.client.check(seed_text("001"), published_at="2021-10-19")
    assert float(copy["score"]) == pytest.approx(single.score, abs=1e-4)
    assert int(copy["pair_count"]) == len(single.matches[0].pairs)


def test_every_input_kind(served, tmp_path: Path) -> None:
    records = articles(4)
    inputs: dict[str, Path] = {"jsonl": write_jsonl(tmp_path / "in.jsonl", records)}
    with (tmp_path / "in.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=["id", "text", "published_at"])
        writer.writeheader()
        writer.writerows(records)
    inputs["csv"] = tmp_path / "in.csv"
    directory = tmp_path / "pages"
    (directory / "sub").mkdir(parents=True)
    for i, record in enumerate(records):
        name = directory / ("sub" if i % 2 else ".") / f"{record['id']}.{'md' if i % 2 else 'txt'}"
        name.write_text(record["text"], encoding="utf-8")
    (directory / ".hidden.txt").write_text("skipped", encoding="utf-8")
    inputs["dir"] = directory
    pyarrow = pytest.importorskip("pyarrow", reason="pyarrow is in the [dev] extra")
    import pyarrow.parquet as parquet

    parquet.write_table(pyarrow.Table.from_pylist(records), tmp_path / "in.parquet")
    inputs["parquet"] = tmp_path / "in.parquet"

    expected_ids = {"jsonl": ["a000", "a001", "a002", "a003"]}
    expected_ids["csv"] = expected_ids["parquet"] = expected_ids["jsonl"]
    expected_ids["dir"] = ["a000", "a002", "sub/a001", "sub/a003"]
    for kind, path in inputs.items():
        items = list(read_items(path))
        assert [i.id for i in items] == expected_ids[kind], kind
        out = tmp_path / f"out-{kind}.jsonl"
        summary = run_batch(served.client, path, out)
        assert summary.verdicts == {"NEAR_DUPLICATE": 2, "ORIGINAL": 2}, kind
        assert {r["id"] for r in read_rows(out)} == set(expected_ids[kind])


def test_bad_input_fails_before_anything_is_sent(served, tmp_path: Path) -> None:
    cases = {
        "dup.jsonl": (
            '{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n',
            "dup.jsonl:2: id 'x' already used",
        ),
        "nojson.jsonl": ('{"id": "x", "text": "a"}\nnot json\n', "nojson.jsonl:2: invalid JSON"),
        "noid.jsonl": ('{"text": "a"}\n', "noid.jsonl:1: missing 'id'"),
        "fmt.jsonl": (
            '{"id": "x", "text": "a", "format": "pdf"}\n',
            "fmt.jsonl:1: unknown text format 'pdf'",
        ),
        "cols.csv": ("name,body\nx,a\n", "the CSV header must name an 'id' and a 'text' column"),
        "in.txt": ("x", "cannot read this kind of input"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_text(content, encoding="utf-8")
        out = tmp_path / f"{name}.out.jsonl"
        with pytest.raises(BatchInputError, match=message):
            run_batch(served.client, path, out)
        assert not out.exists() or out.read_text() == ""
    good = write_jsonl(tmp_path / "good.jsonl", articles(1))
    with pytest.raises(BatchInputError, match="cannot write this kind of output"):
        run_batch(served.client, good, tmp_path / "out.parquet")
    foreign = tmp_path / "foreign.csv"
    foreign.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(BatchInputError, match="not a batch output's"):
        run_batch(served.client, good, foreign)
    assert foreign.read_text() == "a,b\n1,2\n"


def test_resume_skips_done_ids_and_redoes_a_half_written_row(served, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", articles(6))
    for suffix in (".jsonl", ".csv"):
        out = tmp_path / f"out{suffix}"
        first = run_batch(served.client, source, out)
        assert first.scored == 6
        complete = out.read_bytes()
        # Simulate a kill mid-write: the last row is cut in half.
        lines = complete.splitlines(keepends=True)
        cut = b"".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2]
        out.write_bytes(cut)
        lost_id = read_rows_from_bytes(lines[-1], suffix)
        assert lost_id not in completed_ids(out)  # the fragment is dropped...
        again = run_batch(served.client, source, out)
        assert (again.skipped, again.scored) == (5, 1)  # ...and redone; the rest is skipped
        rows = read_rows(out)
        assert sorted(r["id"] for r in rows) == sorted(f"a{i:03d}" for i in range(6))
        assert run_batch(served.client, source, out).scored == 0  # nothing left to do


def read_rows_from_bytes(line: bytes, suffix: str) -> str:
    text = line.decode("utf-8")
    return json.loads(text)["id"] if suffix == ".jsonl" else text.split(",", 1)[0]


def test_rejected_articles_get_an_error_row_and_the_run_goes_on(served, tmp_path: Path) -> None:
    records = [*articles(2), {"id": "bad-date", "text": "Some text here.", "published_at": "yesterday"}]
    records.append({"id": "empty-page", "text": "<html><body><script>x()</script></body></html>"})
    out = tmp_path / "out.jsonl"
    summary = run_batch(served.client, write_jsonl(tmp_path / "in.jsonl", records), out)
    assert (summary.scored, summary.failed) == (4, 2)
    rows = {r["id"]: r for r in read_rows(out)}
    assert rows["bad-date"]["error"].startswith("INVALID_ARGUMENT: published_at 'yesterday'")
    assert rows["empty-page"]["error"].startswith("INVALID_ARGUMENT: submitted text was read as HTML")
    assert rows["bad-date"]["verdict"] == "" and rows["a000"]["error"] == ""


class CountingClient:
    """Wraps the real client's check_stream to measure requests outstanding on each stream."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.lock = threading.Lock()
        self.peaks: list[int] = []

    def check_stream(self, requests: Iterable[pb.CheckRequest]) -> Iterator[pb.CheckResponse]:
        outstanding = 0
        peak = 0

        def counted() -> Iterator[pb.CheckRequest]:
            nonlocal outstanding, peak
            for request in requests:
                with self.lock:
                    outstanding += 1
                    peak = max(peak, outstanding)
                yield request

        for response in self.client.check_stream(counted()):
            with self.lock:
                outstanding -= 1
            yield response
        with self.lock:
            self.peaks.append(peak)


def test_streams_and_the_in_flight_bound(served) -> None:
    counting = CountingClient(served.client)
    items = [BatchItem(id=r["id"], text=r["text"]) for r in articles(24)]
    rows = list(score_items(counting, items, streams=3, in_flight=2))  # type: ignore[arg-type]
    assert sorted(r.id for r in rows) == [i.id for i in items]
    assert len(counting.peaks) == 3  # three CheckStream calls...
    assert all(1 <= peak <= 2 for peak in counting.peaks)  # ...none ever more than 2 requests ahead


def test_a_dead_server_stops_the_run_with_its_error(served, tmp_path: Path) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", articles(4))
    target = served.target
    served.stop()
    with Client(target, timeout=2, retries=0) as client, pytest.raises(errors.Unavailable):
        run_batch(client, source, tmp_path / "out.jsonl")
    assert completed_ids(tmp_path / "out.jsonl") == set()


def test_cli_batch_summary_json_and_exit_codes(served, tmp_path: Path) -> None:
    runner = CliRunner()
    source = write_jsonl(tmp_path / "in.jsonl", articles(4))
    out = tmp_path / "out.csv"
    result = runner.invoke(
        app, ["--server", served.target, "batch", str(source), str(out), "--in-flight", "2"]
    )
    assert result.exit_code == 0, result.output
    assert "Batch summary" in result.output and "NEAR_DUPLICATE" in result.output
    assert "scored this run" in result.output
    result = runner.invoke(app, ["--server", served.target, "--json", "batch", str(source), str(out)])
    assert result.exit_code == 0
    assert json.loads(result.stdout) | {"elapsed_seconds": 0, "rate_per_second": 0} == {
        "total": 4,
        "skipped": 4,
        "scored": 0,
        "failed": 0,
        "verdicts": {},
        "elapsed_seconds": 0,
        "rate_per_second": 0,
    }
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"id": "x", "text": "Some text.", "published_at": "nope"}])
    result = runner.invoke(app, ["--server", served.target, "batch", str(bad), str(tmp_path / "bad.csv")])
    assert result.exit_code == 1 and "failed" in result.output
    dup = tmp_path / "dup.jsonl"
    dup.write_text('{"id": "x", "text": "a"}\n{"id": "x", "text": "b"}\n', encoding="utf-8")
    result = runner.invoke(app, ["--server", served.target, "batch", str(dup), str(tmp_path / "d.csv")])
    assert result.exit_code == 2 and "ids must be unique" in result.output


def test_the_example_script_runs(served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    source = write_jsonl(tmp_path / "in.jsonl", articles(4))
    out = tmp_path / "scores.csv"
    monkeypatch.setattr(sys, "argv", ["batch_score.py", str(source), str(out), "--server", served.target])
    runpy.run_path(str(ROOT / "examples" / "batch_score.py"), run_name="__main__")
    printed = capsys.readouterr().out
    assert "4 scored" in printed and "NEAR_DUPLICATE" in printed
    assert len(read_rows(out)) == 4
