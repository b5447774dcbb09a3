"""Shared CLI plumbing: global options, the client factory, error -> exit code mapping, consoles."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from rewrite_detector import errors
from rewrite_detector.client import Client

# Exit codes (documented in `rewrite-detector --help`).
EXIT_OK = 0
EXIT_FAILED = 1  # a server-side error not listed below, or some articles failed to index
EXIT_USAGE = 2  # bad command line or unreadable / malformed input (same code click uses)
EXIT_INVALID_ARGUMENT = 3
EXIT_NOT_FOUND = 4
EXIT_AUTH = 5  # UNAUTHENTICATED or PERMISSION_DENIED
EXIT_RESOURCE_EXHAUSTED = 6
EXIT_UNAVAILABLE = 7  # cannot reach the server, or DEADLINE_EXCEEDED

EXIT_CODES_HELP = (
    "Exit codes: 0 ok; 1 server error or some articles failed; 2 bad usage or input; 3 invalid argument; "
    "4 not found; 5 unauthenticated / permission denied; 6 resource exhausted; "
    "7 server unavailable or deadline exceeded."
)

_EXIT_BY_CLASS: dict[type[errors.RewriteDetectorError], int] = {
    errors.InvalidArgument: EXIT_INVALID_ARGUMENT,
    errors.NotFound: EXIT_NOT_FOUND,
    errors.Unauthenticated: EXIT_AUTH,
    errors.PermissionDenied: EXIT_AUTH,
    errors.ResourceExhausted: EXIT_RESOURCE_EXHAUSTED,
    errors.Unavailable: EXIT_UNAVAILABLE,
    errors.DeadlineExceeded: EXIT_UNAVAILABLE,
}

_LABELS: dict[type[errors.RewriteDetectorError], str] = {
    errors.InvalidArgument: "invalid argument",
    errors.NotFound: "not found",
    errors.Unauthenticated: "unauthenticated",
    errors.PermissionDenied: "permission denied",
    errors.ResourceExhausted: "resource exhausted",
    errors.Unavailable: "server unavailable",
    errors.DeadlineExceeded: "deadline exceeded",
    errors.ServerError: "server error",
}


class InputError(Exception):
    """A file, directory, JSONL line or stdin that cannot be used; the message names the culprit."""


@dataclass
class State:
    """The global options, stored on ``ctx.obj`` by the root callback."""

    server: str = "127.0.0.1:50051"
    timeout: float = 30.0
    token: str | None = None
    ca_cert: Path | None = None
    json: bool = False

    def make_client(self) -> Client:
        root_certificates = None
        if self.ca_cert is not None:
            try:
                root_certificates = self.ca_cert.read_bytes()
            except OSError as err:
                raise InputError(f"cannot read --ca-cert {self.ca_cert}: {err.strerror or err}") from err
        return Client(
            self.server, timeout=self.timeout, token=self.token, root_certificates=root_certificates
        )


JsonOption = Annotated[
    bool, typer.Option("--json", help="Print JSON (same as the global --json).", show_default=False)
]


class TextFormatChoice(str, enum.Enum):
    """``--format`` values (the names :func:`rewrite_detector._shared.text_format` accepts)."""

    AUTO = "auto"
    TEXT = "text"
    MARKDOWN = "markdown"
    HTML = "html"


FormatOption = Annotated[
    TextFormatChoice,
    typer.Option(
        "--format",
        case_sensitive=False,
        help="How to read the text: auto sniffs HTML; html extracts the article (text, title, author, "
        "date) from a web page first; text and markdown are read alike.",
    ),
]


def get_state(ctx: typer.Context) -> State:
    obj = ctx.find_root().obj
    return obj if isinstance(obj, State) else State()


def stdout_console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def stderr_console() -> Console:
    return Console(stderr=True, highlight=False)


def one_line(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def exit_code_for(err: errors.RewriteDetectorError) -> int:
    for cls in type(err).__mro__:
        if cls in _EXIT_BY_CLASS:
            return _EXIT_BY_CLASS[cls]
    return EXIT_FAILED


def error_message(err: errors.RewriteDetectorError, server: str | None = None) -> str:
    label = next((_LABELS[c] for c in type(err).__mro__ if c in _LABELS), "error")
    message = f"{label}: {one_line(err.details or str(err)) or '(no details)'}"
    if server and isinstance(err, (errors.Unavailable, errors.DeadlineExceeded)):
        message += f" (server {server}; set --server or REWRITE_DETECTOR_SERVER)"
    return message


def print_error(message: str) -> None:
    """One red line on stderr."""
    stderr_console().print(f"[bold red]Error:[/bold red] {escape(message)}", soft_wrap=True)


def fail(message: str, code: int) -> NoReturn:
    """Print a one-line red error on stderr and exit with ``code``; no traceback."""
    print_error(message)
    raise typer.Exit(code)


def fail_for(err: errors.RewriteDetectorError, server: str | None = None) -> NoReturn:
    fail(error_message(err, server), exit_code_for(err))


@contextmanager
def handle_errors(state: State) -> Iterator[None]:
    """Turn the library's and the input readers' exceptions into a clean message and an exit code."""
    try:
        yield
    except errors.RewriteDetectorError as err:
        fail_for(err, state.server)
    except InputError as err:
        fail(str(err), EXIT_USAGE)


@contextmanager
def connect(ctx: typer.Context) -> Iterator[Client]:
    """``with connect(ctx) as client:`` a client built from the global options, errors handled."""
    state = get_state(ctx)
    with handle_errors(state):
        client = state.make_client()
        with client:
            yield client
