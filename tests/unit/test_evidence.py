"""Which aligned pairs count as reuse: isolated headings and labels do not, the same ones inside a
rewritten run do."""

from __future__ import annotations

import numpy as np

from rewrite_detector_server.core.align import GroupPair
from rewrite_detector_server.core.evidence import EvidenceSide, build_evidence
from rewrite_detector_server.core.passages import Passage
from rewrite_detector_server.core.refine import RefineParams
from rewrite_detector_server.core.segment import segment
from rewrite_detector_server.core.types import PairKind

SUBMITTED = (
    "Chain Link Fence\n\n"
    "Our crew set the corner posts in concrete on Monday and let them cure for three full days.\n\n"
    "The mesh was then unrolled along the line, stretched with a come-along and tied every foot.\n"
)
SOURCE = (
    "Chain Link Fence\n\n"
    "Corner posts went into concrete on Monday, and the crew let them cure for three days.\n\n"
    "Next the mesh was unrolled along the line, pulled tight with a come-along and tied every foot.\n"
)


def _side(text: str) -> EvidenceSide:
    content = segment(text).content_paragraphs
    vectors = np.eye(len(content), dtype=np.float32)
    return EvidenceSide.of(text, content, vectors)


def _pair(position: int, kind: PairKind = PairKind.NEAR_VERBATIM) -> GroupPair:
    return GroupPair((position,), (position,), 0.92, 0.8, 0.0, 0.9, kind, True)


def test_an_isolated_heading_shared_by_two_articles_is_not_counted() -> None:
    evidence = build_evidence([_pair(0)], [], _side(SUBMITTED), _side(SOURCE), RefineParams())

    assert [e.kind for e in evidence] == [PairKind.WEAK]
    assert not evidence[0].counted


def test_a_heading_inside_a_run_of_aligned_paragraphs_counts() -> None:
    groups = [_pair(0), _pair(1, PairKind.PARAPHRASE), _pair(2, PairKind.PARAPHRASE)]

    evidence = build_evidence(groups, [], _side(SUBMITTED), _side(SOURCE), RefineParams())

    assert [e.kind for e in evidence] == [PairKind.NEAR_VERBATIM, PairKind.PARAPHRASE, PairKind.PARAPHRASE]


def test_a_long_isolated_pair_keeps_its_kind() -> None:
    evidence = build_evidence([_pair(2)], [], _side(SUBMITTED), _side(SOURCE), RefineParams())

    assert [e.kind for e in evidence] == [PairKind.NEAR_VERBATIM]


def test_the_length_floor_can_be_turned_off() -> None:
    evidence = build_evidence(
        [_pair(0)], [], _side(SUBMITTED), _side(SOURCE), RefineParams(), min_chars_alone=0
    )

    assert [e.kind for e in evidence] == [PairKind.NEAR_VERBATIM]


def test_a_short_pair_that_is_most_of_both_articles_counts() -> None:
    heading = "Chain Link Fence\n"

    evidence = build_evidence([_pair(0)], [], _side(heading), _side(heading), RefineParams())

    assert [e.kind for e in evidence] == [PairKind.NEAR_VERBATIM]


def test_a_short_passage_is_context_where_nothing_else_reports_its_text() -> None:
    submitted, source = _side(SUBMITTED), _side(SOURCE)
    corner = (SUBMITTED.index("Our crew"), SUBMITTED.index("three full days.") + 16)
    corner_source = (SOURCE.index("Corner posts"), SOURCE.index("three days.") + 11)
    short = Passage((1, 1), (1, 1), corner, corner_source, (1, 1), (1, 1), 0.6, 1)

    alone = build_evidence([], [], submitted, source, RefineParams(), short_passages=[short])
    beside_a_pair = build_evidence(
        [_pair(1, PairKind.PARAPHRASE), _pair(2, PairKind.PARAPHRASE)],
        [],
        submitted,
        source,
        RefineParams(),
        short_passages=[short],
    )

    assert [(e.kind, e.submitted_span) for e in alone] == [(PairKind.WEAK, corner)]
    assert not any(e.from_passage for e in beside_a_pair)
