"""The side-by-side report in a real headless Chromium: `check --html` and `compare --html` against the real
server, the page opened by the browser, the rendered pair rows counted through its DOM, a screenshot taken.

Needs the Debian `chromium` package (`make browser`). Without it the tests skip, except under CI (`CI` set),
where a missing browser is a failure: the report must have been seen rendered.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import seed_path, seed_text
from rewrite_detector.cli import app

pytestmark = pytest.mark.slow  # each Chromium run takes a few seconds on a small machine

NEWS_PAGE = Path(__file__).resolve().parents[1] / "fixtures" / "news_page_001.html"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
WINDOW = (1400, 2000)


@pytest.fixture(scope="module")
def chromium() -> str:
    found = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if found is None:
        reason = "headless Chromium (/usr/bin/chromium) is not installed: run `make browser`"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (required in CI)")
        pytest.skip(reason)
    return found


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    completed = subprocess.run(
        [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed


class RenderedDom(HTMLParser):
    """The DOM Chromium serialised after load: the rows by kind and the body's data attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.rows: list[str] = []
        self.body: dict[str, str] = {}
        self.marks: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "body":
            self.body = values
        elif tag == "tr" and "data-row" in values:
            self.rows.append(values["data-row"])
        elif tag == "mark":
            self.marks.append(values.get("class", ""))


def rendered_dom(chromium: str, profile: Path, report: Path) -> RenderedDom:
    dumped = run_chromium(chromium, profile, "--dump-dom", report.as_uri()).stdout
    dom = RenderedDom()
    dom.feed(dumped)
    return dom


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    width, height = struct.unpack(">II", data[16:24])  # IHDR is always the first chunk
    return width, height


def edited_copy() -> str:
    """Seed 001 with words changed in two paragraphs, one paragraph dropped and one added."""
    text = seed_text("001")
    text = text.replace("Russia on Wednesday recognized Taliban", "Russia on Wednesday acknowledged Taliban")
    text = text.replace("Lavrov expressed regret that", "Lavrov expressed disappointment that")
    text = text.replace("Those followed talks in Ankara between the Taliban and Turkish officials.\n\n", "")
    return text + "\n\nA paragraph the copy added, about the weather in Moscow on Thursday afternoon.\n"


def test_check_report_renders_side_by_side(
    start_server, hashing_embedder, chromium: str, tmp_path: Path
) -> None:
    server = start_server(hashing_embedder)
    server.client.index_article("src-001", seed_text("001"), published_at="2021-10-21")
    server.client.index_article("src-004", seed_text("004"))
    submitted = tmp_path / "suspect.md"
    submitted.write_text(edited_copy(), encoding="utf-8")
    report = tmp_path / "report.html"

    result = CliRunner().invoke(
        app,
        [
            "--server",
            server.target,
            "--json",
            "check",
            str(submitted),
            "--published-at",
            "2021-10-20",
            "--html",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    top = response["matches"][0]
    assert top["source_id"] == "src-001" and top["source_is_newer"]
    pair_count = len(top["pairs"])
    assert pair_count >= 18

    dom = rendered_dom(chromium, tmp_path / "profile", report)
    # Every aligned pair is one rendered row, laid out side by side; the page's script (allowed by its
    # CSP hash) measured them after layout.
    assert dom.rows.count("pair") == pair_count
    assert dom.body["data-rendered-pair-rows"] == str(pair_count)
    assert dom.body["data-side-by-side-pair-rows"] == str(pair_count)
    # The dropped paragraph is the one source-only row, the added one the last (submitted-only) row; the
    # unaligned boilerplate of both sides (byline, date, caption, "Related article") faces each other.
    assert dom.rows.count("source-only") == 1 and dom.rows[-1] == "submitted-only"
    assert dom.rows.count("unaligned") >= 4
    row_html = re.findall(r'(<tr [^>]*data-row="([a-z-]+)".*?</tr>)', report.read_text(encoding="utf-8"))
    rows = {kind: html for html, kind in row_html}
    assert "Those followed talks in Ankara" in rows["source-only"]
    assert "the weather in Moscow" in rows["submitted-only"]
    assert {"added", "removed"} <= set(dom.marks)  # the changed words

    screenshot = tmp_path / "report.png"
    width, height = WINDOW
    run_chromium(
        chromium,
        tmp_path / "profile",
        "--hide-scrollbars",
        f"--screenshot={screenshot}",
        f"--window-size={width},{height}",
        report.as_uri(),
    )
    assert png_size(screenshot) == WINDOW
    # A blank 1400x2000 page compresses to a few KB; coloured rows of text do not.
    assert screenshot.stat().st_size > 100_000
    keep = os.environ.get("REWRITE_DETECTOR_KEEP_SCREENSHOTS")
    if keep:  # for looking at it by hand
        shutil.copy(screenshot, Path(keep) / "check_report.png")


def test_compare_report_of_an_html_page(
    start_server, hashing_embedder, chromium: str, tmp_path: Path
) -> None:
    server = start_server(hashing_embedder)
    report = tmp_path / "compare.html"
    result = CliRunner().invoke(
        app,
        [
            "--server",
            server.target,
            "--json",
            "compare",
            str(NEWS_PAGE),
            str(seed_path("002")),
            "--html",
            str(report),
        ],
    )
    assert result.exit_code == 0, result.output
    response = json.loads(result.stdout)
    assert response["submitted_format"] == "HTML" and response["verdict"] == "NEAR_DUPLICATE"
    pair_count = len(response["match"]["pairs"])

    dom = rendered_dom(chromium, tmp_path / "profile", report)
    assert dom.rows.count("pair") == pair_count == 21
    assert dom.body["data-rendered-pair-rows"] == dom.body["data-side-by-side-pair-rows"] == "21"
    assert "text extracted from HTML by Marina Lapenkova" in report.read_text(encoding="utf-8")
