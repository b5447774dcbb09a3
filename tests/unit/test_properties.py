"""Property tests (hypothesis) of segmentation, alignment and scoring through the detection core.

For any text: no exception other than the documented input errors; every span slices back to its text;
every score, coverage and overlap lies in [0, 1]; an article compared with itself is a NEAR_DUPLICATE.
The embedder is the deterministic hashing fake, so these run in seconds.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rewrite_detector_models import HashingEmbedder
from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import Settings
from rewrite_detector_server.core.align import AlignmentParams, AlignSide, align
from rewrite_detector_server.core.detector import Detector, SourceMatchResult
from rewrite_detector_server.core.segment import normalize_inline, segment
from rewrite_detector_server.core.types import ArticleInput, Segmented, Verdict
from rewrite_detector_server.errors import InvalidInputError, TooLargeError

# Words and separators that exercise the segmenter's layouts (blank lines, hard wraps, markdown,
# boilerplate, numbers and names for the anchor features), mixed with arbitrary unicode.
_VOCABULARY = (
    "the mayor said 12 percent Rotterdam Maria Lopez port council budget storm closed schools "
    "profits rose «quoted» naïve café 2025 €4.5m Related click here ** # > - 1."
)
_WORDS = st.sampled_from(_VOCABULARY.split(" "))
_SEPARATORS = st.sampled_from([" ", " ", " ", "\n", "\n\n", "\r\n", "\n\n\n", ". ", "\t", "\u00a0"])
_PROSE = st.lists(st.tuples(_WORDS, _SEPARATORS), min_size=1, max_size=120).map(
    lambda parts: "".join(w + s for w, s in parts)
)
TEXT = st.one_of(_PROSE, st.text(max_size=400), st.text(alphabet=st.characters(codec="utf-8"), max_size=60))
PROPERTY_SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SOURCES = {
    "port": "Rotterdam port profits rose 12 percent, Maria Lopez said.\n\nThe council approved the budget.",
    "storm": "A storm closed schools on Friday.\n\nThe mayor said roads would reopen soon.",
}


@pytest.fixture(scope="module")
def detector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Detector]:
    data_dir: Path = tmp_path_factory.mktemp("properties") / "data"
    built = build_detector(Settings(data_dir=data_dir), HashingEmbedder())
    for article_id, text in SOURCES.items():
        built.index(ArticleInput(id=article_id, text=text))
    yield built
    built.close()


def in_unit_interval(value: float) -> bool:
    return not math.isnan(value) and 0.0 <= value <= 1.0


def assert_paragraph_spans(segmented: Segmented) -> None:
    previous_end = 0
    for paragraph in segmented.paragraphs:
        assert previous_end <= paragraph.start < paragraph.end <= len(segmented.text)
        assert normalize_inline(segmented.text[paragraph.start : paragraph.end]) == paragraph.text
        previous_end = paragraph.end


def assert_match_invariants(match: SourceMatchResult, submitted: Segmented, source: Segmented) -> None:
    scores = match.scores
    for name in (
        "score",
        "coverage_submitted",
        "coverage_source",
        "verbatim_coverage",
        "mean_similarity",
        "lexical_overlap",
        "anchor_overlap",
        "order_preservation",
    ):
        assert in_unit_interval(getattr(scores, name)), (name, getattr(scores, name))
    by_index = {
        "submitted": {p.index: p for p in submitted.paragraphs},
        "source": {p.index: p for p in source.paragraphs},
    }
    for pair in match.pairs:
        for value in (pair.similarity, pair.divergence, pair.lexical_overlap, pair.anchor_overlap):
            assert in_unit_interval(value), pair
        for side, segmented, span, text, indexes in (
            ("submitted", submitted, pair.submitted_span, pair.submitted_text, pair.submitted_paragraphs),
            ("source", source, pair.source_span, pair.source_text, pair.source_paragraphs),
        ):
            start, end = span
            assert 0 <= start < end <= len(segmented.text), (side, span)
            assert normalize_inline(segmented.text[start:end]) == text
            assert indexes and all(i in by_index[side] for i in indexes)
            # The span lies within the paragraphs the pair names.
            first, last = by_index[side][min(indexes)], by_index[side][max(indexes)]
            assert first.start <= start and end <= last.end, (side, span, first, last)


@PROPERTY_SETTINGS
@given(text=TEXT)
def test_segmentation_spans_slice_back(text: str) -> None:
    segmented = segment(text)
    assert segmented.text is text
    assert_paragraph_spans(segmented)


@PROPERTY_SETTINGS
@given(submitted=TEXT, source=TEXT)
def test_compare_any_texts(detector: Detector, submitted: str, source: str) -> None:
    try:
        result = detector.compare(submitted, source)
    except (InvalidInputError, TooLargeError) as err:
        assert str(err)  # a documented input error, with a message
        return
    assert_paragraph_spans(result.submitted)
    assert_paragraph_spans(result.source)
    assert_match_invariants(result.match, result.submitted, result.source)


@PROPERTY_SETTINGS
@given(text=TEXT)
def test_compare_with_itself_is_a_near_duplicate(detector: Detector, text: str) -> None:
    try:
        result = detector.compare(text, text)
    except InvalidInputError:
        assume(False)  # nothing to compare (empty, only markup or boilerplate)
        return
    assert result.match.verdict is Verdict.NEAR_DUPLICATE, [
        (p.kind, p.similarity) for p in result.match.pairs
    ]
    assert result.match.scores.coverage_submitted == pytest.approx(1.0)
    assert_match_invariants(result.match, result.submitted, result.source)


@PROPERTY_SETTINGS
@given(text=TEXT, max_sources=st.integers(0, 100), min_similarity=st.floats(0.0, 1.0))
def test_check_any_text(detector: Detector, text: str, max_sources: int, min_similarity: float) -> None:
    try:
        result = detector.check(text, max_sources=max_sources, min_similarity=min_similarity)
    except (InvalidInputError, TooLargeError) as err:
        assert str(err)
        return
    assert in_unit_interval(result.score)
    assert len(result.matches) <= (max_sources or 5)
    assert [m.score for m in result.matches] == sorted((m.score for m in result.matches), reverse=True)
    for match in result.matches:
        assert match.source_id in SOURCES
        source = segment(SOURCES[match.source_id])
        assert_match_invariants(match, result.submitted, source)


def _unit_rows(rows: int, seed: int) -> np.ndarray:
    vectors = np.random.default_rng(seed).standard_normal((rows, 16)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 12),
    m=st.integers(0, 12),
    seed=st.integers(0, 2**32 - 1),
    copies=st.lists(st.tuples(st.integers(0, 11), st.integers(0, 11)), max_size=8),
    words=st.lists(_WORDS, min_size=1, max_size=8),
)
def test_align_hand_made_vectors(
    n: int, m: int, seed: int, copies: list[tuple[int, int]], words: list[str]
) -> None:
    """Pure alignment on random unit vectors, some submitted rows copied from source rows."""
    submitted, source = _unit_rows(n, seed), _unit_rows(m, seed + 1)
    sub_texts = [" ".join(words[: 1 + i % len(words)]) + f" s{i}" for i in range(n)]
    src_texts = [" ".join(words[: 1 + j % len(words)]) + f" r{j}" for j in range(m)]
    for i, j in copies:
        if i < n and j < m:
            submitted[i], sub_texts[i] = source[j], src_texts[j]
    groups = align(
        AlignSide(submitted, sub_texts, [len(t) for t in sub_texts]),
        AlignSide(source, src_texts, [len(t) for t in src_texts]),
        AlignmentParams(),
    )
    assert [g.submitted[0] for g in groups] == sorted(g.submitted[0] for g in groups)
    seen: set[int] = set()
    for group in groups:
        assert group.submitted and group.source
        assert all(0 <= i < n for i in group.submitted) and all(0 <= j < m for j in group.source)
        assert seen.isdisjoint(group.submitted)  # a submitted paragraph is in one group at most
        seen.update(group.submitted)
        for value in (group.similarity, group.lexical_overlap, group.anchor_overlap, group.verbatim_ratio):
            assert in_unit_interval(value), group


@settings(max_examples=50, deadline=None)
@given(vectors=hnp.arrays(np.float32, (3, 8), elements=st.floats(-1, 1, width=32)))
def test_similarity_of_a_vector_with_itself_never_exceeds_one(vectors: np.ndarray) -> None:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    assume(bool(np.all(norms > 1e-3)))
    unit = (vectors / norms).astype(np.float32)
    groups = align(
        AlignSide(unit, ["a b", "c d", "e f"], [3, 3, 3]), AlignSide(unit, ["a b", "c d", "e f"], [3, 3, 3])
    )
    for group in groups:
        assert in_unit_interval(group.similarity) and in_unit_interval(1.0 - group.similarity)
