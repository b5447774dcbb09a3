"""Sentence-level passage alignment on hand-made documents (no model)."""

from __future__ import annotations

import dataclasses

import pytest

from rewrite_detector_server.core.passages import (
    Passage,
    PassageParams,
    _condenses,
    _to_copied_ngrams,
    _tokens,
    _weights,
    _without_strays,
    find_passages,
    find_passages_and_short,
    merged_seeds,
    sentences,
)
from rewrite_detector_server.core.segment import segment
from rewrite_detector_server.core.spans import span_length

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


def _passages(submitted: str, source: str, params: PassageParams | None = None):  # type: ignore[no-untyped-def]
    return find_passages(
        submitted, segment(submitted).content_paragraphs, source, segment(source).content_paragraphs, params
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


# -- summaries: a short passage condensing a long source stretch ------------------------------------------

_FLOOD_REPORT = [
    "Heavy rain fell across the valley for three days, and the river rose above its banks on Sunday.",
    "The river authority opened all four sluice gates at Marlow to relieve the pressure on the weir.",
    "Engineers measured the water level at the weir every hour through the night.",
    "By Monday morning the level had risen by almost two metres since Thursday.",
    "Police closed the towpath and asked residents of the lower town to move their cars.",
    "Volunteers filled sandbags at the fire station and carried them to houses near the bridge.",
    "The primary school on Mill Lane stayed closed because its playground was under water.",
    "Buses were diverted around the flooded high street for most of the week.",
    "The council opened the leisure centre as a shelter for families who left their homes.",
    "About forty people spent Monday night there, with food donated by local shops.",
    "Insurance assessors arrived on Wednesday to inspect the damaged shops and houses.",
    "The council said repairs to the towpath and the bridge would take several months.",
]
_OTHER_NEWS = [
    "Elsewhere, the cricket club announced the dates of its summer fixtures.",
    "A new bakery opened in the market square with a queue outside on its first morning.",
    "The library has extended its opening hours on Saturdays.",
    "Tickets for the autumn theatre festival go on sale next month.",
    "The golf course is recruiting volunteers for its junior coaching scheme.",
    "A local author signed copies of her latest novel at the bookshop.",
]
# The flood report in four three-sentence paragraphs, each followed by unrelated news.
_FLOOD_SOURCE = "\n\n".join(
    " ".join(_FLOOD_REPORT[i : i + 3]) + "\n\n" + " ".join(_OTHER_NEWS + _OTHER_NEWS[:3])
    for i in range(0, 12, 3)
)
_SUMMARY = (
    "After three days of heavy rain the river rose and the authority opened the sluice gates at the weir, "
    "where the water level had risen almost two metres. Police closed the towpath, residents moved cars "
    "and volunteers carried sandbags to houses near the bridge. The flooded school stayed closed and buses "
    "were diverted around the high street. Families sheltered at the leisure centre with food from local "
    "shops, and the council said repairs to the towpath and bridge would take months."
)


def test_summary_of_a_whole_article_is_matched_to_the_whole_article() -> None:
    # Each summary sentence condenses a group of report sentences; other news separates the groups by
    # more sentences than a narrow passage may skip.
    source = _FLOOD_SOURCE
    submitted = (
        "Local news in brief.\n\nA new cycling club meets on Tuesdays.\n\n"
        + _SUMMARY
        + "\n\nFootball: lost 2-1."
    )
    (passage,) = _passages(submitted, source)
    assert passage.summary
    start = submitted.index(_SUMMARY)
    assert start <= passage.submitted_span[0] < start + 20
    assert start + len(_SUMMARY) - 20 < passage.submitted_span[1] <= start + len(_SUMMARY)
    assert passage.source_span == (0, len(source.rstrip()))


def test_a_wide_match_beside_other_reuse_of_the_source_is_not_taken_for_a_summary() -> None:
    # The same summary, but the document also copies a passage of the source elsewhere: the source is
    # reused passage by passage, and the wide match is not reported as condensing all of it.
    source = _FLOOD_SOURCE
    copied = (
        "The town museum will reopen its Roman gallery in June after a two-year restoration of the mosaics. "
        "Curators found a second coin hoard under the gallery floor while the heating was replaced. "
        "Entry stays free for residents, and guided tours start every Saturday at eleven o'clock."
    )
    source += "\n\n" + copied
    filler = (
        "A new cycling club meets on Tuesdays at the leisure centre. The choir is looking for tenors. "
        "Football: the town team lost 2-1 away at Henley. The farmers' market moves to Fridays in winter. "
        "Parking charges at the station rise in April. The swimming pool reopens after its repairs."
    )
    submitted = "Local news in brief.\n\n" + _SUMMARY + "\n\n" + filler + "\n\n" + copied
    alone_allowed = PassageParams(summary_only_reuse=False)
    assert [p.summary for p in _passages(submitted, source, alone_allowed)] == [True, False]
    passages = _passages(submitted, source)
    assert passages and not any(p.summary for p in passages)
    copied_at = source.index(copied)
    assert passages[-1].source_span == (copied_at, copied_at + len(copied))


def test_copy_with_same_topic_sentences_far_away_is_not_taken_for_a_summary() -> None:
    other = " ".join(_OTHER_NEWS * 2)
    source = (
        "The river authority said the sluice gates at Marlow were last opened in 2014 after days of rain.\n\n"
        f"{other}\n\n{COPIED}\n\n{other}\n\n"
        "Engineers will inspect the weir again on Thursday morning, the river authority said."
    )
    submitted = (
        "Flood warning.\n\nA new cycling club meets on Tuesdays.\n\n" + COPIED + "\n\nFootball: lost 2-1."
    )
    copied_at = source.index(COPIED)
    # The wide source gap does join the far same-topic sentences to the copy ...
    unguarded = PassageParams(summary_max_single_cover=1.01, summary_min_sentences=0, summary_min_chars=0)
    (swapped,) = _passages(submitted, source, unguarded)
    assert swapped.summary and swapped.source_span[1] - swapped.source_span[0] > 5 * len(COPIED)
    # ... but one length-balanced narrow passage already explains the whole copy, so it stays tight.
    only_cover_guard = PassageParams(summary_min_sentences=0, summary_min_chars=0)
    for params in (PassageParams(), only_cover_guard):
        (passage,) = _passages(submitted, source, params)
        assert not passage.summary
        assert passage.source_span == (copied_at, copied_at + len(COPIED))


def test_a_loosely_worded_summary_sentence_still_joins_the_summary() -> None:
    # The second sentence matches its source sentence only at the weak-seed level (cosine ~0.25, Dice
    # ~0.29): without weak seeds the summary falls apart into pieces too short to report.
    source = _FLOOD_SOURCE
    summary = (
        "After three days of heavy rain the river rose and the authority opened the sluice gates at the "
        "weir. Police shut the path and told residents in the low part of town to shift vehicles, and "
        "volunteers brought sandbags. The school stayed shut and buses went around the flooded high "
        "street. Families sheltered at the leisure centre with food from shops, and the council said "
        "repairs to the towpath would take months."
    )
    submitted = (
        "Local news in brief.\n\nA new cycling club meets on Tuesdays.\n\n"
        + summary
        + "\n\nFootball: lost 2-1."
    )
    (passage,) = _passages(submitted, source)
    start = submitted.index(summary)
    assert passage.summary and passage.source_span == (0, len(source))
    assert (
        start <= passage.submitted_span[0] < start + 10
        and passage.submitted_span[1] > start + len(summary) - 10
    )
    without_weak_seeds = PassageParams(weak_seed_cosine=0.33, weak_seed_dice=0.33)
    assert not [p for p in _passages(submitted, source, without_weak_seeds) if p.summary]


def _wide_passage(submitted_chars: int, source_chars: int, sentences: int, source_sentences: int) -> Passage:
    return Passage(
        submitted_sentences=(0, sentences - 1),
        source_sentences=(0, source_sentences - 1),
        submitted_span=(0, submitted_chars),
        source_span=(0, source_chars),
        submitted_paragraphs=(0, 0),
        source_paragraphs=(0, 0),
        cosine=0.5,
        seeds=sentences,
    )


@pytest.mark.parametrize(
    ("source_chars", "seeds", "taken"),
    [
        # 4x as much source, each sentence seeding one source sentence further on: a summary.
        (2400, [(0, 0), (1, 5), (2, 11), (3, 17), (4, 23)], True),
        # 4x, but each sentence seeding two places (its copy and a same-topic look-alike): not one.
        (2400, [(0, 0), (0, 14), (1, 1), (1, 15), (2, 2), (2, 16), (3, 3), (3, 17), (4, 4), (4, 23)], False),
        # 6x: a summary sentence may join two or three source sentences.
        (3600, [(0, 0), (0, 1), (1, 6), (1, 8), (2, 12), (2, 13), (2, 14), (3, 18), (4, 23)], True),
        # 6x, but three or more places per sentence is topic overlap, not condensing.
        (3600, [(i, j) for i in range(5) for j in (i, i + 8, i + 16)], False),
        # Under 3x the source side is not long enough to be what the passage condenses.
        (1500, [(0, 0), (1, 5), (2, 11), (3, 17), (4, 23)], False),
    ],
)
def test_a_summary_condenses_a_long_source_stretch_with_few_seeds_per_sentence(
    source_chars: int, seeds: list[tuple[int, int]], taken: bool
) -> None:
    passage = _wide_passage(submitted_chars=600, source_chars=source_chars, sentences=5, source_sentences=24)
    assert _condenses(passage, seeds, PassageParams()) is taken


def _words_of(passage: Passage, submitted: str, source: str):  # type: ignore[no-untyped-def]
    return _tokens(submitted, passage.submitted_span), _tokens(source, passage.source_span)


def test_a_copied_passage_ends_where_the_copied_words_end_on_both_sides() -> None:
    # The source sentence after the copy is about the same thing, shares words with it in any order,
    # and was not copied: it must not be claimed.
    neighbour = " Engineers at the weir said the river authority would open the gates again if rain fell."
    source = "Council elections are due in May. " + COPIED + neighbour
    submitted = "Other news first. " + COPIED + " Football: the town team lost 2-1 away at Henley."
    src_start, sub_start = source.index(COPIED), submitted.index(COPIED)
    loose = _wide_passage(submitted_chars=0, source_chars=0, sentences=1, source_sentences=1)
    loose = dataclasses.replace(
        loose, submitted_span=(sub_start, sub_start + len(COPIED)), source_span=(src_start, len(source))
    )
    cut = _to_copied_ngrams(loose, *_words_of(loose, submitted, source), (submitted, source), PassageParams())
    assert cut.source_span == (src_start, src_start + len(COPIED))
    assert cut.submitted_span == (sub_start, sub_start + len(COPIED))


def test_reworded_reuse_keeps_its_spans() -> None:
    # Shares "the river authority opened all four sluice gates" with the source: 8 of its 18 words.
    reworded = (
        "After rain for three days, at Marlow the river authority opened all four sluice gates "
        "late on Sunday."
    )
    source = "Council elections are due in May. " + COPIED
    passage = dataclasses.replace(
        _wide_passage(submitted_chars=len(reworded), source_chars=0, sentences=1, source_sentences=1),
        source_span=(source.index(COPIED), len(source)),
    )
    words = _words_of(passage, reworded, source)
    assert _to_copied_ngrams(passage, *words, (reworded, source), PassageParams()) == passage


# A spinner that merges, splits and shuffles clauses across sentence boundaries: each rewritten sentence
# holds parts of both source sentences (with synonyms), so no sentence pair reaches the seed thresholds.
WINDOW_SOURCE = (
    "Council elections are due in May.\n\n"
    "The river authority opened all four sluice gates at Marlow on Sunday night after three days of heavy "
    "rain. Engineers reported that the water level at the weir had risen by 1.8 metres since Thursday "
    "morning.\n\nThe bakery on Mill Lane reopened after its refurbishment, with a new bread oven."
)
WINDOW_SUBMITTED = (
    "Local news in brief. A new cycling club meets on Tuesdays at the leisure centre.\n\n"
    "Sluice barriers at the dam were opened by Marlow technicians once the water level had climbed 1.8 "
    "metres. Three days of downpours since Thursday morning made the river authority act on Sunday "
    "evening, with all four gates.\n\nFootball: the town team lost 2-1 away at Henley."
)


def test_clauses_shuffled_across_sentences_are_found_through_sentence_windows() -> None:
    # (merged seeds, on by default, find this reuse too: they are off here to test windows alone)
    assert _passages(WINDOW_SUBMITTED, WINDOW_SOURCE, PassageParams(window_sentences=0, merge_reach=0)) == []
    (passage,) = _passages(WINDOW_SUBMITTED, WINDOW_SOURCE, PassageParams(merge_reach=0))
    reused_source = WINDOW_SOURCE[WINDOW_SOURCE.index("The river") : WINDOW_SOURCE.index("morning.") + 8]
    assert WINDOW_SOURCE[slice(*passage.source_span)] == reused_source
    submitted = WINDOW_SUBMITTED[slice(*passage.submitted_span)]
    assert submitted.endswith("with all four gates.") and "Marlow technicians" in submitted
    assert "cycling" not in submitted and "Football" not in submitted


def test_window_seeds_leave_sentences_that_already_have_a_seed_alone() -> None:
    # The copied passage's sentences all seed one to one: windows add nothing, so the same-topic
    # sentences around it (which share words with the copy's neighbours) are not pulled in.
    assert _passages(SUBMITTED, SOURCE) == _passages(SUBMITTED, SOURCE, PassageParams(window_sentences=0))


SPLIT_SOURCE = (
    "Council elections are due in May.\n\n"
    "The river authority closed the old stone bridge at Marlow on Tuesday morning. "
    "Divers working for the county engineers found deep cracks in three of the bridge's oak piles on Monday, "
    "and repairs are expected to last until the spring, a spokesman for the river authority said at a press "
    "conference. Buses will use the ring road in the meantime.\n\n"
    "A new cycling club meets on Tuesdays at the leisure centre.\n"
)
# The long source sentence split in two: the second half alone shares too few words to seed.
SPLIT_SUBMITTED = (
    "Local news in brief. The bakery on Church Street has changed hands.\n\n"
    "Repairs are expected to last until the spring, a spokesman for the river authority told a press "
    "conference on Monday, after county engineers found problems. Their divers saw cracks in the piles. "
    "In other news, the library will extend its opening hours.\n"
)


def test_a_source_sentence_split_in_two_is_found_through_its_merged_halves() -> None:
    assert _passages(SPLIT_SUBMITTED, SPLIT_SOURCE, PassageParams(merge_reach=0, lone_min_chars=0)) == []
    (passage,) = _passages(SPLIT_SUBMITTED, SPLIT_SOURCE)
    submitted = SPLIT_SUBMITTED[slice(*passage.submitted_span)]
    assert submitted.startswith("Repairs are expected")
    assert submitted.endswith("saw cracks in the piles.")
    assert "oak piles on Monday" in SPLIT_SOURCE[slice(*passage.source_span)]


def test_a_passage_too_short_to_report_is_kept_apart_as_context() -> None:
    # Without merged seeds the split sentence's first half is all that matches: 143 characters.
    params = PassageParams(merge_reach=0, lone_min_chars=0)
    submitted, source = segment(SPLIT_SUBMITTED).content_paragraphs, segment(SPLIT_SOURCE).content_paragraphs

    reportable, short = find_passages_and_short(SPLIT_SUBMITTED, submitted, SPLIT_SOURCE, source, params)

    assert reportable == []
    (context,) = short
    assert SPLIT_SUBMITTED[slice(*context.submitted_span)].startswith("Repairs are expected")
    assert span_length(context.submitted_span) < params.min_chars
    assert find_passages_and_short(
        SPLIT_SUBMITTED, submitted, SPLIT_SOURCE, source, dataclasses.replace(params, short_min_chars=150)
    ) == ([], [])


FILLER_WORDS = ("cheese", "flower", "pottery", "honey", "bicycle", "toy")


def test_a_short_passage_is_reported_when_it_is_all_the_pair_shares() -> None:
    params = PassageParams(merge_reach=0)  # only the split sentence's first half matches: 143 characters
    submitted, source = segment(SPLIT_SUBMITTED).content_paragraphs, segment(SPLIT_SOURCE).content_paragraphs

    (lone,) = find_passages_and_short(SPLIT_SUBMITTED, submitted, SPLIT_SOURCE, source, params)[0]
    assert SPLIT_SUBMITTED[slice(*lone.submitted_span)].startswith("Repairs are expected")
    assert span_length(lone.submitted_span) < params.min_chars <= 150
    stricter = dataclasses.replace(params, lone_min_cosine=lone.cosine + 0.01)
    assert find_passages_and_short(SPLIT_SUBMITTED, submitted, SPLIT_SOURCE, source, stricter)[0] == []

    # Beside a reportable passage the same short one stays context.
    filler = " ".join(
        f"Item {k}: the {word} stall at the market sold out before noon."
        for k, word in enumerate(FILLER_WORDS)
    )
    with_copy = f"{COPIED}\n\n{filler}\n\n{SPLIT_SUBMITTED}"
    copy_source = f"{COPIED}\n\n{SPLIT_SOURCE}"
    reportable, short = find_passages_and_short(
        with_copy,
        segment(with_copy).content_paragraphs,
        copy_source,
        segment(copy_source).content_paragraphs,
        params,
    )
    assert [with_copy[slice(*p.submitted_span)] for p in reportable] == [COPIED]
    assert [with_copy[slice(*p.submitted_span)][:20] for p in short] == ["Repairs are expected"]


def test_merged_seeds_leave_a_verbatim_copy_one_to_one() -> None:
    # The second sentence shares most of its words with the first, but the copy of the first has
    # nothing left for it to explain.
    text = (
        "The river authority closed the old stone bridge at Marlow on Tuesday morning. "
        "The old bridge at Marlow was closed by the river authority once before."
    )
    left = sentences(text, segment(text).content_paragraphs)
    right = sentences(text, segment(text).content_paragraphs)
    weights = _weights(left, right)
    found = [(0, 0), (1, 1)]

    assert merged_seeds(left, right, weights, [(0, 0)], PassageParams()) == [(0, 0)]
    assert merged_seeds(left, right, weights, found, PassageParams()) == found


# The reworded copy's first sentence also resembles an older sentence of the source four sentences
# earlier: a same-topic look-alike that would start the passage's source side there.
STRAY_SOURCE = (
    "Flood diary.\n\n"
    "Last winter the river authority opened two sluice gates at Marlow after days of heavy rain. "
    "The bakery on Mill Lane reopened after its refurbishment, with a new bread oven. "
    "Council elections are due in May, and three wards have new candidates. "
    "The football club has signed a goalkeeper from Reading on a two-year contract. "
    + COPIED
    + "\n\nThe library will extend its opening hours from next month."
)
STRAY_SUBMITTED = (
    "Local news in brief. A new cycling club meets on Tuesdays at the leisure centre.\n\n"
    "At Marlow the river authority opened all four of the sluice gates on Sunday night, after rain "
    "for three days. The water level at the weir had risen 1.8 metres since Thursday morning, "
    "engineers said. Lower town residents were told to move their cars away from the towpath by midnight."
    "\n\nThe weather is expected to improve by the weekend."
)


def test_a_look_alike_a_few_sentences_away_does_not_stretch_the_passage() -> None:
    (stretched,) = _passages(STRAY_SUBMITTED, STRAY_SOURCE, PassageParams(stray_reach=0))
    assert "two sluice gates" in STRAY_SOURCE[slice(*stretched.source_span)]

    (passage,) = _passages(STRAY_SUBMITTED, STRAY_SOURCE)
    # (the edge trimming ends it where the reworded copy's words end: "... from the towpath")
    assert COPIED.startswith(STRAY_SOURCE[slice(*passage.source_span)])
    assert passage.source_span[1] - passage.source_span[0] > 0.9 * len(COPIED)
    assert passage.submitted_span == stretched.submitted_span


def test_seeds_off_the_diagonal_go_and_merged_or_swapped_sentences_stay() -> None:
    # Sentence 77's seed with source sentence 4 lies six sentences off the cluster's diagonal.
    copied = [(77, 9), (77, 10), (78, 11), (78, 12), (79, 13)]
    assert _without_strays(sorted([(77, 4), *copied]), max_gap=4, reach=3) == copied
    # A sentence merged from four source sentences: its run of partners lies on the diagonal.
    merged = [(42, 9), (43, 10), (43, 11), (43, 12), (43, 13)]
    assert _without_strays(merged, max_gap=4, reach=3) == merged
    # Two sentences swapped: each has one partner, nothing is stray.
    assert _without_strays([(0, 1), (1, 0)], max_gap=4, reach=3) == [(0, 1), (1, 0)]
    # Sentence 5 matches source sentences 0 and 5: the one on the cluster's diagonal (offset 0) stays.
    assert _without_strays([(5, 0), (5, 5), (6, 10)], max_gap=4, reach=3) == [(5, 5), (6, 10)]
    # The same on the submitted side: source sentence 30 also pairs sentence 16, five above the copy.
    assert _without_strays([(16, 30), (21, 30), (22, 31)], max_gap=4, reach=3) == [(21, 30), (22, 31)]


def test_stems_come_from_the_c_snowball_build_and_match_the_pure_python_one() -> None:
    import Stemmer
    from snowballstemmer.english_stemmer import EnglishStemmer

    from rewrite_detector_server.core import passages

    assert isinstance(passages._STEMMER, Stemmer.Stemmer)
    reference = EnglishStemmer()
    for word in [
        "running", "generously", "organizations", "fairly", "ponies", "caresses", "dying", "news",
        "skies", "agreed", "hopefully", "controllers", "generalization", "ugliest", "succeeded",
        "proceedings", "arguing", "communism", "sensational", "1990s", "naïve", "café", "x",
    ]:  # fmt: skip
        assert passages.stem_word(word) == reference.stemWord(word), word
