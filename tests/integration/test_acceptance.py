"""The acceptance scenario: the seeds, through the CLI, against a running server with the real model."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from conftest import seed_path

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "rewrite_detector"]


def cli(server: str, *args: str) -> dict:
    completed = subprocess.run(
        [*CLI, "--server", server, "--json", *args], capture_output=True, text=True, timeout=120, check=False
    )
    assert completed.returncode == 0, completed.stderr
    return json.loads(completed.stdout)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """`rewrite-detector serve` as a real subprocess with the bundled model; SIGTERM at the end."""
    data_dir = tmp_path_factory.mktemp("acceptance-data")
    port = free_port()
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    target = f"127.0.0.1:{port}"
    from rewrite_detector import Client

    with Client(target) as client:
        client.wait_ready(timeout=120)
    yield target, process, data_dir
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)


def verdict_and_first(response: dict) -> tuple[str, str | None]:
    matches = response.get("matches", [])
    return response["verdict"], (matches[0]["source_id"] if matches else None)


def test_seed_acceptance_scenario(served) -> None:  # type: ignore[no-untyped-def]
    target, _, _ = served
    indexed = subprocess.run(
        [*CLI, "--server", target, "index", "--id", "001", str(seed_path("001"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert indexed.returncode == 0, indexed.stderr

    spun = cli(target, "check", str(seed_path("000")))
    assert verdict_and_first(spun) == ("REWRITE", "001")
    assert spun["matches"][0]["coverage_submitted"] >= 0.7
    pair = spun["matches"][0]["pairs"][0]
    for field in (
        "submitted_paragraphs",
        "source_paragraphs",
        "submitted_span",
        "source_span",
        "similarity",
        "divergence",
        "lexical_overlap",
        "kind",
    ):
        assert field in pair
    assert set(pair["submitted_span"]) == {"start", "end"}
    for field in ("source_id", "verdict", "score", "coverage_submitted", "coverage_source", "pairs"):
        assert field in spun["matches"][0]

    assert verdict_and_first(cli(target, "check", str(seed_path("002")))) == ("NEAR_DUPLICATE", "001")
    assert verdict_and_first(cli(target, "check", str(seed_path("003")))) == ("PARTIAL_REUSE", "001")
    assert cli(target, "check", str(seed_path("004")))["verdict"] == "ORIGINAL"

    cli_index = subprocess.run(
        [*CLI, "--server", target, "index", "--id", "003", str(seed_path("003"))],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert cli_index.returncode == 0, cli_index.stderr
    assert verdict_and_first(cli(target, "check", str(seed_path("000")))) == ("REWRITE", "001")


def test_spans_point_into_the_texts_as_given(served) -> None:  # type: ignore[no-untyped-def]
    target, _, _ = served
    subprocess.run([*CLI, "--server", target, "index", "--id", "001", str(seed_path("001"))], check=True)
    submitted = seed_path("000").read_text(encoding="utf-8")
    source = seed_path("001").read_text(encoding="utf-8")
    response = cli(target, "check", "--include-texts", str(seed_path("000")))
    for pair in response["matches"][0]["pairs"]:
        sub, src = pair["submitted_span"], pair["source_span"]
        assert submitted[sub["start"] : sub["end"]].strip()
        assert source[src["start"] : src["end"]].strip()
        # The spans hold the normalised paragraph text's words, in order.
        assert pair["submitted_text"].split()[0] in submitted[sub["start"] : sub["end"]]
    # Stretches: every counted (non-WEAK) pair lies inside exactly one, and their pair counts add up.
    counted = [p for p in response["matches"][0]["pairs"] if p["kind"] != "WEAK"]
    stretches = response["matches"][0]["stretches"]
    assert counted and sum(s["pair_count"] for s in stretches) == len(counted)
    for pair in counted:
        holding = [
            s
            for s in stretches
            if s["submitted_span"]["start"] <= pair["submitted_span"]["start"]
            and pair["submitted_span"]["end"] <= s["submitted_span"]["end"]
            and s["source_span"]["start"] <= pair["source_span"]["start"]
            and pair["source_span"]["end"] <= s["source_span"]["end"]
        ]
        assert len(holding) == 1


def test_check_from_stdin_matches_check_from_file(served) -> None:  # type: ignore[no-untyped-def]
    target, _, _ = served
    subprocess.run([*CLI, "--server", target, "index", "--id", "001", str(seed_path("001"))], check=True)
    completed = subprocess.run(
        [*CLI, "--server", target, "--json", "check", "-"],
        input=seed_path("002").read_text(encoding="utf-8"),
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(completed.stdout)["verdict"] == "NEAR_DUPLICATE"


def test_sigterm_stops_the_server_cleanly_and_data_survives(served) -> None:  # type: ignore[no-untyped-def]
    target, process, data_dir = served
    cli(target, "index", "--id", "001", str(seed_path("001")))
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=60)
    assert process.returncode == 0, output
    assert "stopped" in output

    port = free_port()
    restarted = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)],
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        from rewrite_detector import Client

        with Client(f"127.0.0.1:{port}") as client:
            client.wait_ready(timeout=120)
            assert client.get_article("001").summary.paragraph_count > 10
            assert client.check(seed_path("002").read_text(encoding="utf-8")).matches[0].source_id == "001"
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=60)
