"""The match worker pool (server/match_pool.py): same answers as in-process, survives a dead worker."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import ConfigError, Settings, check_retrieval_settings
from rewrite_detector_server.core.detector import Detector
from rewrite_detector_server.core.matching import InProcessMatchRunner, MatchJob, SourceMatchResult
from rewrite_detector_server.core.types import ArticleInput, Paragraph, Role
from rewrite_detector_server.match_pool import ProcessMatchRunner


def _detector(tmp_path: Path, name: str, embedder: object, seeds: dict[str, str], workers: int) -> Detector:
    detector = build_detector(Settings(data_dir=tmp_path / name, match_workers=workers), embedder)  # type: ignore[arg-type]
    detector.index(ArticleInput(id="001", text=seeds["001"]))
    # A second candidate for every Check, so one Check's jobs run on both workers at once.
    detector.index(ArticleInput(id="003", text=seeds["003"]))
    return detector


@pytest.fixture
def pooled(tmp_path: Path, hashing_embedder: object, seeds: dict[str, str]) -> Iterator[Detector]:
    detector = _detector(tmp_path, "pooled", hashing_embedder, seeds, workers=2)
    yield detector
    detector.close()


def test_settings_choose_the_runner(tmp_path: Path, hashing_embedder: object, pooled: Detector) -> None:
    assert isinstance(pooled.match_runner, ProcessMatchRunner)
    assert pooled.match_runner.workers == 2
    in_process = build_detector(Settings(data_dir=tmp_path / "plain", match_workers=0), hashing_embedder)  # type: ignore[arg-type]
    try:
        assert isinstance(in_process.match_runner, InProcessMatchRunner)
    finally:
        in_process.close()


def _runner(detector: Detector) -> ProcessMatchRunner:
    runner = detector.match_runner
    assert isinstance(runner, ProcessMatchRunner)
    return runner


@contextlib.contextmanager
def _another_request_in_flight(detector: Detector) -> Iterator[None]:
    with detector.match_runner.request():
        yield


def test_pool_answers_exactly_as_in_process(
    tmp_path: Path, hashing_embedder: object, seeds: dict[str, str], pooled: Detector
) -> None:
    plain = _detector(tmp_path, "plain", hashing_embedder, seeds, workers=0)
    runner = _runner(pooled)
    try:
        with _another_request_in_flight(pooled):  # as under load: every job goes to the workers
            for key in ("000", "002", "003", "004"):
                expected, got = plain.check(seeds[key]), pooled.check(seeds[key])
                assert got.matches == expected.matches
                assert (got.verdict, got.score) == (expected.verdict, expected.score)
            assert pooled.check(seeds["000"]).matches, "the spun rewrite must match its source"
            compared = pooled.compare(seeds["000"], seeds["001"]).match
            assert compared == plain.compare(seeds["000"], seeds["001"]).match
            # Per-call options travel with the job.
            strict = pooled.check(seeds["000"], min_similarity=0.99)
            assert strict.matches == plain.check(seeds["000"], min_similarity=0.99).matches
        assert runner.pooled_jobs >= 5
    finally:
        plain.close()


def test_a_lone_single_job_is_built_in_process(pooled: Detector, seeds: dict[str, str]) -> None:
    runner = _runner(pooled)
    compared = pooled.compare(seeds["000"], seeds["001"]).match  # one job, nothing else in flight
    assert (runner.pooled_jobs, runner.local_jobs) == (0, 1)
    with _another_request_in_flight(pooled):
        assert pooled.compare(seeds["000"], seeds["001"]).match == compared
    assert runner.pooled_jobs == 1


def _worker_pids(runner: ProcessMatchRunner) -> set[int]:
    return set(runner._executor._processes)  # type: ignore[attr-defined]


def test_a_dead_worker_costs_no_answer(pooled: Detector, seeds: dict[str, str]) -> None:
    runner = _runner(pooled)
    with _another_request_in_flight(pooled):
        _dead_worker_scenario(pooled, runner, seeds)


def _dead_worker_scenario(pooled: Detector, runner: ProcessMatchRunner, seeds: dict[str, str]) -> None:
    expected = pooled.check(seeds["000"]).matches
    before = _worker_pids(runner)
    assert len(before) == 2
    for pid in before:
        os.kill(pid, signal.SIGKILL)
    for pid in before:  # wait until both are gone, so the next Check meets the broken pool
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
    assert pooled.check(seeds["000"]).matches == expected
    # The broken executor was replaced by a new one with live workers.
    assert pooled.check(seeds["000"]).matches == expected
    after = _worker_pids(runner)
    assert after and after.isdisjoint(before)
    assert runner.pooled_jobs >= 3
    assert runner.restarts == 1


def test_jobs_after_close_are_built_in_process(pooled: Detector, seeds: dict[str, str]) -> None:
    with _another_request_in_flight(pooled):
        expected = pooled.check(seeds["000"]).matches
        pooled.match_runner.close()
        assert pooled.check(seeds["000"]).matches == expected


def test_match_workers_setting_is_validated() -> None:
    assert Settings.from_env({"REWRITE_DETECTOR_MATCH_WORKERS": "3"}).match_workers == 3
    with pytest.raises(ConfigError, match="MATCH_WORKERS"):
        check_retrieval_settings(Settings(match_workers=-2))


def test_a_lone_request_builds_its_first_job_itself_and_the_rest_in_workers(
    pooled: Detector, seeds: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = _runner(pooled)
    captured: list[list[MatchJob]] = []
    original = runner.run

    def capture(jobs: Sequence[MatchJob]) -> list[SourceMatchResult]:
        captured.append(list(jobs))
        return original(jobs)

    monkeypatch.setattr(runner, "run", capture)
    pooled.check(seeds["000"])
    (jobs,) = captured
    assert len(jobs) >= 2, "seed 000 should have both indexed seeds as candidates"
    expected = InProcessMatchRunner().run(jobs)
    sent_before = runner.pooled_jobs
    assert original(jobs) == expected  # no request in flight: alone
    assert runner.pooled_jobs - sent_before == len(jobs) - 1


_SERVING_PROCESS = """
import sys, time
from rewrite_detector_server.match_pool import ProcessMatchRunner

runner = ProcessMatchRunner(2)
deadline = time.monotonic() + 60
while len(runner._executor._processes) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
print(" ".join(str(pid) for pid in runner._executor._processes), flush=True)
time.sleep(600)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it has exited all the same.
    with contextlib.suppress(FileNotFoundError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return False


def test_workers_exit_when_the_serving_process_is_killed() -> None:
    serving = subprocess.Popen([sys.executable, "-c", _SERVING_PROCESS], stdout=subprocess.PIPE, text=True)
    try:
        assert serving.stdout is not None
        workers = [int(pid) for pid in serving.stdout.readline().split()]
        assert len(workers) == 2 and all(_alive(pid) for pid in workers)
    finally:
        serving.kill()  # SIGKILL: no atexit, no executor shutdown
        serving.wait()
    deadline = time.monotonic() + 15
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers), "match workers outlived the serving process"


@pytest.mark.parametrize("role", list(Role))
def test_paragraphs_survive_the_pickle_a_job_goes_through(role: Role) -> None:
    paragraph = Paragraph(index=3, start=10, end=42, text="Wire copy, word for word.", role=role)
    copied = pickle.loads(pickle.dumps(paragraph, protocol=pickle.HIGHEST_PROTOCOL))
    assert copied == paragraph and copied.role is role and copied.is_content == paragraph.is_content
