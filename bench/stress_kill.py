"""Crash-safety stress: SIGKILL a server under bulk ingest at random moments, restart, verify everything.

Each trial, on one data directory that grows across trials:

1. start the server (``python -m rewrite_detector serve --model hashing``) and verify the state the
   previous kill left: every acknowledged write is there with its exact text, every acknowledged delete
   is gone, writes that were in flight at the kill are either applied or not, in stream order (a prefix),
   nothing else changed; every article is found by Check as a NEAR_DUPLICATE of itself;
2. stop it with SIGTERM, then offline: the saved vector index holds exactly the store's vector ids (no
   orphan, no missing vector), and a reference index rebuilt from the store alone gives the same Check
   verdicts, matches and scores as the restarted server did;
3. start it again and run the workload: one IndexArticles stream (new articles and re-indexed ones) and a
   thread of DeleteArticle calls, then SIGKILL at a random moment. Some trials kill during start-up
   instead, and some tear the index file after the kill (truncate, flip a byte, drop the sidecar); the
   next start must detect it ("rebuilt") rather than serve it.

Prints one row per trial; exits 1 if any verification failed. Loopback only.

    python bench/stress_kill.py --trials 24 --seed 7
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _server import ServerProcess, index_store_disagreement

from rewrite_detector import Client, errors
from rewrite_detector.v1 import detector_pb2 as pb

_SYLLABLES = ["ka", "lo", "mi", "ne", "ru", "sa", "te", "vi", "do", "pe", "an", "or", "el", "ut", "is"]
PROBES_PER_TRIAL = 30
IN_FLIGHT_WINDOW = 32


def make_words(rng: random.Random, n: int) -> list[str]:
    return ["".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))) for _ in range(n)]


@dataclass
class Corpus:
    """Article texts: 3-6 paragraphs of pseudo-words, unique per (id, version)."""

    rng: random.Random
    vocabulary: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.vocabulary = make_words(self.rng, 3000)

    def text(self, article_id: str, version: int) -> str:
        paragraphs = []
        for p in range(self.rng.randint(3, 6)):
            words = self.rng.choices(self.vocabulary, k=self.rng.randint(20, 50))
            paragraphs.append(f"Ref {article_id} version {version} part {p}: " + " ".join(words) + ".")
        return "\n\n".join(paragraphs)


@dataclass
class TrialResult:
    trial: int
    mode: str
    kill_after_ms: int
    sent: int = 0
    acked: int = 0
    in_doubt: int = 0
    in_doubt_applied: int = 0
    deletes_acked: int = 0
    delete_in_doubt: int = 0
    restart_status: str = ""
    orphans_removed: int = 0
    missing_added: int = 0
    articles_after: int = 0
    probes: int = 0
    ok: bool = False
    problems: list[str] = field(default_factory=list)


@dataclass
class Workload:
    """What the client sent and what the server acknowledged before the kill."""

    stream_ops: list[tuple[str, str]] = field(default_factory=list)  # (id, text) in send order
    stream_acked: int = 0
    stream_errors: list[str] = field(default_factory=list)
    deletes_acked: set[str] = field(default_factory=set)
    delete_in_doubt: set[str] = field(default_factory=set)


def run_workload(
    target: str,
    corpus: Corpus,
    committed: dict[str, str],
    versions: dict[str, int],
    trial: int,
    rng: random.Random,
    stop: threading.Event,
) -> tuple[Workload, list[threading.Thread]]:
    """Start the ingest stream and the deleter; they run until the server dies or ``stop`` is set."""
    work = Workload()
    existing = sorted(committed)
    rng.shuffle(existing)
    to_delete = existing[: min(len(existing) // 10, 40)]
    to_reindex = existing[len(to_delete) : len(to_delete) + min(len(existing) // 5, 200)]
    lock = threading.Lock()
    # Like a real bulk loader, keep a bounded number of unacknowledged articles in flight (gRPC would
    # otherwise buffer thousands client-side, and "in doubt" would mean "never left this process").
    window = threading.Semaphore(IN_FLIGHT_WINDOW)

    def requests() -> Iterator[pb.IndexArticleRequest]:
        reindex = iter(to_reindex)
        for n in range(100_000):
            while not window.acquire(timeout=0.1):
                if stop.is_set():
                    return
            if stop.is_set():
                return
            article_id = next(reindex, None) if rng.random() < 0.2 else None
            if article_id is None:
                article_id = f"t{trial:02d}-{n:05d}"
            version = versions.get(article_id, 0) + 1
            versions[article_id] = version
            text = corpus.text(article_id, version)
            with lock:
                work.stream_ops.append((article_id, text))
            yield pb.IndexArticleRequest(article=pb.Article(id=article_id, text=text, title=article_id))

    def ingest() -> None:
        client = Client(target, retries=0, timeout=600)
        try:
            for response in client.index_articles(requests()):
                if response.error_code:
                    work.stream_errors.append(f"{response.id}: {response.error_message}")
                work.stream_acked += 1
                window.release()
        except errors.RewriteDetectorError:
            pass  # the kill
        finally:
            client.close()

    def delete() -> None:
        client = Client(target, retries=0, timeout=5)
        try:
            for article_id in to_delete:
                if stop.is_set():
                    return
                work.delete_in_doubt = {article_id}
                client.delete_article(article_id)
                work.deletes_acked.add(article_id)
                work.delete_in_doubt = set()
                time.sleep(0.03)
        except errors.RewriteDetectorError:
            pass
        finally:
            client.close()

    threads = [threading.Thread(target=ingest, daemon=True), threading.Thread(target=delete, daemon=True)]
    for thread in threads:
        thread.start()
    return work, threads


def read_state(client: Client) -> dict[str, str]:
    ids = [summary.id for summary in client.iter_articles(page_size=1000)]
    return {article_id: client.get_article(article_id).article.text for article_id in ids}


def reconcile_expectations(
    before: dict[str, str], work: Workload, actual: dict[str, str], result: TrialResult
) -> None:
    """Check ``actual`` against the writes: acked ones applied, in-doubt ones a prefix, nothing else."""
    ops = work.stream_ops
    applied = []
    for article_id, text in ops:
        applied.append(actual.get(article_id) == text)
    # Later ops on the same id cannot exist (each id is re-indexed at most once per trial), so "applied"
    # is exact per op. The stream is processed in order: applied ops must be a prefix of the sent ones.
    prefix = applied.index(False) if False in applied else len(applied)
    if any(applied[prefix:]):
        result.problems.append(f"stream op {applied.index(True, prefix)} applied after unapplied op {prefix}")
    if prefix < work.stream_acked:
        lost = ops[prefix][0]
        result.problems.append(
            f"acknowledged write lost: {lost!r} (op {prefix} of {work.stream_acked} acked)"
        )
    result.in_doubt_applied = max(0, prefix - work.stream_acked)
    expected = dict(before)
    for article_id, text in ops[:prefix]:
        expected[article_id] = text
    for article_id in work.deletes_acked:
        expected.pop(article_id, None)
    for article_id in work.delete_in_doubt:
        if article_id not in actual:
            expected.pop(article_id, None)
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    changed = sorted(k for k in set(expected) & set(actual) if expected[k] != actual[k])
    for label, ids in (("missing", missing), ("unexpected", extra), ("changed", changed)):
        if ids:
            result.problems.append(f"{len(ids)} {label} articles, e.g. {ids[:3]}")


def probe(client: Client, texts: list[str]) -> list[tuple[str, list[str], list[float]]]:
    out = []
    for text in texts:
        response = client.check(text)
        out.append(
            (
                pb.Verdict.Name(response.verdict),
                [m.source_id for m in response.matches],
                [m.score for m in response.matches],
            )
        )
    return out


def probe_texts(state: dict[str, str], rng: random.Random) -> tuple[list[str], list[str]]:
    """(ids probed verbatim, probe texts): verbatim articles, plus shuffled partial copies."""
    ids = rng.sample(sorted(state), min(PROBES_PER_TRIAL, len(state)))
    texts = [state[i] for i in ids]
    for article_id in ids[:10]:
        paragraphs = state[article_id].split("\n\n")
        texts.append("\n\n".join(reversed(paragraphs[1:])) or paragraphs[0])
    return ids, texts


def offline_checks(
    data_dir: Path, texts: list[str], served: list, result: TrialResult, scratch: Path
) -> None:
    """After a graceful stop: index ids == store ids; a rebuilt-from-store index answers the same."""
    from rewrite_detector_models import HashingEmbedder
    from rewrite_detector_server.app import build_detector
    from rewrite_detector_server.config import Settings
    from rewrite_detector_server.storage import FaissVectorIndex
    from rewrite_detector_server.storage.facade import INDEX_FILE

    embedder = HashingEmbedder()
    orphans, missing = index_store_disagreement(data_dir, embedder.dimension)
    if orphans or missing:
        result.problems.append(f"saved index disagrees with store: {orphans} orphans, {missing} missing")

    copy = scratch / "rebuilt"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data_dir, copy)
    FaissVectorIndex.discard(copy / INDEX_FILE)
    detector = build_detector(Settings(data_dir=copy, model="hashing"), embedder)
    try:
        if detector.storage.last_reconcile.index_status != "rebuilt" and detector.storage.count_vectors():
            result.problems.append("reference index was not rebuilt from the store")
        for text, (verdict, ids, scores) in zip(texts, served, strict=True):
            ref = detector.check(text)
            ref_ids = [m.source_id for m in ref.matches]
            ref_scores = [m.score for m in ref.matches]
            if (
                ref.verdict.value != verdict
                or ref_ids != ids
                or not all(abs(a - b) < 1e-4 for a, b in zip(ref_scores, scores, strict=True))
            ):
                result.problems.append(
                    f"verdict differs from rebuilt index: {verdict} {ids} vs {ref.verdict.value} {ref_ids}"
                )
                break
    finally:
        detector.close()
        shutil.rmtree(copy, ignore_errors=True)


def tear_index(data_dir: Path, rng: random.Random) -> str:
    index = data_dir / "index.faiss"
    sidecar = data_dir / "index.faiss.meta.json"
    how = rng.choice(["truncate", "flip-byte", "drop-sidecar"])
    if how == "truncate":
        index.write_bytes(index.read_bytes()[: max(1, index.stat().st_size // 2)])
    elif how == "flip-byte":
        data = bytearray(index.read_bytes())
        position = rng.randrange(len(data))
        data[position] ^= 0xFF
        index.write_bytes(bytes(data))
    else:
        sidecar.unlink()
    return how


def verify(
    server: ServerProcess,
    before: dict[str, str],
    work: Workload | None,
    result: TrialResult,
    rng: random.Random,
    scratch: Path,
) -> dict[str, str]:
    """Start, verify contents over gRPC, stop gracefully, verify offline. Returns the actual state."""
    server.start()
    report = server.reconcile_report() or {}
    result.restart_status = report.get("status", "?")
    result.orphans_removed = int(report.get("orphans_removed", 0))
    result.missing_added = int(report.get("missing_added", 0))
    with Client(server.target, retries=0, timeout=60) as client:
        actual = read_state(client)
        if work is not None:
            reconcile_expectations(before, work, actual, result)
        ids, texts = probe_texts(actual, rng)
        served = probe(client, texts)
        for article_id, (verdict, matches, _) in zip(ids, served, strict=False):
            if verdict != "NEAR_DUPLICATE" or not matches or matches[0] != article_id:
                result.problems.append(
                    f"{article_id!r} not found as its own near-duplicate: {verdict} {matches[:2]}"
                )
                break
        result.probes = len(texts)
    code = server.terminate()
    if code != 0:
        result.problems.append(f"graceful stop exited with {code}")
    offline_checks(server.data_dir, texts, served, result, scratch)
    result.articles_after = len(actual)
    return actual


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--trials", type=int, default=24)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--max-kill-seconds", type=float, default=3.0, help="kill within this after ingest starts"
    )
    parser.add_argument("--snapshot-every", type=int, default=200, help="index snapshot period (vectors)")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data and logs here")
    parser.add_argument("--json", action="store_true", help="print a JSON summary instead of a table")
    args = parser.parse_args()
    if args.trials < 1:
        parser.error("--trials must be >= 1")

    rng = random.Random(args.seed)
    corpus = Corpus(random.Random(args.seed + 1))
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="stress-kill-"))
    workdir.mkdir(parents=True, exist_ok=True)
    data_dir = workdir / "data"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = ServerProcess(
        data_dir, workdir / "server.log", env={"REWRITE_DETECTOR_SNAPSHOT_EVERY": str(args.snapshot_every)}
    )
    started = time.monotonic()
    results: list[TrialResult] = []
    committed: dict[str, str] = {}
    versions: dict[str, int] = {}
    try:
        # A clean start to create the data dir; every trial then verifies the previous kill.
        committed = verify(server, {}, None, TrialResult(0, "init", 0), rng, workdir)
        for trial in range(1, args.trials + 1):
            mode = "startup-kill" if trial % 6 == 0 else "torn-index" if trial % 4 == 0 else "ingest-kill"
            kill_after = rng.uniform(0.2, args.max_kill_seconds)
            result = TrialResult(trial, mode, int(kill_after * 1000))
            server.start()
            stop = threading.Event()
            work, threads = run_workload(server.target, corpus, committed, versions, trial, rng, stop)
            time.sleep(kill_after)
            server.kill()
            stop.set()
            for thread in threads:
                thread.join(timeout=30)
            result.sent, result.acked = len(work.stream_ops), work.stream_acked
            result.in_doubt = result.sent - result.acked
            result.deletes_acked, result.delete_in_doubt = len(work.deletes_acked), len(work.delete_in_doubt)
            if work.stream_errors:
                result.problems.append(
                    f"{len(work.stream_errors)} write errors, e.g. {work.stream_errors[0]}"
                )
            if mode == "torn-index":
                result.mode = f"torn-index:{tear_index(data_dir, rng)}"
            elif mode == "startup-kill":
                # Die again while the next start-up is reconciling (or before it even got there).
                server.spawn()
                time.sleep(rng.uniform(0.05, 1.0))
                server.kill()
            committed = verify(server, committed, work, result, rng, workdir)
            if mode == "torn-index" and result.restart_status != "rebuilt":
                result.problems.append(f"torn index not detected (status {result.restart_status})")
            result.ok = not result.problems
            results.append(result)
            if not args.json:
                print_row(result)
    finally:
        if server.alive():
            server.kill()
    elapsed = time.monotonic() - started
    summary = {
        "trials": len(results),
        "failed": sum(not r.ok for r in results),
        "acknowledged_writes": sum(r.acked for r in results),
        "in_doubt_writes": sum(r.in_doubt for r in results),
        "in_doubt_applied": sum(r.in_doubt_applied for r in results),
        "deletes_acknowledged": sum(r.deletes_acked for r in results),
        "torn_index_trials": sum(r.mode.startswith("torn-index") for r in results),
        "rebuilt_on_restart": sum(r.restart_status == "rebuilt" for r in results),
        "final_articles": results[-1].articles_after if results else 0,
        "seconds": round(elapsed, 1),
        "seed": args.seed,
    }
    if args.json:
        print(json.dumps({"summary": summary, "trials": [asdict(r) for r in results]}, indent=2))
    else:
        print(json.dumps(summary))
    return 0 if summary["failed"] == 0 and results else 1


_HEADER = (
    f"{'trial':>5} {'mode':<24} {'kill@ms':>7} {'acked':>6} {'doubt':>6} {'applied':>7} {'del':>4} "
    f"{'restart':<8} {'orphan':>6} {'added':>6} {'articles':>8} {'probes':>6}  result"
)


def print_row(r: TrialResult) -> None:
    if r.trial == 1:
        print(_HEADER)
    verdict = "ok" if r.ok else "FAIL: " + "; ".join(r.problems)
    print(
        f"{r.trial:>5} {r.mode:<24} {r.kill_after_ms:>7} {r.acked:>6} {r.in_doubt:>6} "
        f"{r.in_doubt_applied:>7} {r.deletes_acked:>4} {r.restart_status:<8} {r.orphans_removed:>6} "
        f"{r.missing_added:>6} {r.articles_after:>8} {r.probes:>6}  {verdict}",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
