"""PAN 2013 text-alignment benchmark of the detection core (character-level plagdet + document level).

    python bench/eval_pan.py --subset 200 --seed 1 --mode pair --cache-dir bench/out/cache
    python bench/eval_pan.py --mode pair --cache-dir bench/out/cache --out bench/out/pan_full.json --markdown
    python bench/eval_pan.py --mode pair --subset 1000 --passage-param merge_reach=0  # an A/B variant

Pair mode aligns each corpus pair with `Detector.compare`; retrieval mode indexes the sources and
finds them with `Detector.check` (see server/rewrite_detector_server/evaluation/run.py). Both score
PAN's plagdet per obfuscation type, the document-level ROC-AUC / best F1 of the article score, the
false-positive rate on clean pairs, and four document-level baselines measured on the same pairs in
the same run. Published bar on this corpus (Sanchez-Perez et al., PAN 2014): plagdet 0.877 entire;
none 0.894, random 0.889, translation 0.884, summary 0.577.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))

from pan_baselines import BASELINES, baseline_scores
from pan_cache import CachingEmbedder, EmbeddingCache
from rapidfuzz import fuzz
from rich.console import Console
from rich.table import Table

from rewrite_detector_models.embedder import (
    DEFAULT_MODEL_NAME,
    Embedder,
    HashingEmbedder,
    load_embedder,
)
from rewrite_detector_server.core.detector import Detector
from rewrite_detector_server.core.features import words
from rewrite_detector_server.core.passages import PassageParams
from rewrite_detector_server.core.segment import segment
from rewrite_detector_server.evaluation.pan import PanCorpus, PanPair
from rewrite_detector_server.evaluation.plagdet import (
    Annotation,
    PlagdetResult,
    case_recall,
    detection_precision,
    detects,
)
from rewrite_detector_server.evaluation.run import (
    ENTIRE,
    PairOutcome,
    SuspiciousOutcome,
    clean_pair_false_positives,
    document_level,
    index_sources,
    merge_adjacent,
    pair_outcomes_from_retrieval,
    plagdet_by_label,
    run_pair,
    run_suspicious,
)
from rewrite_detector_server.evaluation.unannotated import unannotated_verbatim_cases

REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_CORPUS = REPO_ROOT.parent / "shared" / "data" / "pan13-train"
RESULTS_MD = REPO_ROOT / "bench" / "RESULTS.md"
MARKDOWN_HEADING = "## Detection quality (PAN 2013)"
LABEL_ORDER = ("none", "random", "translation", "summary", "no-plagiarism", ENTIRE)
PUBLISHED = {"none": 0.894, "random": 0.889, "translation": 0.884, "summary": 0.577, ENTIRE: 0.877}
OURS = "ours"
CHUNK_PAIRS = 32

console = Console(width=170)


# -- embedder and detector -------------------------------------------------------------------------------


def make_embedder(model: str, cache_path: Path) -> Embedder:
    if model == "hashing":
        return HashingEmbedder()  # no model: caching it would be slower than computing it
    is_default = model in ("", "default", DEFAULT_MODEL_NAME)
    key = DEFAULT_MODEL_NAME if is_default else str(Path(model).resolve())
    name = DEFAULT_MODEL_NAME if is_default else Path(model).name
    return CachingEmbedder(key, name, lambda: load_embedder(model), EmbeddingCache(cache_path))


def build(embedder: Embedder, data_dir: Path, passage_overrides: dict[str, Any] | None = None) -> Detector:
    """The detector exactly as the service wires it (shipped calibration), on a scratch data dir;
    `passage_overrides` replace single passage parameters for an A/B run."""
    from rewrite_detector_server.app import build_detector
    from rewrite_detector_server.config import Settings

    detector = build_detector(Settings(data_dir=data_dir), embedder)
    if passage_overrides:
        detector.passages = dataclasses.replace(detector.passages, **passage_overrides)
    return detector


def parse_passage_overrides(specs: Sequence[str]) -> dict[str, Any]:
    """`KEY=VALUE` pairs (VALUE as JSON: 0.2, 3, true) naming `PassageParams` fields."""
    fields = [f.name for f in dataclasses.fields(PassageParams)]
    overrides: dict[str, Any] = {}
    for spec in specs:
        key, sep, raw = spec.partition("=")
        if not sep or key not in fields:
            raise ValueError(
                f"--passage-param {spec!r}: expected KEY=VALUE with KEY one of {', '.join(fields)}"
            )
        try:
            overrides[key] = json.loads(raw)
        except json.JSONDecodeError as err:
            raise ValueError(f"--passage-param {spec!r}: VALUE must be a number or true/false") from err
    return overrides


def prewarm(embedder: Embedder, texts: Iterable[str]) -> None:
    """Embed every content paragraph of `texts` in one batch, so the detector's calls hit the cache.

    Only an optimisation: paragraphs the detector asks for that are not here are embedded on demand.
    """
    if not isinstance(embedder, CachingEmbedder):
        return
    paragraphs = [p.text for t in texts for p in segment(t).content_paragraphs]
    if paragraphs:
        embedder.embed_batch(paragraphs)


# -- worker processes (pair mode) -------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def _init_worker(corpus_root: str, model: str, cache_path: str, passage_overrides: dict[str, Any]) -> None:
    embedder = make_embedder(model, Path(cache_path))
    _worker["corpus"] = PanCorpus(corpus_root)
    _worker["detector"] = build(
        embedder, Path(tempfile.mkdtemp(prefix="pan-eval-worker-")), passage_overrides
    )


def _worker_run_pair(key: tuple[str, str]) -> PairOutcome:
    corpus: PanCorpus = _worker["corpus"]
    pair = corpus.pair(*key)
    assert pair is not None  # keys come from the same corpus
    return run_pair(_worker["detector"], corpus, pair)


# -- the two modes ----------------------------------------------------------------------------------------


def run_pair_mode(
    corpus: PanCorpus,
    pairs: Sequence[PanPair],
    embedder: Embedder,
    args: argparse.Namespace,
    cache_path: Path,
    deadline: float,
    scratch: Path,
) -> tuple[list[PairOutcome], dict[str, float]]:
    timing = {"prewarm_seconds": 0.0, "detect_wall_seconds": 0.0}
    outcomes: list[PairOutcome] = []
    detector = build(embedder, scratch / "pair-mode", args.passage_overrides) if args.workers <= 1 else None
    pool = (
        ProcessPoolExecutor(
            max_workers=args.workers,
            initializer=_init_worker,
            initargs=(str(corpus.root), args.model, str(cache_path), args.passage_overrides),
        )
        if args.workers > 1
        else None
    )
    try:
        for start in range(0, len(pairs), CHUNK_PAIRS):
            if time.monotonic() >= deadline:
                break
            chunk = pairs[start : start + CHUNK_PAIRS]
            started = time.perf_counter()
            texts = {("s", p.suspicious_id): corpus.read_suspicious(p.suspicious_id) for p in chunk}
            texts.update({("r", p.source_id): corpus.read_source(p.source_id) for p in chunk})
            prewarm(embedder, texts.values())
            timing["prewarm_seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            if pool is not None:
                outcomes.extend(pool.map(_worker_run_pair, [p.key for p in chunk]))
            else:
                assert detector is not None
                for pair in chunk:
                    if time.monotonic() >= deadline:
                        break
                    outcomes.append(run_pair(detector, corpus, pair))
            timing["detect_wall_seconds"] += time.perf_counter() - started
            _progress("pair", len(outcomes), len(pairs), embedder)
    finally:
        if pool is not None:
            pool.shutdown()
        if detector is not None:
            detector.close()
    return outcomes, timing


def run_retrieval_mode(
    corpus: PanCorpus,
    pairs: Sequence[PanPair],
    embedder: Embedder,
    args: argparse.Namespace,
    deadline: float,
    scratch: Path,
) -> tuple[list[SuspiciousOutcome], set[str], dict[str, Any]]:
    detector = build(embedder, scratch / "retrieval-mode", args.passage_overrides)
    timing: dict[str, Any] = {"prewarm_seconds": 0.0, "index_seconds": 0.0, "check_wall_seconds": 0.0}
    sources = list(dict.fromkeys(p.source_id for p in pairs))
    suspicious = list(dict.fromkeys(p.suspicious_id for p in pairs))
    indexed: set[str] = set()
    outcomes: list[SuspiciousOutcome] = []
    try:
        for start in range(0, len(sources), CHUNK_PAIRS):
            chunk = sources[start : start + CHUNK_PAIRS]
            started = time.perf_counter()
            prewarm(embedder, (corpus.read_source(s) for s in chunk))
            timing["prewarm_seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            errors = index_sources(detector, corpus, chunk)
            timing["index_seconds"] += time.perf_counter() - started
            indexed.update(s for s in chunk if s not in errors)
            timing.setdefault("index_errors", {}).update(errors)
            _progress("index", len(indexed), len(sources), embedder)
        for start in range(0, len(suspicious), CHUNK_PAIRS):
            if time.monotonic() >= deadline:
                break
            chunk = suspicious[start : start + CHUNK_PAIRS]
            started = time.perf_counter()
            prewarm(embedder, (corpus.read_suspicious(s) for s in chunk))
            timing["prewarm_seconds"] += time.perf_counter() - started
            started = time.perf_counter()
            for suspicious_id in chunk:
                if time.monotonic() >= deadline:
                    break
                outcomes.append(run_suspicious(detector, corpus, suspicious_id, max_sources=args.max_sources))
            timing["check_wall_seconds"] += time.perf_counter() - started
            _progress("check", len(outcomes), len(suspicious), embedder)
    finally:
        detector.close()
    return outcomes, indexed, timing


def non_pair_breakdown(
    corpus: PanCorpus, detections: Sequence[Annotation], corpus_keys: set[tuple[str, str]]
) -> dict[str, Any]:
    """Where detections on non-pair sources fall: inside or outside the document's annotated cases, and
    how close the two detected texts are (rapidfuzz ratio of the folded word streams; >= 0.8 is a
    near-verbatim copy, which PAN leaves unannotated when the source is not a designated pair).

    Shares are of detected characters (both sides).
    """
    cases_by_document: dict[str, list[Annotation]] = defaultdict(list)
    for pair in corpus.pairs:
        cases_by_document[pair.suspicious_id].extend(pair.annotations)
    chars: dict[str, int] = defaultdict(int)
    texts: dict[str, str] = {}
    for d in detections:
        if d.document_pair in corpus_keys:
            continue
        if d.suspicious_id not in texts:
            texts[d.suspicious_id] = corpus.read_suspicious(d.suspicious_id)
        submitted = texts[d.suspicious_id][d.suspicious_offset : d.suspicious_offset + d.suspicious_length]
        source = corpus.read_source(d.source_id)[d.source_offset : d.source_offset + d.source_length]
        ratio = fuzz.ratio(" ".join(words(submitted)), " ".join(words(source))) / 100.0
        on_case = any(
            c.suspicious_offset < d.suspicious_offset + d.suspicious_length
            and d.suspicious_offset < c.suspicious_offset + c.suspicious_length
            for c in cases_by_document[d.suspicious_id]
        )
        closeness = (
            "near_verbatim" if ratio >= 0.8 else "ratio_0.5_0.8" if ratio >= 0.5 else "ratio_below_0.5"
        )
        chars[f"{'on_a_case' if on_case else 'outside_cases'}:{closeness}"] += d.size
    total = sum(chars.values())
    return (
        {"detected_chars": total, **{k: round(v / total, 3) for k, v in sorted(chars.items())}}
        if total
        else {}
    )


def _progress(what: str, done: int, total: int, embedder: Embedder) -> None:
    extra = ""
    if isinstance(embedder, CachingEmbedder):
        extra = f" cache_hits={embedder.hits} embedded={embedder.misses} embed_s={embedder.embed_seconds:.0f}"
    print(f"[{time.strftime('%H:%M:%S')}] {what} {done}/{total}{extra}", file=sys.stderr, flush=True)


# -- scoring and analysis ---------------------------------------------------------------------------------


def _plagdet_dict(results: dict[str, PlagdetResult]) -> dict[str, dict[str, float | int]]:
    return {label: r.as_dict() for label, r in results.items()}


def loss_breakdown(pairs: Sequence[PanPair], detections: Sequence[Annotation]) -> dict[str, dict[str, Any]]:
    """Where the characters go, per label: missed cases, partial recall, excess and false detections."""
    by_pair: dict[tuple[str, str], list[Annotation]] = defaultdict(list)
    for d in detections:
        by_pair[d.document_pair].append(d)
    out: dict[str, dict[str, Any]] = {}
    for label in [*dict.fromkeys(p.label for p in pairs), ENTIRE]:
        chosen = [p for p in pairs if label == ENTIRE or p.label == label]
        cases = [c for p in chosen for c in p.annotations]
        dets = [d for p in chosen for d in by_pair.get(p.key, [])]
        recalls = [case_recall(c, by_pair.get(c.document_pair, [])) for c in cases]
        counts = [sum(1 for d in by_pair.get(c.document_pair, []) if detects(c, d)) for c in cases]
        derived_keys = {p.key for p in chosen if p.is_derived}
        on_clean = [d for d in dets if d.document_pair not in derived_keys]
        on_derived = [d for d in dets if d.document_pair in derived_keys]
        pair_cases = {p.key: p.annotations for p in chosen}
        precisions = [detection_precision(d, pair_cases[d.document_pair]) for d in on_derived]
        detected = [r for r in recalls if r > 0]
        total_chars = sum(d.size for d in dets)
        true_chars = sum(p * d.size for p, d in zip(precisions, on_derived, strict=True))
        out[label] = {
            "cases": len(cases),
            "missed_cases": sum(1 for r in recalls if r == 0),
            "mean_recall_of_detected_cases": statistics.fmean(detected) if detected else None,
            "detected_cases_split": sum(1 for n in counts if n > 1),
            "max_detections_per_case": max(counts, default=0),
            "detections": len(dets),
            "detections_on_clean_pairs": len(on_clean),
            "detections_on_derived_pairs_hitting_no_case": sum(1 for p in precisions if p == 0),
            "mean_precision_of_detections_hitting_a_case": statistics.fmean([p for p in precisions if p > 0])
            if any(p > 0 for p in precisions)
            else None,
            "detected_chars": total_chars,
            "detected_chars_outside_cases": total_chars - round(true_chars),
            "median_case_suspicious_length": statistics.median([c.suspicious_length for c in cases])
            if cases
            else None,
            "median_detection_suspicious_length": statistics.median([d.suspicious_length for d in dets])
            if dets
            else None,
        }
    return out


def pair_details(pairs: Sequence[PanPair], outcomes: Sequence[PairOutcome]) -> list[dict[str, Any]]:
    by_key = {p.key: p for p in pairs}
    rows = []
    for o in outcomes:
        pair = by_key[o.key]
        rows.append(
            {
                "suspicious": o.suspicious_id,
                "source": o.source_id,
                "label": pair.label,
                "score": o.score,
                "verdict": o.verdict,
                "found": o.found,
                "seconds": round(o.seconds, 4),
                "weak_pairs": o.weak_pairs,
                "error": o.error,
                "cases": [
                    [c.suspicious_offset, c.suspicious_length, c.source_offset, c.source_length, round(r, 4)]
                    for c in pair.annotations
                    for r in [case_recall(c, o.detections)]
                ],
                "detections": [
                    [d.suspicious_offset, d.suspicious_length, d.source_offset, d.source_length, round(p, 4)]
                    for d in o.detections
                    for p in [detection_precision(d, pair.annotations)]
                ],
            }
        )
    return rows


def summarize_mode(
    pairs: Sequence[PanPair],
    outcomes: Sequence[PairOutcome],
    detections: Sequence[Annotation],
    baseline: dict[str, dict[tuple[str, str], float]],
    merge_gap: int,
) -> dict[str, Any]:
    by_key = {o.key: o for o in outcomes}
    evaluated = [p for p in pairs if p.key in by_key]
    ours = [by_key[p.key].score for p in evaluated]
    scores = {OURS: ours} | {name: [baseline[name][p.key] for p in evaluated] for name in BASELINES}
    fp_clean = clean_pair_false_positives(evaluated, outcomes, labels=["no-plagiarism"])
    fp_all = clean_pair_false_positives(evaluated, outcomes)
    seconds = [o.seconds for o in outcomes]
    return {
        "pairs_evaluated": len(evaluated),
        "derived_pairs": sum(1 for p in evaluated if p.is_derived),
        "plagdet": _plagdet_dict(plagdet_by_label(evaluated, detections)),
        "plagdet_merged": _plagdet_dict(plagdet_by_label(evaluated, merge_adjacent(detections, merge_gap))),
        "merge_gap": merge_gap,
        "document_level": document_level(evaluated, scores),
        "false_positives": {
            "no-plagiarism": asdict(fp_clean),
            "all_case_free_pairs": asdict(fp_all),
        },
        "loss": loss_breakdown(evaluated, detections),
        "verdicts": {
            "derived": dict(Counter(by_key[p.key].verdict for p in evaluated if p.is_derived)),
            "clean": dict(Counter(by_key[p.key].verdict for p in evaluated if not p.is_derived)),
        },
        "errors": [f"{o.suspicious_id} {o.source_id}: {o.error}" for o in outcomes if o.error],
        "seconds_per_pair": {
            "mean": statistics.fmean(seconds) if seconds else None,
            "median": statistics.median(seconds) if seconds else None,
            "p95": sorted(seconds)[int(0.95 * (len(seconds) - 1))] if seconds else None,
            "max": max(seconds, default=None),
        },
    }


# -- output -----------------------------------------------------------------------------------------------


def _fmt(value: Any, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def plagdet_rows(section: dict[str, Any]) -> list[list[str]]:
    rows = []
    for label in LABEL_ORDER:
        raw = section["plagdet"].get(label)
        if raw is None:
            continue
        merged = section["plagdet_merged"][label]
        rows.append(
            [
                label,
                _fmt(raw["plagdet"]),
                _fmt(raw["recall"]),
                _fmt(raw["precision"]),
                _fmt(raw["granularity"], 2),
                f"{raw['detected_cases']}/{raw['cases']}",
                str(raw["detections"]),
                _fmt(merged["plagdet"]),
                _fmt(merged["granularity"], 2),
                _fmt(PUBLISHED.get(label)),
            ]
        )
    return rows


PLAGDET_HEADER = [
    "type",
    "plagdet",
    "recall",
    "precision",
    "granularity",
    "detected/cases",
    "detections",
    "plagdet (merged)",
    "gran. (merged)",
    "published",
]


def doclevel_rows(section: dict[str, Any]) -> list[list[str]]:
    rows = []
    for method, per_label in section["document_level"].items():
        row = [method]
        for label in (ENTIRE, "none", "random", "translation", "summary"):
            cell = per_label.get(label)
            row.append(_fmt(cell["auc"]) if cell else "–")
        entire = per_label[ENTIRE]
        row += [_fmt(entire["f1"]), _fmt(entire["threshold"])]
        rows.append(row)
    return rows


DOCLEVEL_HEADER = [
    "method",
    "AUC entire",
    "AUC none",
    "AUC random",
    "AUC transl.",
    "AUC summary",
    "F1",
    "at >=",
]


def false_positive_sentence(section: dict[str, Any]) -> str:
    clean = section["false_positives"]["no-plagiarism"]
    free = section["false_positives"]["all_case_free_pairs"]
    return (
        f"Clean pairs (01-no-plagiarism, n={clean['pairs']}): share with a detection "
        f"{clean['with_detection']:.3f}, verdict not ORIGINAL {clean['not_original']:.3f}. "
        f"All case-free pairs (n={free['pairs']}): {free['with_detection']:.3f} / {free['not_original']:.3f}."
    )


def print_section(mode: str, section: dict[str, Any]) -> None:
    title = f"{mode} mode: {section['pairs_evaluated']} pairs ({section['derived_pairs']} derived)"
    for header, rows, caption in (
        (PLAGDET_HEADER, plagdet_rows(section), f"{title} — PAN character level"),
        (DOCLEVEL_HEADER, doclevel_rows(section), f"{title} — document level (derived vs clean pairs)"),
    ):
        table = Table(title=caption)
        for column in header:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        console.print(table)
    console.print(false_positive_sentence(section))
    if "retrieval" in section:
        console.print(f"retrieval: {json.dumps(section['retrieval'])}")
    console.print(f"timing: {json.dumps(section['timing'])}")


def markdown_entry(results: dict[str, Any]) -> str:
    code = results.get("code", {})
    lines = [
        f"### {results['date']} — {', '.join(results['modes'])} mode, "
        f"{results['pairs_selected']} pairs{' (TRUNCATED by --max-seconds)' if results['truncated'] else ''}",
        "",
        f"- command: `{results['command']}`",
        f"- model: `{results['model']}`; git commit `{results['git_commit']}`"
        f"{' (working tree had uncommitted changes)' if results['git_dirty'] else ''}",
        f"- detection code + calibration sha256 `{code.get('sha256', 'not recorded')}`; uncommitted there: "
        f"{', '.join(code.get('uncommitted', [])) or 'nothing'}",
        f"- elapsed: {results['elapsed_seconds']:.0f} s",
        "",
    ]
    for mode, section in results["modes"].items():
        lines += [
            f"**{mode} mode** — {section['pairs_evaluated']} pairs ({section['derived_pairs']} derived)",
            "",
        ]
        for header, rows in (
            (PLAGDET_HEADER, plagdet_rows(section)),
            (DOCLEVEL_HEADER, doclevel_rows(section)),
        ):
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "---|" * len(header))
            lines += ["| " + " | ".join(row) + " |" for row in rows]
            lines.append("")
        lines.append(
            false_positive_sentence(section)
            + f" Merged = `merge_adjacent(max_gap={section['merge_gap']})` over the detections"
            " (evaluation/run.py); detections are the matches' reused stretches since stop 9."
        )
        if "retrieval" in section:
            lines.append(f"Retrieval: `{json.dumps(section['retrieval'])}`")
        lines += [f"Timing: `{json.dumps(section['timing'])}`", ""]
    return "\n".join(lines) + "\n"


def append_markdown(path: Path, entry: str) -> None:
    """Add `entry` at the end of this benchmark's section, leaving other benchmarks' sections alone."""
    text = path.read_text("utf-8") if path.exists() else "# Benchmark results\n"
    lines = text.splitlines(keepends=True)
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == MARKDOWN_HEADING)
    except StopIteration:
        path.write_text(text.rstrip("\n") + f"\n\n{MARKDOWN_HEADING}\n\n{entry}", "utf-8")
        return
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    before = "".join(lines[:end]).rstrip("\n") + "\n\n"
    after = "".join(lines[end:])
    path.write_text(before + entry + ("\n" + after if after else ""), "utf-8")


def code_fingerprint() -> dict[str, Any]:
    """What was measured when the tree is dirty: a hash of the detection code and calibration as loaded."""
    import hashlib

    paths = sorted(
        [
            *(REPO_ROOT / "server" / "rewrite_detector_server" / "core").glob("*.py"),
            *(REPO_ROOT / "server" / "rewrite_detector_server" / "evaluation").glob("*.py"),
            REPO_ROOT / "models" / "rewrite_detector_models" / "calibration.json",
        ]
    )
    digest = hashlib.sha256()
    for path in paths:
        digest.update(str(path.relative_to(REPO_ROOT)).encode() + b"\0" + path.read_bytes() + b"\0")
    changed = _git(
        "status", "--porcelain", "--", "server/rewrite_detector_server/core", "models/rewrite_detector_models"
    )
    return {"sha256": digest.hexdigest()[:16], "uncommitted": changed.splitlines()}


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


# -- main -------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=DEFAULT_CORPUS, help="PAN 2013 corpus directory")
    parser.add_argument("--mode", choices=("pair", "retrieval", "both"), default="pair")
    parser.add_argument("--subset", type=int, default=0, help="stratified sample of N pairs (0 = all)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="default", help="'default' (bundled), 'hashing', or a model dir")
    parser.add_argument("--workers", type=int, default=1, help="processes for pair-mode alignment")
    parser.add_argument("--cache-dir", type=Path, default=None, help="on-disk embedding cache directory")
    parser.add_argument("--out", type=Path, default=None, help="write results (and per-pair details) as JSON")
    parser.add_argument("--max-seconds", type=float, default=0, help="stop starting new work after this")
    parser.add_argument("--max-sources", type=int, default=100, help="retrieval mode: matches per check")
    parser.add_argument("--merge-gap", type=int, default=100, help="max gap (chars) for the merged figures")
    parser.add_argument("--markdown", action="store_true", help=f"append a dated entry to {RESULTS_MD}")
    parser.add_argument(
        "--markdown-from",
        type=Path,
        default=None,
        help="do not run: append the entry of an earlier run's --out JSON to RESULTS.md",
    )
    parser.add_argument(
        "--passage-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="replace one PassageParams field of the shipped calibration (repeatable), for A/B runs",
    )
    args = parser.parse_args(argv)
    if args.subset < 0 or args.workers < 1 or args.max_seconds < 0 or args.merge_gap < 0:
        parser.error("--subset, --max-seconds and --merge-gap must be >= 0 and --workers >= 1")
    try:
        args.passage_overrides = parse_passage_overrides(args.passage_param)
    except ValueError as err:
        parser.error(str(err))
    return args


def unannotated_verbatim_scores(
    corpus: PanCorpus,
    evaluated: Sequence[PanPair],
    detections: Sequence[Annotation],
    checked_ids: set[str],
    indexed: set[str],
) -> dict[str, Any]:
    """Strict scoring against the verbatim reuse PAN leaves unannotated (evaluation/unannotated.py):
    how a perfect detector of PAN's cases that also reports those copies scores under strict scoring
    (the ceiling of the strict figure for a detector that reports true copies), and this run scored
    against PAN's cases plus those copies. Neither is a PAN measure."""
    extra = unannotated_verbatim_cases(
        sorted(checked_ids),
        sorted(indexed),
        {p.key for p in corpus.pairs},
        corpus.read_suspicious,
        corpus.read_source,
    )
    pan_cases = [a for p in evaluated for a in p.annotations]

    def rounded(results: dict[str, PlagdetResult]) -> dict[str, float]:
        return {label: round(r.plagdet, 4) for label, r in results.items() if label != "no-plagiarism"}

    return {
        "stretches": len(extra),
        "stretch_chars": sum(a.size for a in extra),
        "pan_case_chars": sum(a.size for a in pan_cases),
        "perfect_detector_strict": rounded(plagdet_by_label(evaluated, [*pan_cases, *extra])),
        "plagdet_with_unannotated": rounded(
            plagdet_by_label(evaluated, detections, cases=[*pan_cases, *extra])
        ),
    }


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.markdown_from:
        append_markdown(RESULTS_MD, markdown_entry(json.loads(args.markdown_from.read_text("utf-8"))))
        console.print(f"appended {args.markdown_from} to {RESULTS_MD}")
        return 0
    started = time.monotonic()
    deadline = started + args.max_seconds if args.max_seconds else float("inf")
    corpus = PanCorpus(args.corpus)
    pairs = corpus.subset(args.subset or None, args.seed)
    modes = ["pair", "retrieval"] if args.mode == "both" else [args.mode]
    results: dict[str, Any] = {
        "benchmark": "pan13-text-alignment",
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "command": shlex.join(["python", "bench/eval_pan.py", *(sys.argv[1:] if argv is None else argv)]),
        "git_commit": _git("rev-parse", "HEAD"),
        "git_dirty": bool(_git("status", "--porcelain", "--untracked-files=no")),
        "code": code_fingerprint(),
        "model": args.model,
        "passage_overrides": args.passage_overrides,
        "corpus": str(args.corpus),
        "pairs_selected": len(pairs),
        "modes": {},
        "details": {},
    }
    with tempfile.TemporaryDirectory(prefix="pan-eval-") as tmp:
        scratch = Path(tmp)
        cache_path = (args.cache_dir or scratch / "cache") / "embeddings.sqlite3"
        embedder = make_embedder(args.model, cache_path)
        outcomes_by_mode: dict[str, tuple[list[PanPair], list[PairOutcome], list[Annotation]]] = {}
        timings: dict[str, dict[str, Any]] = {}
        extra: dict[str, dict[str, Any]] = {}
        truncated: dict[str, bool] = {}
        for mode in modes:
            mode_started = time.perf_counter()
            if mode == "pair":
                outcomes, timing = run_pair_mode(corpus, pairs, embedder, args, cache_path, deadline, scratch)
                outcomes_by_mode[mode] = (list(pairs), outcomes, [d for o in outcomes for d in o.detections])
                truncated[mode] = len(outcomes) < len(pairs)
            else:
                checked, indexed, timing = run_retrieval_mode(
                    corpus, pairs, embedder, args, deadline, scratch
                )
                checked_ids = {o.suspicious_id for o in checked}
                truncated[mode] = len(checked_ids) < len({p.suspicious_id for p in pairs})
                # Every corpus pair between a checked document and an indexed source is scored,
                # so a source found for the "wrong" pair of a document is not a false positive.
                evaluated = [
                    p for p in corpus.pairs if p.suspicious_id in checked_ids and p.source_id in indexed
                ]
                per_pair = pair_outcomes_from_retrieval(evaluated, checked)
                detections = [d for o in checked for d in o.detections]
                outcomes_by_mode[mode] = (evaluated, per_pair, detections)
                corpus_keys = {p.key for p in corpus.pairs}
                derived = [o for o, p in zip(per_pair, evaluated, strict=True) if p.is_derived]
                extra[mode] = {
                    "suspicious_checked": len(checked),
                    "sources_indexed": len(indexed),
                    "derived_pairs_source_found": (sum(o.found for o in derived) / len(derived))
                    if derived
                    else None,
                    "clean_pairs_source_reported": (
                        sum(o.found for o, p in zip(per_pair, evaluated, strict=True) if not p.is_derived)
                        / max(1, sum(1 for p in evaluated if not p.is_derived))
                    ),
                    "mean_matches_per_document": statistics.fmean(len(o.matches) for o in checked)
                    if checked
                    else None,
                    "detections_on_non_pair_sources": sum(
                        1 for d in detections if d.document_pair not in corpus_keys
                    ),
                    # The same run scored as if PAN's pairs were all the reuse there is to find: detections
                    # on sources that are no pair of the document are left out (not a PAN measure; it
                    # separates finding and aligning the annotated sources from the precision loss below).
                    "plagdet_pair_sources_only": {
                        label: round(result.plagdet, 4)
                        for label, result in plagdet_by_label(
                            evaluated, [d for o in per_pair for d in o.detections]
                        ).items()
                        if label != "no-plagiarism"  # no cases: nothing to score
                    },
                    "non_pair_detections": non_pair_breakdown(corpus, detections, corpus_keys),
                    "unannotated_verbatim": unannotated_verbatim_scores(
                        corpus, evaluated, detections, checked_ids, indexed
                    ),
                }
            timing["mode_wall_seconds"] = time.perf_counter() - mode_started
            timings[mode] = timing
        all_keys = list(
            dict.fromkeys(o.key for _, outcomes, _ in outcomes_by_mode.values() for o in outcomes)
        )
        baseline_started = time.perf_counter()
        values, baseline_seconds = baseline_scores(
            all_keys, corpus.read_suspicious, corpus.read_source, embedder
        )
        baseline = {name: dict(zip(all_keys, values[name], strict=True)) for name in BASELINES}
        baseline_wall = time.perf_counter() - baseline_started
        for mode, (evaluated, outcomes, detections) in outcomes_by_mode.items():
            section = summarize_mode(evaluated, outcomes, detections, baseline, args.merge_gap)
            timings[mode]["baseline_seconds"] = {k: round(v, 1) for k, v in baseline_seconds.items()}
            timings[mode]["baselines_wall_seconds"] = round(baseline_wall, 1)
            section["timing"] = {
                k: round(v, 1) if isinstance(v, float) else v for k, v in timings[mode].items()
            }
            if mode in extra:
                section["retrieval"] = extra[mode]
            results["modes"][mode] = section
            results["details"][mode] = pair_details(evaluated, outcomes)
        if isinstance(embedder, CachingEmbedder):
            results["embedding_cache"] = {
                "path": str(cache_path) if args.cache_dir else "(temporary)",
                "hits": embedder.hits,
                "embedded": embedder.misses,
                "embed_seconds": round(embedder.embed_seconds, 1),
            }
    results["elapsed_seconds"] = time.monotonic() - started
    results["truncated"] = any(truncated.values())
    for mode, section in results["modes"].items():
        print_section(mode, section)
    console.print(
        f"elapsed {results['elapsed_seconds']:.0f} s; embedding cache {results.get('embedding_cache')}"
    )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1), "utf-8")
        console.print(f"wrote {args.out}")
    if args.markdown:
        append_markdown(RESULTS_MD, markdown_entry(results))
        console.print(f"appended to {RESULTS_MD}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
