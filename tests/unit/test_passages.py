"""Sentence-level passage alignment on hand-made documents (no model)."""

from __future__ import annotations

from rewrite_detector_server.core.passages import find_passages
from rewrite_detector_server.core.segment import segment

COPIED = (
    "The river authority opened all four sluice gates at Marlow on Sunday night after three days of rain. "
    "Engineers said the water level at the weir had risen by 1.8 metres since Thursday morning. "
    "Residents of the lower town were told to move cars away from the towpath before midnight."
)
SOURCE = (
    "Council elections are due in May.\n\n"
    + COPIED
    + "\n\nThe bakery on Mill Lane reopened after its refurbishment, with a new bread oven."
)
SUBMITTED = (
    "Local news in brief. A new cycling club meets on Tuesdays at the leisure centre, and newcomers "
    "are welcome to join the evening rides around the lakes. "
    + COPIED
    + " Football: the town team lost 2-1 away at Henley in a match played in heavy rain."
)


def _passages(submitted: str, source: str):  # type: ignore[no-untyped-def]
    return find_passages(
        submitted, segment(submitted).content_paragraphs, source, segment(source).content_paragraphs
    )


def test_copied_sentences_inside_a_longer_paragraph_are_found_with_tight_spans() -> None:
    (passage,) = _passages(SUBMITTED, SOURCE)
    start = SUBMITTED.index(COPIED)
    assert passage.submitted_span == (start, start + len(COPIED))
    src_start = SOURCE.index(COPIED)
    assert passage.source_span == (src_start, src_start + len(COPIED))


def test_shuffled_and_reworded_copy_is_still_found() -> None:
    reworded = (
        "At Marlow the river authority opened all four of the sluice gates on Sunday night, after rain "
        "for three days. The water level at the weir had risen 1.8 metres since Thursday morning, "
        "engineers said. Lower town residents were told to move their cars away from the towpath by midnight."
    )
    (passage,) = _passages("Other news first.\n\n" + reworded, SOURCE)
    assert passage.source_span[0] <= SOURCE.index(COPIED) + 10
    assert passage.source_span[1] >= SOURCE.index(COPIED) + len(COPIED) - 40


def test_unrelated_documents_and_short_coincidences_give_nothing() -> None:
    unrelated = "The orchestra announced its summer programme, with four concerts in the cathedral."
    assert _passages(unrelated, SOURCE) == []
    short = "Council elections are due in May, the mayor said."
    assert _passages(short, SOURCE) == []  # one short sentence is below the minimum passage length


def test_empty_sides_give_nothing() -> None:
    assert find_passages("", [], SOURCE, segment(SOURCE).content_paragraphs) == []
