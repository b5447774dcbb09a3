"""Batch scoring: check many articles over ``CheckStream`` and write one row per article, resumably.

>>> from rewrite_detector import Client
>>> from rewrite_detector.batch import run_batch
>>> with Client("127.0.0.1:50051") as client:
...     summary = run_batch(client, "articles.jsonl", "scores.csv")
>>> summary.verdicts, summary.failed

Input (``read_items``): JSONL (one object per line: ``id``, ``text``, optional ``title``, ``published_at``,
``format``), CSV with a header (same columns), a directory (every ``*.txt``, ``*.md``, ``*.html``,
``*.htm`` below it; the id is the path relative to the directory without its suffix), or Parquet (same
columns; needs ``pyarrow``: ``pip install 'rewrite-detector[batch]'``).

Output (``OUTPUT_FIELDS``): JSONL or CSV, one row per article in completion order. Rows are appended and
flushed one by one, so an interrupted run loses at most the articles in flight; running again skips every
id already in the output (a half-written last line is dropped and redone). A request the server rejects
(empty text, bad date...) gets a row with ``error`` set and is not retried.

Concurrency: ``streams`` CheckStream calls run side by side (the server checks each stream's articles in
turn, so streams are what run in parallel there), each with at most ``in_flight`` requests sent ahead of
their responses, so neither side buffers the whole input.
"""

from __future__ import annotations

import contextlib
import csv
import json
import queue
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import grpc

from rewrite_detector import _shared
from rewrite_detector.client import Client
from rewrite_detector.v1 import detector_pb2 as pb

__all__ = [
    "OUTPUT_FIELDS",
    "BatchInputError",
    "BatchItem",
    "BatchRow",
    "BatchSummary",
    "completed_ids",
    "read_items",
    "run_batch",
    "scan_ids",
    "score_items",
]

OUTPUT_FIELDS = ("id", "verdict", "score", "top_source", "coverage", "pair_count", "source_is_newer", "error")
DIRECTORY_SUFFIXES = frozenset({".txt", ".md", ".html", ".htm"})
INPUT_KINDS = ("JSONL (.jsonl)", "CSV (.csv)", "Parquet (.parquet)", "a directory")
OUTPUT_KINDS = ("JSONL (.jsonl)", "CSV (.csv)")
_OPTIONAL_FIELDS = ("title", "published_at", "format")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# csv's default field limit is 128 KiB; an article may be larger (the server's own limit applies).
_CSV_FIELD_LIMIT = 2**31 - 1
_PARQUET_BATCH_ROWS = 256


class BatchInputError(ValueError):
    """The input or output file cannot be used; the message names the file (and line) and the fix."""


@dataclass(frozen=True, slots=True)
class BatchItem:
    id: str
    text: str
    title: str = ""
    published_at: str = ""
    format: str = "auto"


@dataclass(frozen=True, slots=True)
class BatchRow:
    """One output row. ``verdict`` is empty and ``error`` set when the server rejected the article."""

    id: str
    verdict: str = ""
    score: float = 0.0
    top_source: str = ""
    coverage: float = 0.0
    pair_count: int = 0
    source_is_newer: bool = False
    error: str = ""

    @classmethod
    def from_response(cls, article_id: str, response: pb.CheckResponse) -> BatchRow:
        if response.error_code:
            return cls(id=article_id, error=f"{_status_name(response.error_code)}: {response.error_message}")
        top = response.matches[0] if response.matches else None
        return cls(
            id=article_id,
            verdict=pb.Verdict.Name(response.verdict),
            score=round(response.score, 4),
            top_source=top.source_id if top else "",
            coverage=round(top.coverage_submitted, 4) if top else 0.0,
            pair_count=len(top.pairs) if top else 0,
            source_is_newer=top.source_is_newer if top else False,
        )

    def as_record(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in OUTPUT_FIELDS}


@dataclass
class BatchSummary:
    total: int = 0  # articles in the input
    skipped: int = 0  # already in the output before this run
    scored: int = 0  # rows written by this run, failed ones included
    failed: int = 0
    verdicts: Counter[str] = field(default_factory=Counter)
    elapsed_seconds: float = 0.0

    @property
    def rate(self) -> float:
        """Articles per second in this run."""
        return self.scored / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "total": self.total,
            "skipped": self.skipped,
            "scored": self.scored,
            "failed": self.failed,
            "verdicts": dict(sorted(self.verdicts.items())),
            "elapsed_seconds": round(self.elapsed_seconds, 3),
            "rate_per_second": round(self.rate, 3),
        }


# -- input ----------------------------------------------------------------------------------------------


def input_kind(path: Path) -> str:
    if path.is_dir():
        return "dir"
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".csv", ".parquet"):
        return suffix[1:]
    raise BatchInputError(f"{path}: cannot read this kind of input; use {', '.join(INPUT_KINDS)}")


def read_items(path: str | Path) -> Iterator[BatchItem]:
    """The articles of ``path`` in input order, validated one by one (see the module docstring)."""
    return (item for _, item in _located_items(Path(path)))


def scan_ids(path: str | Path) -> list[str]:
    """Every id of the input, in order, after checking the whole input (fields, formats, unique ids), so a
    bad line fails the run before anything is sent."""
    seen: dict[str, str] = {}
    ids = []
    for where, item in _located_items(Path(path)):
        earlier = seen.setdefault(item.id, where)
        if earlier != where:
            raise BatchInputError(f"{where}: id {item.id!r} already used at {earlier}; ids must be unique")
        ids.append(item.id)
    return ids


Located = Iterator[tuple[str, BatchItem]]  # (where, item): "file:line" for error messages


def _located_items(path: Path) -> Located:
    if not path.exists():
        raise BatchInputError(f"{path}: no such file or directory")
    kind = input_kind(path)
    if kind == "jsonl":
        return _jsonl_items(path)
    if kind == "csv":
        return _csv_items(path)
    if kind == "parquet":
        return _parquet_items(path)
    return _directory_items(path)


def _item(record: dict[str, Any], where: str) -> tuple[str, BatchItem]:
    values: dict[str, str] = {}
    for name in ("id", "text"):
        value = record.get(name)
        if not isinstance(value, str) or not value.strip():
            problem = "missing" if value is None else "empty or not a string:"
            raise BatchInputError(f"{where}: {problem} {name!r}")
        values[name] = value
    if _CONTROL.search(values["id"]) or values["id"] != values["id"].strip():
        raise BatchInputError(f"{where}: id {values['id']!r} has control characters or surrounding spaces")
    for name in _OPTIONAL_FIELDS:
        value = record.get(name)
        if value is None or value == "":
            continue
        if not isinstance(value, str):
            raise BatchInputError(f"{where}: field {name!r} must be a string")
        values[name] = value
    if "format" in values:
        try:
            _shared.text_format(values["format"])
        except ValueError as err:
            raise BatchInputError(f"{where}: {err}") from None
    return where, BatchItem(**values)


def _jsonl_items(path: Path) -> Located:
    with _open_text(path) as handle:
        for number, line in enumerate(_lines(handle, path), start=1):
            if not line.strip():
                continue
            where = f"{path}:{number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise BatchInputError(f"{where}: invalid JSON ({err.msg})") from err
            if not isinstance(record, dict):
                raise BatchInputError(f"{where}: expected a JSON object with 'id' and 'text'")
            yield _item(record, where)


def _csv_items(path: Path) -> Located:
    previous_limit = csv.field_size_limit(_CSV_FIELD_LIMIT)
    try:
        with _open_text(path, newline="") as handle:
            reader = csv.DictReader(_lines(handle, path))
            columns = set(reader.fieldnames or ())
            if not {"id", "text"} <= columns:
                raise BatchInputError(f"{path}: the CSV header must name an 'id' and a 'text' column")
            for record in reader:
                yield _item(dict(record), f"{path}:{reader.line_num}")
    except csv.Error as err:
        raise BatchInputError(f"{path}: not valid CSV ({err})") from err
    finally:
        csv.field_size_limit(previous_limit)


def _parquet_items(path: Path) -> Located:
    try:
        import pyarrow.parquet as parquet  # optional, heavy: only for Parquet input
    except ImportError as err:
        raise BatchInputError(
            f"{path}: reading Parquet needs pyarrow: pip install 'rewrite-detector[batch]'"
        ) from err
    try:
        source = parquet.ParquetFile(path)
    except Exception as err:  # pyarrow raises ArrowInvalid / OSError subclasses for unreadable files
        raise BatchInputError(f"{path}: not a readable Parquet file ({err})") from err
    names = set(source.schema_arrow.names)
    if not {"id", "text"} <= names:
        raise BatchInputError(f"{path}: the Parquet file needs 'id' and 'text' columns")
    columns = [c for c in ("id", "text", *_OPTIONAL_FIELDS) if c in names]
    row = 0
    for batch in source.iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns):
        for record in batch.to_pylist():
            row += 1
            yield _item(record, f"{path}: row {row}")


def _directory_items(directory: Path) -> Located:
    files = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.suffix.lower() in DIRECTORY_SUFFIXES and path.is_file():
            files.append(relative)
    for relative in sorted(files, key=lambda p: p.as_posix()):
        path = directory / relative
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as err:
            raise BatchInputError(f"{path}: not valid UTF-8 (byte {err.start})") from err
        except OSError as err:
            raise BatchInputError(f"{path}: {err.strerror or err}") from err
        yield _item({"id": relative.with_suffix("").as_posix(), "text": text}, str(path))


@contextlib.contextmanager
def _open_text(path: Path, newline: str | None = None) -> Iterator[IO[str]]:
    try:
        with path.open(encoding="utf-8", newline=newline) as handle:
            yield handle
    except OSError as err:
        raise BatchInputError(f"{path}: {err.strerror or err}") from err


def _lines(handle: IO[str], path: Path) -> Iterator[str]:
    try:
        yield from handle
    except UnicodeDecodeError as err:
        raise BatchInputError(f"{path}: not valid UTF-8 (byte {err.start})") from err


# -- output ---------------------------------------------------------------------------------------------


def output_kind(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".csv"):
        return suffix[1:]
    raise BatchInputError(f"{path}: cannot write this kind of output; use {', '.join(OUTPUT_KINDS)}")


def completed_ids(path: str | Path) -> set[str]:
    """The ids already in an output file (empty if it does not exist).

    A last line without its newline (the run was killed mid-write) is cut off so the file can be appended
    to; any other unreadable line means this is not a batch output, and nothing is touched.
    """
    path = Path(path)
    kind = output_kind(path)
    if not path.exists() or path.stat().st_size == 0:
        return set()
    _drop_partial_last_line(path)
    ids: set[str] = set()
    with _open_text(path, newline="") as handle:
        if kind == "jsonl":
            for number, line in enumerate(_lines(handle, path), start=1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    ids.add(record["id"])
                except (json.JSONDecodeError, KeyError, TypeError) as err:
                    raise BatchInputError(
                        f"{path}:{number}: not a batch output row; choose another output file"
                    ) from err
        else:
            reader = csv.reader(_lines(handle, path))
            header = next(reader, None)
            if header is not None and tuple(header) != OUTPUT_FIELDS:
                raise BatchInputError(
                    f"{path}: its columns are not a batch output's ({', '.join(OUTPUT_FIELDS)}); "
                    "choose another output file"
                )
            ids.update(row[0] for row in reader if row)
    return ids


def _drop_partial_last_line(path: Path) -> None:
    with path.open("rb+") as handle:
        data = handle.read()
        if data.endswith(b"\n"):
            return
        handle.truncate(data.rfind(b"\n") + 1)


class RowWriter:
    """Appends rows to a JSONL or CSV output, flushing each one (the output is the resume state)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._kind = output_kind(self.path)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self._handle = self.path.open("a", encoding="utf-8", newline="")
        except OSError as err:
            raise BatchInputError(f"{self.path}: {err.strerror or err}") from err
        self._csv = csv.writer(self._handle, lineterminator="\n") if self._kind == "csv" else None
        if self._csv is not None and fresh:
            self._csv.writerow(OUTPUT_FIELDS)
            self._handle.flush()

    def write(self, row: BatchRow) -> None:
        if self._csv is not None:
            record = row.as_record()
            record["source_is_newer"] = "true" if row.source_is_newer else "false"
            self._csv.writerow([record[name] for name in OUTPUT_FIELDS])
        else:
            self._handle.write(json.dumps(row.as_record(), ensure_ascii=False) + "\n")
        self._handle.flush()

    def close(self) -> None:
        self._handle.close()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


# -- scoring --------------------------------------------------------------------------------------------


class _Done:
    pass


@dataclass(frozen=True, slots=True)
class _Failed:
    error: BaseException


def score_items(
    client: Client,
    items: Iterable[BatchItem],
    *,
    streams: int = 2,
    in_flight: int = 8,
    max_sources: int = 0,
    min_similarity: float = 0.0,
    source_ids: Sequence[str] = (),
) -> Generator[BatchRow, None, None]:
    """One row per item, in completion order, over ``streams`` CheckStream calls with at most
    ``in_flight`` requests outstanding on each. A stream that fails (server gone) stops the whole run with
    that error; rows already yielded stay valid. Closing the iterator early stops sending."""
    if streams < 1 or in_flight < 1:
        raise ValueError(f"streams and in_flight must be >= 1, got {streams} and {in_flight}")
    source = iter(items)
    source_lock = threading.Lock()
    stop = threading.Event()
    results: queue.Queue[BatchRow | _Done | _Failed] = queue.Queue(maxsize=streams * in_flight * 2)

    def next_item() -> BatchItem | None:
        with source_lock:
            return next(source, None)

    def put(result: BatchRow | _Done | _Failed) -> None:
        while True:
            try:
                results.put(result, timeout=0.1)
                return
            except queue.Full:
                if stop.is_set():
                    return

    def run_stream() -> None:
        window = threading.BoundedSemaphore(in_flight)
        pending: dict[str, BatchItem] = {}

        def requests() -> Iterator[pb.CheckRequest]:
            # Runs on gRPC's sending thread; blocking here is how the window is enforced.
            while not stop.is_set():
                if not window.acquire(timeout=0.1):
                    continue
                item = next_item()
                if item is None:
                    return
                pending[item.id] = item
                yield _shared.make_check_request(
                    item.text,
                    title=item.title,
                    published_at=item.published_at,
                    request_id=item.id,
                    format=item.format,
                    max_sources=max_sources,
                    min_similarity=min_similarity,
                    source_ids=source_ids,
                )

        try:
            for response in client.check_stream(requests()):
                window.release()
                item = pending.pop(response.request_id, None)
                put(BatchRow.from_response(item.id if item else response.request_id, response))
        except BaseException as error:  # handed to the consumer thread, which re-raises it
            put(_Failed(error))
        finally:
            put(_Done())

    threads = [
        threading.Thread(target=run_stream, name=f"batch-stream-{n}", daemon=True) for n in range(streams)
    ]
    for thread in threads:
        thread.start()
    running = len(threads)
    try:
        while running:
            result = results.get()
            if isinstance(result, _Done):
                running -= 1
            elif isinstance(result, _Failed):
                raise result.error
            else:
                yield result
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=5)


def run_batch(
    client: Client,
    input_path: str | Path,
    output_path: str | Path,
    *,
    streams: int = 2,
    in_flight: int = 8,
    max_sources: int = 0,
    min_similarity: float = 0.0,
    source_ids: Sequence[str] = (),
    on_start: Callable[[int, int], None] | None = None,
    on_row: Callable[[BatchRow], None] | None = None,
) -> BatchSummary:
    """Score every article of ``input_path`` not yet in ``output_path`` and append its row there.

    ``on_start(todo, skipped)`` is called once the input is checked, ``on_row(row)`` after each row is
    written (progress bars). Raises :class:`BatchInputError` for unusable input/output and the client's
    errors (:class:`rewrite_detector.errors.RewriteDetectorError`) when the server cannot be used.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    output_kind(output_path)
    ids = scan_ids(input_path)
    done = completed_ids(output_path)
    summary = BatchSummary(total=len(ids), skipped=sum(1 for i in ids if i in done))
    if on_start is not None:
        on_start(summary.total - summary.skipped, summary.skipped)
    todo = (item for item in read_items(input_path) if item.id not in done)
    started = time.monotonic()
    with RowWriter(output_path) as writer:
        rows = score_items(
            client,
            todo,
            streams=streams,
            in_flight=in_flight,
            max_sources=max_sources,
            min_similarity=min_similarity,
            source_ids=source_ids,
        )
        try:
            for row in rows:
                writer.write(row)
                summary.scored += 1
                if row.error:
                    summary.failed += 1
                else:
                    summary.verdicts[row.verdict] += 1
                if on_row is not None:
                    on_row(row)
        finally:
            summary.elapsed_seconds = time.monotonic() - started
            rows.close()  # stops the streams at once when this run ends early
    return summary


def _status_name(code: int) -> str:
    return next((s.name for s in grpc.StatusCode if s.value[0] == code), f"status {code}")
