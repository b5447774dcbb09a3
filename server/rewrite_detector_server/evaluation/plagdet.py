"""PAN's character-level plagiarism-detection measures: macro precision/recall, granularity, plagdet.

Definitions (Potthast, Stein, Barrón-Cedeño, Rosso: "An Evaluation Framework for Plagiarism Detection",
COLING 2010; used unchanged by the PAN 2013 text-alignment overview). A case s and a detection r are
both a pair of character ranges (one in the suspicious document, one in the source document):

- r *detects* s iff both name the same suspicious and source documents and the ranges overlap on BOTH
  sides (the official script's ``is_overlapping`` for external annotations);
- ``s ⊓ r`` = the characters of s, on both sides, covered by detections that detect s;
- recall    = mean over cases s      of |∪_{r detects s} (s ∩ r)| / |s|   (|s| = both sides' lengths);
- precision = mean over detections r of |∪_{s detected by r} (s ∩ r)| / |r| (the same with roles swapped);
- granularity = mean, over detected cases, of the number of detections that detect the case;
- plagdet = F1(precision, recall) / log2(1 + granularity).

Conventions where a set is empty follow the official PAN 2013 script
(pan-webis-de/pan-code, clef13/text-alignment/pan13-text-alignment-perfmeasures.py, v1.3,
functions ``macro_avg_recall``, ``granularity``, ``plagdet_score``):
- recall and precision are 1 when there are neither cases nor detections, and 0 when exactly one of
  the two sets is empty (so a run with no detection on a corpus with cases scores precision 0, not 1);
- granularity is 1 when there is no detection or no case is detected;
- plagdet is 0 when recall and precision are both 0.
The script reads annotations from XML into sets, so duplicate annotations count once: so do they here.

Hand-written rather than imported because the official script is a Python 2 command-line program
(numpy bit arrays per annotation, print statements); this is the same arithmetic on integer ranges,
checked against the script's own unit-test values in tests/unit/test_plagdet.py.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rewrite_detector_server.core.spans import union_length

__all__ = [
    "Annotation",
    "PlagdetResult",
    "case_recall",
    "detection_precision",
    "detects",
    "evaluate",
    "granularity",
    "macro_precision",
    "macro_recall",
    "plagdet_score",
]


@dataclass(frozen=True, slots=True, order=True)
class Annotation:
    """A plagiarism case or a detection: a range of a suspicious document and one of a source document.

    Offsets and lengths count Python str characters of the documents as read from disk (PAN's
    convention, see evaluation/pan.py); ranges are half-open ``[offset, offset + length)``.
    """

    suspicious_id: str
    suspicious_offset: int
    suspicious_length: int
    source_id: str
    source_offset: int
    source_length: int

    def __post_init__(self) -> None:
        if self.suspicious_offset < 0 or self.source_offset < 0:
            raise ValueError(f"negative offset in {self}")
        # An empty range can neither detect nor be detected, and divides by zero in both averages
        # (the official script raises ZeroDivisionError on one): refuse it where it is made.
        if self.suspicious_length <= 0 or self.source_length <= 0:
            raise ValueError(f"empty range in {self}: both lengths must be positive")

    @classmethod
    def from_spans(
        cls,
        suspicious_id: str,
        suspicious_span: tuple[int, int],
        source_id: str,
        source_span: tuple[int, int],
    ) -> Annotation:
        """From half-open (start, end) spans, as the detector reports them."""
        return cls(
            suspicious_id,
            suspicious_span[0],
            suspicious_span[1] - suspicious_span[0],
            source_id,
            source_span[0],
            source_span[1] - source_span[0],
        )

    @property
    def suspicious_end(self) -> int:
        return self.suspicious_offset + self.suspicious_length

    @property
    def source_end(self) -> int:
        return self.source_offset + self.source_length

    @property
    def document_pair(self) -> tuple[str, str]:
        return (self.suspicious_id, self.source_id)

    @property
    def size(self) -> int:
        """|s| in the definitions: characters on both sides."""
        return self.suspicious_length + self.source_length


@dataclass(frozen=True, slots=True)
class PlagdetResult:
    plagdet: float
    recall: float
    precision: float
    granularity: float
    case_count: int
    detection_count: int
    detected_case_count: int

    def as_dict(self) -> dict[str, float | int]:
        return {
            "plagdet": self.plagdet,
            "recall": self.recall,
            "precision": self.precision,
            "granularity": self.granularity,
            "cases": self.case_count,
            "detections": self.detection_count,
            "detected_cases": self.detected_case_count,
        }


def detects(case: Annotation, detection: Annotation) -> bool:
    """Whether the ranges share both documents and overlap on both sides (symmetric)."""
    return (
        case.suspicious_id == detection.suspicious_id
        and case.source_id == detection.source_id
        and detection.suspicious_offset < case.suspicious_end
        and case.suspicious_offset < detection.suspicious_end
        and detection.source_offset < case.source_end
        and case.source_offset < detection.source_end
    )


def _covered_share(reference: Annotation, others: Iterable[Annotation]) -> float:
    """|∪_{o detects reference} (reference ∩ o)| / |reference|, both sides counted."""
    hits = [o for o in others if detects(reference, o)]
    if not hits:
        return 0.0
    suspicious = union_length(
        (
            max(o.suspicious_offset, reference.suspicious_offset),
            min(o.suspicious_end, reference.suspicious_end),
        )
        for o in hits
    )
    source = union_length(
        (max(o.source_offset, reference.source_offset), min(o.source_end, reference.source_end)) for o in hits
    )
    return (suspicious + source) / reference.size


def case_recall(case: Annotation, detections: Iterable[Annotation]) -> float:
    """Share of the case's characters (both sides) covered by detections that detect it."""
    return _covered_share(case, detections)


def detection_precision(detection: Annotation, cases: Iterable[Annotation]) -> float:
    """Share of the detection's characters (both sides) that lie in cases it detects."""
    return _covered_share(detection, cases)


def _unique(annotations: Iterable[Annotation]) -> list[Annotation]:
    return list(dict.fromkeys(annotations))


def _by_pair(annotations: Iterable[Annotation]) -> dict[tuple[str, str], list[Annotation]]:
    index: dict[tuple[str, str], list[Annotation]] = defaultdict(list)
    for annotation in annotations:
        index[annotation.document_pair].append(annotation)
    return index


def _macro_share(references: Sequence[Annotation], others: Sequence[Annotation]) -> float:
    if not references and not others:
        return 1.0
    if not references or not others:
        return 0.0
    index = _by_pair(others)
    return sum(_covered_share(r, index.get(r.document_pair, ())) for r in references) / len(references)


def macro_recall(cases: Iterable[Annotation], detections: Iterable[Annotation]) -> float:
    return _macro_share(_unique(cases), _unique(detections))


def macro_precision(cases: Iterable[Annotation], detections: Iterable[Annotation]) -> float:
    return _macro_share(_unique(detections), _unique(cases))


def _detections_per_detected_case(cases: Sequence[Annotation], detections: Sequence[Annotation]) -> list[int]:
    index = _by_pair(detections)
    counts = (sum(1 for d in index.get(c.document_pair, ()) if detects(c, d)) for c in cases)
    return [n for n in counts if n > 0]


def granularity(cases: Iterable[Annotation], detections: Iterable[Annotation]) -> float:
    per_case = _detections_per_detected_case(_unique(cases), _unique(detections))
    return sum(per_case) / len(per_case) if per_case else 1.0


def plagdet_score(recall: float, precision: float, granularity: float) -> float:
    if (recall == 0 and precision == 0) or recall < 0 or precision < 0 or granularity < 1:
        return 0.0
    return (2 * recall * precision / (recall + precision)) / math.log2(1 + granularity)


def evaluate(cases: Iterable[Annotation], detections: Iterable[Annotation]) -> PlagdetResult:
    unique_cases, unique_detections = _unique(cases), _unique(detections)
    recall = _macro_share(unique_cases, unique_detections)
    precision = _macro_share(unique_detections, unique_cases)
    per_case = _detections_per_detected_case(unique_cases, unique_detections)
    gran = sum(per_case) / len(per_case) if per_case else 1.0
    return PlagdetResult(
        plagdet=plagdet_score(recall, precision, gran),
        recall=recall,
        precision=precision,
        granularity=gran,
        case_count=len(unique_cases),
        detection_count=len(unique_detections),
        detected_case_count=len(per_case),
    )
