"""Verbatim stretches PAN leaves unannotated (evaluation/unannotated.py), on hand-made texts."""

from __future__ import annotations

from rewrite_detector_server.evaluation.unannotated import (
    VerbatimParams,
    unannotated_verbatim_cases,
    verbatim_stretches,
)

COPIED = (
    "The university system's undergraduate programs are open to all qualified students, and the "
    "student body is made of busy working adults who hold a variety of positions in the national "
    "security, public service and corporate sectors across the country."
)
OTHER = "Completely different words about gardening, tomatoes, rain and the long summer evenings here."


def test_a_copied_paragraph_is_one_stretch_with_exact_spans_on_both_sides() -> None:
    suspicious = f"{OTHER}\n\n{COPIED}\n\nAnd a closing line of our own."
    wrapped = COPIED.replace(", and", ",\nand")  # a hard-wrapped copy
    source = f"Header line\n{wrapped}\nFooter"
    [(sus_span, src_span)] = verbatim_stretches(suspicious, source)
    assert suspicious[sus_span[0] : sus_span[1]] == COPIED.rstrip(".")  # spans run from word to word
    assert source[src_span[0] : src_span[1]] == wrapped.rstrip(".")


def test_a_changed_word_does_not_split_the_copy_but_a_long_insertion_does() -> None:
    one_word = COPIED.replace("busy working", "busy hard-working")
    [(sus_span, _)] = verbatim_stretches(one_word, COPIED)
    assert (sus_span[1] - sus_span[0]) > len(COPIED) - 20
    inserted = COPIED.replace("adults who", f"adults ({OTHER}) who")
    halves = verbatim_stretches(inserted, COPIED, VerbatimParams(min_words=10))
    assert len(halves) == 2


def test_short_shared_phrases_and_unrelated_texts_are_not_stretches() -> None:
    assert verbatim_stretches(OTHER, COPIED) == []
    phrase = "open to all qualified students and the student body is"
    assert verbatim_stretches(f"{OTHER} {phrase} {OTHER}", COPIED) == []  # 10 words < 25


def test_cases_skip_designated_pairs_and_find_the_unpaired_source() -> None:
    documents = {"susp": f"{OTHER}\n{COPIED}", "paired": COPIED, "unpaired": f"x {COPIED} y", "far": OTHER}
    cases = unannotated_verbatim_cases(
        ["susp"], ["paired", "unpaired", "far"], {("susp", "paired")}, documents.get, documents.get
    )
    assert [(c.suspicious_id, c.source_id) for c in cases] == [("susp", "unpaired")]
    # Spans run from the first word to the last, so the final full stop is outside.
    assert documents["unpaired"][cases[0].source_offset : cases[0].source_end] == COPIED.rstrip(".")
