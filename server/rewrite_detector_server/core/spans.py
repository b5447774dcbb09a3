"""Character spans ``[start, end)`` of a text: their length and how much of a text several cover."""

from __future__ import annotations

from collections.abc import Iterable

Span = tuple[int, int]


def span_length(span: Span) -> int:
    return span[1] - span[0]


def union_length(spans: Iterable[Span]) -> int:
    """Characters inside at least one of the spans (overlaps counted once)."""
    total, reach = 0, -1
    for start, end in sorted(spans):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total
