"""Reused stretches: adjacent aligned pairs merged into one reuse (core/stretches.py)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rewrite_detector_server.core.stretches import ReusedStretch, reused_stretches


def test_pairs_within_the_gap_on_both_sides_merge_into_their_hull() -> None:
    pairs = [((0, 100), (500, 600)), ((150, 300), (640, 800)), ((320, 400), (790, 900))]
    assert reused_stretches(pairs, 100) == (ReusedStretch((0, 400), (500, 900), 3),)


def test_a_gap_too_wide_on_either_side_splits() -> None:
    submitted_far = [((0, 100), (0, 100)), ((201, 300), (100, 200))]
    source_far = [((0, 100), (0, 100)), ((100, 200), (201, 300))]
    for pairs in (submitted_far, source_far):
        assert [s.pair_count for s in reused_stretches(pairs, 100)] == [1, 1]
    # Exactly max_gap apart still joins.
    assert len(reused_stretches([((0, 100), (0, 100)), ((200, 300), (200, 300))], 100)) == 1


def test_a_source_skipping_ahead_joins_only_behind_a_contiguous_submitted_side() -> None:
    # Back to back in the submitted text, 400 characters apart in the source: one reuse with a hole.
    skipped = [((0, 300), (1000, 1300)), ((301, 600), (1700, 2000))]
    assert reused_stretches(skipped, 100) == tuple(ReusedStretch(s, r, 1) for s, r in skipped)
    assert reused_stretches(skipped, 100, 400) == (ReusedStretch((0, 600), (1000, 2000), 2),)
    assert len(reused_stretches(skipped, 100, 399)) == 2
    # Skipping backwards, or a submitted gap past max_gap, still splits.
    backwards = [((0, 300), (1700, 2000)), ((301, 600), (1000, 1300))]
    apart = [((0, 300), (1000, 1300)), ((450, 600), (1700, 2000))]
    for pairs in (backwards, apart):
        assert len(reused_stretches(pairs, 100, 1000)) == 2
    with pytest.raises(ValueError, match="non-negative"):
        reused_stretches(skipped, 100, -1)


def test_source_order_may_step_back_within_the_gap_and_overlaps_count_as_touching() -> None:
    swapped = [((0, 100), (150, 250)), ((120, 200), (0, 140))]
    assert reused_stretches(swapped, 20) == (ReusedStretch((0, 200), (0, 250), 2),)
    overlapping = [((0, 100), (0, 100)), ((50, 150), (40, 120))]
    assert reused_stretches(overlapping, 0) == (ReusedStretch((0, 150), (0, 120), 2),)


def test_unsorted_input_empty_spans_and_nothing() -> None:
    pairs = [((500, 600), (500, 600)), ((0, 100), (0, 100)), ((700, 700), (0, 10))]
    assert [s.submitted_span for s in reused_stretches(pairs, 50)] == [(0, 100), (500, 600)]
    assert reused_stretches([], 100) == ()
    with pytest.raises(ValueError, match="non-negative"):
        reused_stretches(pairs, -1)


_span = st.tuples(st.integers(0, 5_000), st.integers(1, 400)).map(lambda t: (t[0], t[0] + t[1]))


@given(st.lists(st.tuples(_span, _span), max_size=30), st.integers(0, 300))
def test_every_pair_lies_in_one_stretch_and_counts_add_up(pairs: list, gap: int) -> None:
    stretches = reused_stretches(pairs, gap)
    assert sum(s.pair_count for s in stretches) == len(pairs)
    for submitted, source in pairs:
        holding = [
            s
            for s in stretches
            if s.submitted_span[0] <= submitted[0]
            and submitted[1] <= s.submitted_span[1]
            and s.source_span[0] <= source[0]
            and source[1] <= s.source_span[1]
        ]
        assert holding
    starts = [s.submitted_span[0] for s in stretches]
    assert starts == sorted(starts)
