"""Which one is the original: publication dates in any ISO 8601 form, compared end to end."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from rewrite_detector import errors
from rewrite_detector.cli import app
from rewrite_detector_server.core.dates import is_newer, parse_published_at, validate_published_at
from rewrite_detector_server.errors import InvalidInputError

SOURCE = (
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros.\n\n"
    "Chief executive Maria Lopez credited strong demand for its shipping services in Rotterdam.\n\n"
    "The company plans to open three new warehouses in Poland before the end of 2025."
)
COPY = "Reposted:\n\n" + SOURCE


# -- the comparison itself ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "submitted", "newer"),
    [
        ("2021-10-21", "2021-10-20", True),
        ("2021-10-20", "2021-10-21", False),
        ("2021-10-20", "2021-10-20", False),  # same day: which came first is unknown
        # Instants across zones: 10:00Z is 13:00+03:00, after 12:46+03:00...
        ("2021-10-20T10:00:00Z", "2021-10-20T12:46:00+03:00", True),
        # ...and 09:00Z is before it, although "2021-10-20T09" > "2021-10-20T12" is false as text anyway.
        ("2021-10-20T09:00:00Z", "2021-10-20T12:46:00+03:00", False),
        # Text comparison gets this one wrong ("T23..." > "T01..."), instants do not.
        ("2021-10-20T23:30:00-05:00", "2021-10-21T01:00:00+00:00", True),
        # A bare date against a date-time compares by calendar day.
        ("2021-10-21", "2021-10-20T23:59:59Z", True),
        ("2021-10-20T23:59:59Z", "2021-10-20", False),
        # No offset = UTC; a space instead of T; fractional seconds; compact basic format.
        ("2021-10-20 12:00:01", "2021-10-20T12:00:00+00:00", True),
        ("2021-10-20T12:00:00.500Z", "2021-10-20T12:00:00.250Z", True),
        ("20211021", "2021-10-20", True),
        # Missing or unparseable dates never claim anything.
        ("", "2021-10-20", False),
        ("2021-10-21", "", False),
        ("next week", "2021-10-20", False),
    ],
)
def test_is_newer(source: str, submitted: str, newer: bool) -> None:
    assert is_newer(source, submitted) is newer


def test_parse_and_validate() -> None:
    assert str(parse_published_at("2021-10-20")) == "2021-10-20"
    assert str(parse_published_at("2021-10-20T12:46:00Z")) == "2021-10-20 12:46:00+00:00"
    assert parse_published_at("20/10/2021") is None
    assert validate_published_at("", "published_at") == ""
    with pytest.raises(InvalidInputError, match=r"published_at 'October 20, 2021' is not an ISO 8601 date"):
        validate_published_at("October 20, 2021", "published_at")


# -- through the server -------------------------------------------------------------------------------


def test_source_is_newer_end_to_end(start_server, hashing_embedder) -> None:
    client = start_server(hashing_embedder).client
    client.index_article("wire", SOURCE, published_at="2021-10-20T10:00:00Z")
    client.index_article("undated", SOURCE.replace("Poland", "Hungary"))

    def newer_by_source(published_at: str) -> dict[str, bool]:
        response = client.check(COPY, published_at=published_at)
        return {m.source_id: m.source_is_newer for m in response.matches}

    # The submission is dated before the indexed "source": the index holds the copy, not the original.
    assert newer_by_source("2021-10-20T12:46:00+03:00") == {"wire": True, "undated": False}
    assert newer_by_source("2021-10-19") == {"wire": True, "undated": False}
    # Dated after it, or undated: the ordinary case.
    assert newer_by_source("2021-10-20T14:00:00+03:00") == {"wire": False, "undated": False}
    assert newer_by_source("") == {"wire": False, "undated": False}
    # The source's date comes back with the match, as stored.
    assert client.check(COPY).matches[0].published_at in ("2021-10-20T10:00:00Z", "")


def test_bad_dates_are_invalid_arguments(start_server, hashing_embedder) -> None:
    client = start_server(hashing_embedder).client
    with pytest.raises(errors.InvalidArgument, match="published_at 'yesterday' is not an ISO 8601 date"):
        client.index_article("a", SOURCE, published_at="yesterday")
    with pytest.raises(errors.InvalidArgument, match="published_at '20/10/2021' is not an ISO 8601 date"):
        client.check(SOURCE, published_at="20/10/2021")
    responses = list(client.check_stream([{"text": SOURCE, "published_at": "soon", "request_id": "r"}]))
    assert responses[0].error_code == 3 and "ISO 8601" in responses[0].error_message


# -- through the CLI ----------------------------------------------------------------------------------


def test_cli_published_at_on_index_and_check(start_server, hashing_embedder, tmp_path) -> None:
    server = start_server(hashing_embedder)
    runner = CliRunner()
    article = tmp_path / "wire.txt"
    article.write_text(SOURCE, encoding="utf-8")
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text(
        json.dumps({"id": "jsonl-wire", "text": SOURCE, "published_at": "2021-10-22"}) + "\n",
        encoding="utf-8",
    )

    def cli(*args: str, stdin: str | None = None) -> tuple[int, str]:
        """Exit code and stdout + stderr (JSON is parsed from stdout alone, below)."""
        result = runner.invoke(app, ["--server", server.target, *args], input=stdin)
        return result.exit_code, result.output

    assert cli("index", str(article), "--published-at", "2021-10-20T10:00:00Z")[0] == 0
    assert cli("index", str(corpus))[0] == 0
    assert cli("index", "-", "--id", "piped", "--published-at", "2021-10-18", stdin=SOURCE)[0] == 0
    dates = {a: server.client.get_article(a).article.published_at for a in ("wire", "jsonl-wire", "piped")}
    assert dates == {"wire": "2021-10-20T10:00:00Z", "jsonl-wire": "2021-10-22", "piped": "2021-10-18"}

    result = runner.invoke(
        app,
        ["--server", server.target, "--json", "check", "-", "--published-at", "2021-10-20"],
        input=COPY,
    )
    assert result.exit_code == 0, result.output
    flags = {m["source_id"]: m["source_is_newer"] for m in json.loads(result.stdout)["matches"]}
    assert flags == {"wire": False, "jsonl-wire": True, "piped": False}  # same day, later day, earlier

    # The human table says it too.
    code, output = cli("check", "-", "--published-at", "2021-10-20", stdin=COPY)
    assert code == 0 and output.count("(newer)") == 1

    # --published-at needs a single article; a bad date is the server's INVALID_ARGUMENT (exit 3).
    code, output = cli("index", str(corpus), "--published-at", "2021-10-20")
    assert code == 2 and "--published-at can only be used with a single file" in output
    code, output = cli("index", str(tmp_path), "--published-at", "2021-10-20")
    assert code == 2 and "--published-at can only be used with a single file" in output
    code, output = cli("index", str(article), "--published-at", "last Tuesday")
    assert code == 1 and "is not an ISO 8601 date" in output
