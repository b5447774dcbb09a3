"""Structured log lines: key=value, UTC timestamps, the current request id on every record."""

from __future__ import annotations

import io
import logging
import re
import threading
from collections.abc import Iterator

import pytest

from rewrite_detector_server.logging_setup import (
    accept_request_id,
    configure_logging,
    current_request_id,
    request_id_scope,
)

LINE = re.compile(
    r"ts=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z level=(?P<level>\w+) logger=(?P<logger>\S+) "
    r"request_id=(?P<rid>\S+) (?P<message>.*)"
)


@pytest.fixture
def log_stream() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    level = root.level
    stream = io.StringIO()
    handler = configure_logging("INFO", stream)
    yield stream
    root.removeHandler(handler)
    root.setLevel(level)


def test_lines_are_key_value_with_the_request_id(log_stream: io.StringIO) -> None:
    log = logging.getLogger("rewrite_detector_server.test")
    log.info("outside rpc=none")
    with request_id_scope("abc-123"):
        log.warning("inside rpc=Check")
        seen_in_thread: list[str] = []
        worker = threading.Thread(target=lambda: seen_in_thread.append(current_request_id()))
        worker.start()
        worker.join()
    log.info("after")
    lines = [LINE.fullmatch(line) for line in log_stream.getvalue().splitlines()]
    assert all(lines), log_stream.getvalue()
    assert [(m["level"], m["rid"], m["message"]) for m in lines if m] == [
        ("INFO", "-", "outside rpc=none"),
        ("WARNING", "abc-123", "inside rpc=Check"),
        ("INFO", "-", "after"),
    ]
    assert seen_in_thread == ["-"]  # another thread is another request


def test_configure_twice_does_not_duplicate_lines(log_stream: io.StringIO) -> None:
    second = io.StringIO()
    handler = configure_logging("INFO", second)
    try:
        logging.getLogger("x").info("once")
        assert log_stream.getvalue() == "" and second.getvalue().count("once") == 1
    finally:
        logging.getLogger().removeHandler(handler)


@pytest.mark.parametrize(
    ("proposed", "kept"),
    [
        ("req-1", True),
        ("0f8e2a6c-1d3b-4c5a-9e7f-123456789abc", True),
        ("trace:abc/def+1.2", True),
        ("", False),
        (None, False),
        ("has space", False),
        ("x\nlevel=ERROR", False),
        ('quote"', False),
        ("k=v", False),
        ("a" * 129, False),
    ],
)
def test_only_safe_request_ids_are_accepted(proposed: str | None, kept: bool) -> None:
    accepted = accept_request_id(proposed)
    if kept:
        assert accepted == proposed
    else:
        assert re.fullmatch(r"[0-9a-f]{32}", accepted)
