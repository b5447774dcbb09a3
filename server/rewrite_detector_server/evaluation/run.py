"""Run the detection core over PAN pairs and score the run. Domain code: a `Detector` in, numbers out.

Two modes:
- pair mode: for each pair, `detector.compare(suspicious_text, source_text)`; the detections are the
  returned match's aligned pairs that are not WEAK (the pairs the core counts), each as
  (submitted_span, source_span); the pair's document-level score is the match's score.
- retrieval mode: every source document of the selected pairs is indexed once into the detector's
  storage, then each suspicious document is checked with `detector.check(text)` with no source
  restriction, so the source must be found, not given. Detections come from every returned match,
  attributed to that match's source; a pair's score is the score of the match for its source (0 when
  the source was not returned: `check` reports only matches whose verdict is not ORIGINAL).

PAN documents are plain text and the annotations index them as such, so every call says TEXT: left to
sniffing, a source that starts with a stray HTML tag (three of pan13-train's do) would be extracted as a
web page and its detections would index the extracted text, not the document.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rewrite_detector_server.core.detector import Detector, SourceMatchResult
from rewrite_detector_server.core.extract import TextFormat
from rewrite_detector_server.core.stretches import reused_stretches
from rewrite_detector_server.core.types import ArticleInput, PairKind, Verdict
from rewrite_detector_server.errors import DetectorError
from rewrite_detector_server.evaluation.doclevel import best_f1, roc_auc
from rewrite_detector_server.evaluation.pan import PanCorpus, PanPair
from rewrite_detector_server.evaluation.plagdet import Annotation, PlagdetResult, evaluate

__all__ = [
    "ENTIRE",
    "PairOutcome",
    "SuspiciousOutcome",
    "clean_pair_false_positives",
    "document_level",
    "index_sources",
    "match_detections",
    "merge_adjacent",
    "pair_outcomes_from_retrieval",
    "plagdet_by_label",
    "run_pair",
    "run_suspicious",
]

ENTIRE = "entire"


@dataclass(frozen=True, slots=True)
class PairOutcome:
    """What the detector said about one (suspicious, source) pair."""

    suspicious_id: str
    source_id: str
    detections: tuple[Annotation, ...]
    score: float
    verdict: str  # a Verdict value
    seconds: float
    # Retrieval mode: whether `check` returned this pair's source at all. Always True in pair mode.
    found: bool = True
    weak_pairs: int = 0  # aligned pairs left out of the detections because their kind is WEAK
    error: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return (self.suspicious_id, self.source_id)


@dataclass(frozen=True, slots=True)
class MatchSummary:
    source_id: str
    score: float
    verdict: str
    detections: tuple[Annotation, ...]
    weak_pairs: int


@dataclass(frozen=True, slots=True)
class SuspiciousOutcome:
    """Retrieval mode: what `check` returned for one suspicious document (every reported match)."""

    suspicious_id: str
    matches: tuple[MatchSummary, ...]
    verdict: str
    seconds: float
    error: str = ""

    @property
    def detections(self) -> tuple[Annotation, ...]:
        return tuple(d for m in self.matches for d in m.detections)


def match_detections(match: SourceMatchResult, suspicious_id: str, source_id: str) -> list[Annotation]:
    """The match's reused stretches (its non-WEAK aligned pairs, adjacent ones merged) as PAN
    annotations (spans index the texts as given)."""
    return [
        Annotation.from_spans(suspicious_id, s.submitted_span, source_id, s.source_span)
        for s in match.stretches
    ]


def _weak_count(match: SourceMatchResult) -> int:
    return sum(1 for p in match.pairs if p.kind is PairKind.WEAK)


def run_pair(detector: Detector, corpus: PanCorpus, pair: PanPair) -> PairOutcome:
    """Pair mode for one pair. A text the detector refuses is recorded as an error with no detection."""
    started = time.perf_counter()
    suspicious = corpus.read_suspicious(pair.suspicious_id)
    source = corpus.read_source(pair.source_id)
    try:
        result = detector.compare(
            suspicious, source, submitted_format=TextFormat.TEXT, source_format=TextFormat.TEXT
        )
    except DetectorError as err:
        return PairOutcome(
            pair.suspicious_id,
            pair.source_id,
            (),
            0.0,
            Verdict.ORIGINAL.value,
            time.perf_counter() - started,
            error=f"{type(err).__name__}: {err}",
        )
    match = result.match
    return PairOutcome(
        suspicious_id=pair.suspicious_id,
        source_id=pair.source_id,
        detections=tuple(match_detections(match, pair.suspicious_id, pair.source_id)),
        score=match.score,
        verdict=match.verdict.value,
        seconds=time.perf_counter() - started,
        weak_pairs=_weak_count(match),
    )


def index_sources(detector: Detector, corpus: PanCorpus, source_ids: Iterable[str]) -> dict[str, str]:
    """Index each source document under its file name; returns {source id: error} for refused ones."""
    errors: dict[str, str] = {}
    for source_id in dict.fromkeys(source_ids):
        try:
            detector.index(
                ArticleInput(id=source_id, text=corpus.read_source(source_id)), text_format=TextFormat.TEXT
            )
        except DetectorError as err:
            errors[source_id] = f"{type(err).__name__}: {err}"
    return errors


def run_suspicious(
    detector: Detector, corpus: PanCorpus, suspicious_id: str, *, max_sources: int = 0
) -> SuspiciousOutcome:
    """Retrieval mode for one suspicious document: `check` against everything indexed."""
    started = time.perf_counter()
    text = corpus.read_suspicious(suspicious_id)
    try:
        result = detector.check(text, max_sources=max_sources, text_format=TextFormat.TEXT)
    except DetectorError as err:
        return SuspiciousOutcome(
            suspicious_id,
            (),
            Verdict.ORIGINAL.value,
            time.perf_counter() - started,
            f"{type(err).__name__}: {err}",
        )
    matches = tuple(
        MatchSummary(
            source_id=m.source_id,
            score=m.score,
            verdict=m.verdict.value,
            detections=tuple(match_detections(m, suspicious_id, m.source_id)),
            weak_pairs=_weak_count(m),
        )
        for m in result.matches
    )
    return SuspiciousOutcome(suspicious_id, matches, result.verdict.value, time.perf_counter() - started)


def pair_outcomes_from_retrieval(
    pairs: Sequence[PanPair], outcomes: Iterable[SuspiciousOutcome]
) -> list[PairOutcome]:
    """The per-pair view of a retrieval run (for document-level scores and false-positive rates).

    Each document's check time is shared equally among its pairs. Detections attributed to sources
    that are not a pair of that document are not in this view; score them with `plagdet_by_label`
    over `SuspiciousOutcome.detections`.
    """
    by_suspicious = {o.suspicious_id: o for o in outcomes}
    pair_count: dict[str, int] = defaultdict(int)
    for pair in pairs:
        pair_count[pair.suspicious_id] += 1
    out = []
    for pair in pairs:
        outcome = by_suspicious.get(pair.suspicious_id)
        if outcome is None:
            continue
        match = next((m for m in outcome.matches if m.source_id == pair.source_id), None)
        out.append(
            PairOutcome(
                suspicious_id=pair.suspicious_id,
                source_id=pair.source_id,
                detections=match.detections if match else (),
                score=match.score if match else 0.0,
                verdict=match.verdict if match else Verdict.ORIGINAL.value,
                seconds=outcome.seconds / pair_count[pair.suspicious_id],
                found=match is not None,
                weak_pairs=match.weak_pairs if match else 0,
                error=outcome.error,
            )
        )
    return out


# -- scoring ---------------------------------------------------------------------------------------------


def plagdet_by_label(
    pairs: Sequence[PanPair], detections: Iterable[Annotation], cases: Iterable[Annotation] | None = None
) -> dict[str, PlagdetResult]:
    """PAN measures per sub-corpus label and over everything (`ENTIRE`), like PAN's per-sub-corpus runs.

    `cases` defaults to the cases of `pairs`. A detection belongs to the label of its (suspicious,
    source) pair, or, for a source that is not a pair of that document (retrieval mode), to the label
    of the suspicious document's pairs when they all share one (true of PAN 2013); otherwise it only
    counts in `ENTIRE`.
    """
    all_cases = list(cases) if cases is not None else [a for p in pairs for a in p.annotations]
    all_detections = list(detections)
    pair_label = {p.key: p.label for p in pairs}
    suspicious_labels: dict[str, set[str]] = defaultdict(set)
    for p in pairs:
        suspicious_labels[p.suspicious_id].add(p.label)

    def label_of(annotation: Annotation) -> str | None:
        label = pair_label.get(annotation.document_pair)
        if label is not None:
            return label
        labels = suspicious_labels.get(annotation.suspicious_id, set())
        return next(iter(labels)) if len(labels) == 1 else None

    labels = list(dict.fromkeys(p.label for p in pairs))
    cases_by: dict[str | None, list[Annotation]] = defaultdict(list)
    detections_by: dict[str | None, list[Annotation]] = defaultdict(list)
    for case in all_cases:
        cases_by[label_of(case)].append(case)
    for detection in all_detections:
        detections_by[label_of(detection)].append(detection)
    results = {label: evaluate(cases_by[label], detections_by[label]) for label in labels}
    results[ENTIRE] = evaluate(all_cases, all_detections)
    return results


def document_level(
    pairs: Sequence[PanPair], scores: Mapping[str, Sequence[float]]
) -> dict[str, dict[str, dict[str, float | None]]]:
    """ROC-AUC and best-threshold F1 of each method's per-pair score, derived (>=1 case) vs clean.

    Per label: that label's derived pairs against every clean pair of the run (clean pairs carry no
    obfuscation type); `ENTIRE`: all pairs. `scores[method][i]` is the score of `pairs[i]`.
    """
    labels = list(dict.fromkeys(p.label for p in pairs if p.is_derived))
    out: dict[str, dict[str, dict[str, float | None]]] = {}
    for method, values in scores.items():
        if len(values) != len(pairs):
            raise ValueError(f"method {method!r} has {len(values)} scores for {len(pairs)} pairs")
        per_label: dict[str, dict[str, float | None]] = {}
        for label in [ENTIRE, *labels]:
            chosen = [
                i for i, p in enumerate(pairs) if label == ENTIRE or not p.is_derived or p.label == label
            ]
            y = [pairs[i].is_derived for i in chosen]
            s = [float(values[i]) for i in chosen]
            best = best_f1(y, s)
            per_label[label] = {
                "auc": roc_auc(y, s),
                "f1": best.f1 if best else None,
                "threshold": best.threshold if best else None,
                "positives": float(sum(y)),
                "negatives": float(len(y) - sum(y)),
            }
        out[method] = per_label
    return out


@dataclass(frozen=True, slots=True)
class FalsePositiveRates:
    pairs: int
    with_detection: float  # share of clean pairs with at least one (non-WEAK) detection
    not_original: float  # share of clean pairs whose verdict is not ORIGINAL
    examples: tuple[tuple[str, str], ...] = field(default=())  # a few offending pairs, for analysis


def clean_pair_false_positives(
    pairs: Sequence[PanPair], outcomes: Sequence[PairOutcome], *, labels: Iterable[str] | None = None
) -> FalsePositiveRates:
    """False-positive rates over case-free pairs (optionally only those of the given labels)."""
    wanted = set(labels) if labels is not None else None
    clean = {p.key for p in pairs if not p.is_derived and (wanted is None or p.label in wanted)}
    chosen = [o for o in outcomes if o.key in clean]
    if not chosen:
        return FalsePositiveRates(0, 0.0, 0.0)
    flagged = [o for o in chosen if o.detections]
    not_original = [o for o in chosen if o.verdict != Verdict.ORIGINAL.value]
    return FalsePositiveRates(
        pairs=len(chosen),
        with_detection=len(flagged) / len(chosen),
        not_original=len(not_original) / len(chosen),
        examples=tuple(o.key for o in (flagged or not_original)[:5]),
    )


# -- optional post-processing ------------------------------------------------------------------------------


def merge_adjacent(detections: Iterable[Annotation], max_gap: int) -> list[Annotation]:
    """Merge runs of detections of one document pair (the "merged" columns of the reports).

    Consecutive detections (in suspicious order) of the same document pair are merged into their hull
    when the gap between them is at most `max_gap` characters on the suspicious side AND on the
    source side (overlaps count as gap 0) — the rule of `core/stretches.py`. Since the detections are
    the matches' reused stretches, which already apply it with the service's gap (100), the merged
    figures equal the raw ones at that gap; the column stays as a check and to try other gaps.
    """
    by_pair: dict[tuple[str, str], list[Annotation]] = defaultdict(list)
    for detection in detections:
        by_pair[detection.document_pair].append(detection)
    merged: list[Annotation] = []
    for (suspicious_id, source_id), group in by_pair.items():
        spans = [((d.suspicious_offset, d.suspicious_end), (d.source_offset, d.source_end)) for d in group]
        merged.extend(
            Annotation.from_spans(suspicious_id, s.submitted_span, source_id, s.source_span)
            for s in reused_stretches(spans, max_gap)
        )
    return merged
