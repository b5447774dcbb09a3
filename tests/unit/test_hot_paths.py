"""The Check hot paths were rewritten for speed (issue 4) and must compute exactly what the plain versions
computed: each fast function is compared here with a straightforward reference implementation (the
code it replaced), on hand-picked edge cases and on generated inputs."""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rewrite_detector_server.core import align, features, passages
from rewrite_detector_server.core.segment import segment, split_sentences
from rewrite_detector_server.core.types import ArticleInput, Paragraph
from rewrite_detector_server.storage._fsutil import FAST_DIGEST
from rewrite_detector_server.storage.store import ArticleStore
from rewrite_detector_server.storage.vector_index import CorruptIndexError, FaissVectorIndex

# Characters that exercise the anchor rules: capitals, apostrophes and hyphens inside names, sentence
# ends, quotes, colons, whitespace of several kinds, digits with separators.
_TRICKY = st.text(alphabet=[*"AaBbOoMcNe'’-. :!?\"“”\n\t0123,_ ", "\u00a0", "\u2028"], max_size=40)


# -- features ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "O'Neil met Anglo-Saxon kings. McDonald's said \"Hello There\": Paris.",
        "Anglo-Saxon rule ended. O’Brien left.\nJean-Luc Picard: Earth 2,400 people",
        '."Quoted Start" and (Bracketed Name) and \'Single Quote',
        "A. B. Smith and J.R.R. Tolkien wrote 1,000.5 pages",
    ],
)
def test_anchor_set_is_the_set_of_anchors(text: str) -> None:
    assert features.anchor_set(text) == frozenset(features.anchors(text))


@settings(max_examples=300, deadline=None)
@given(_TRICKY)
def test_anchor_set_is_the_set_of_anchors_on_generated_text(text: str) -> None:
    assert features.anchor_set(text) == frozenset(features.anchors(text))


# -- alignment -----------------------------------------------------------------------------------------


def _reference_chain(gain: np.ndarray) -> list[tuple[int, int]]:
    n, m = gain.shape
    score = np.zeros((n + 1, m + 1), dtype=np.float64)
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            best = score[i - 1, j] if score[i - 1, j] >= score[i, j - 1] else score[i, j - 1]
            g = gain[i - 1, j - 1]
            if g > 0.0 and score[i - 1, j - 1] + g > best:
                best = score[i - 1, j - 1] + g
            score[i, j] = best
    chain: list[tuple[int, int]] = []
    i, j = n, m
    while i > 0 and j > 0:
        if score[i, j] == score[i - 1, j]:
            i -= 1
        elif score[i, j] == score[i, j - 1]:
            j -= 1
        else:
            chain.append((i - 1, j - 1))
            i -= 1
            j -= 1
    chain.reverse()
    return chain


@pytest.mark.parametrize("seed", range(20))
def test_monotone_chain_matches_the_numpy_recurrence(seed: int) -> None:
    rng = np.random.default_rng(seed)
    gain = rng.uniform(-0.5, 0.5, size=(rng.integers(1, 25), rng.integers(1, 25))).astype(np.float32)
    gain[rng.random(gain.shape) < 0.3] = 0.0  # ties and gaps, as the similarity floor makes them
    assert align._monotone_chain(gain) == _reference_chain(gain)


# -- passages ------------------------------------------------------------------------------------------


def _reference_sentences(text: str, paragraphs: Sequence[Paragraph]) -> list[passages.Sentence]:
    out = []
    for position, paragraph in enumerate(paragraphs):
        for start, end in split_sentences(text, paragraph.start, paragraph.end):
            terms = Counter(
                passages.stem_word(w)
                for w in features.words(text[start:end])
                if w not in features.STOPWORDS and len(w) > 1
            )
            if terms:
                out.append(passages.Sentence(start, end, position, terms))
    return out


def _reference_cosine(a: Counter[str], b: Counter[str], weights: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(count * b[t] * weights[t] ** 2 for t, count in a.items() if t in b)
    if dot == 0.0:
        return 0.0
    norm_a = math.sqrt(sum((c * weights[t]) ** 2 for t, c in a.items()))
    norm_b = math.sqrt(sum((c * weights[t]) ** 2 for t, c in b.items()))
    return dot / (norm_a * norm_b)


def _reference_scored(
    left: Sequence[passages.Sentence],
    right: Sequence[passages.Sentence],
    weights: dict[str, float],
    min_dice: float,
    min_cosine: float,
) -> list[tuple[int, int, float, float]]:
    """`scored_seeds` as the per-pair loop over Counters it replaced."""
    found = []
    for i, sentence in enumerate(left):
        for j, other in enumerate(right):
            shared = len(sentence.terms.keys() & other.terms.keys())
            if not shared:
                continue
            dice = 2.0 * shared / (len(sentence.terms) + len(other.terms))
            cosine = _reference_cosine(sentence.terms, other.terms, weights)
            if dice >= min_dice and cosine >= min_cosine:
                found.append((i, j, dice, cosine))
    return found


def _reference_seeds(
    left: Sequence[passages.Sentence],
    right: Sequence[passages.Sentence],
    weights: dict[str, float],
    params: passages.PassageParams,
) -> list[tuple[int, int]]:
    return [
        (i, j) for i, j, _, _ in _reference_scored(left, right, weights, params.seed_dice, params.seed_cosine)
    ]


_ARTICLE_A = (
    "The council approved the budget on Monday. Mr. Smith said the vote was close.\n\n"
    "Residents of the U.S. town protested outside.The mayor, however, praised the plan.\n\n"
    "Funding for schools rose by 12 percent. Roads get 3.5 million dollars! Why now? Nobody knows."
)
_ARTICLE_B = (
    "On Monday the council passed its budget. Smith said that the vote had been close.\n\n"
    "The mayor praised the plan, while residents protested. Schools funding rose by 12 percent.\n\n"
    "Roads will get 3.5 million dollars. The weather was fine."
)


def _paragraphs(text: str) -> list[Paragraph]:
    return list(segment(text).content_paragraphs)


@pytest.mark.parametrize("text", [_ARTICLE_A, _ARTICLE_B, "x" + _ARTICLE_A])
def test_sentences_match_the_reference_split(text: str) -> None:
    paragraphs = _paragraphs(text)
    # A paragraph glued to the word before it (no whitespace in between) takes the uncached path.
    glued = [*paragraphs, Paragraph(index=99, start=1, end=min(len(text), 80), text=text[1:80])]
    for given_paragraphs in (paragraphs, glued):
        got = passages.sentences(text, given_paragraphs)
        want = _reference_sentences(text, given_paragraphs)
        assert [(s.start, s.end, s.paragraph, list(s.terms.items())) for s in got] == [
            (s.start, s.end, s.paragraph, list(s.terms.items())) for s in want
        ]


def test_seeds_weights_and_merged_terms_match_the_reference() -> None:
    left = passages.sentences(_ARTICLE_A, _paragraphs(_ARTICLE_A))
    right = passages.sentences(_ARTICLE_B, _paragraphs(_ARTICLE_B))
    frequency: Counter[str] = Counter()
    for sentence in (*left, *right):
        frequency.update(sentence.terms.keys())
    total = len(left) + len(right)
    weights = {term: math.log(total / count) + 1.0 for term, count in frequency.items()}
    assert passages._weights(left, right) == weights
    assert list(passages._weights(left, right)) == list(weights)
    for params in (passages.PassageParams(), passages.PassageParams(seed_cosine=0.0, seed_dice=0.0)):
        assert passages.seeds(left, right, weights, params) == _reference_seeds(left, right, weights, params)
    merged: Counter[str] = Counter()
    for sentence in left[1:4]:
        merged.update(sentence.terms)
    assert list(passages._merged_terms(left, 1, 3).items()) == list(merged.items())
    assert passages._cosine(left[0].terms, right[0].terms, weights) == _reference_cosine(
        left[0].terms, right[0].terms, weights
    )


def _reference_trim_edges(
    mine: list[tuple[str, int, int]],
    other: list[tuple[str, int, int]],
    head_end: int,
    tail_start: int,
    span_end: int,
) -> tuple[int, int] | None:
    window = 3
    vocabulary = {stem for stem, _, _ in other}
    hits = [
        k
        for k in range(len(mine) - window + 1)
        if all(stem in vocabulary for stem, _, _ in mine[k : k + window])
    ]
    if not hits:
        return None
    start = min(mine[hits[0]][1], head_end)
    last = hits[-1] + window - 1
    end = max(mine[last][2] if last < len(mine) - 1 else span_end, tail_start)
    return (start, end) if start < end else None


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.sampled_from(["the", "vote", "was", "close", "council", "budget", "rose"]), max_size=14),
    st.lists(st.sampled_from(["the", "vote", "was", "close", "council", "budget", "rose"]), max_size=14),
    st.integers(0, 120),
    st.integers(0, 120),
)
def test_trim_edges_matches_the_reference(
    mine_words: list[str], other_words: list[str], head_end: int, tail_start: int
) -> None:
    mine_text, other_text = " ".join(mine_words), " ".join(other_words)
    mine = passages._tokens(mine_text, (0, len(mine_text)))
    other = passages._tokens(other_text, (0, len(other_text)))
    as_triples = [(s, a, b) for s, (a, b) in zip(mine.stems, mine.spans, strict=True)]
    other_triples = [(s, a, b) for s, (a, b) in zip(other.stems, other.spans, strict=True)]
    assert passages._trim_edges(mine, other, head_end, tail_start, len(mine_text)) == _reference_trim_edges(
        as_triples, other_triples, head_end, tail_start, len(mine_text)
    )


@pytest.mark.parametrize("text", [_ARTICLE_A, _ARTICLE_B])
def test_words_within_a_narrower_span_match_tokenising_it_again(text: str) -> None:
    whole = passages._tokens(text, (0, len(text)))
    count = len(whole.stems)
    for first in range(0, count, 7):
        for last in range(first, count, 11):
            span = (whole.spans[first][0], whole.spans[last][1])
            assert passages._within(whole, span) == passages._tokens(text, span)


# -- storage -------------------------------------------------------------------------------------------


def _article(number: int, paragraphs: int) -> tuple[ArticleInput, list[Paragraph], np.ndarray]:
    texts = [f"Paragraph {j} of article {number}." for j in range(paragraphs)]
    spans, offset = [], 0
    for j, text in enumerate(texts):
        spans.append(Paragraph(index=j, start=offset, end=offset + len(text), text=text))
        offset += len(text) + 2
    vectors = np.random.default_rng(number).standard_normal((paragraphs, 8)).astype(np.float32)
    return ArticleInput(id=f"a{number}", text="\n\n".join(texts)), spans, vectors


def test_all_vector_ids_pages_through_gaps(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rewrite_detector_server.storage import store as store_module

    monkeypatch.setattr(store_module, "_ID_PAGE", 3)
    store = ArticleStore(tmp_path / "store.sqlite3", dimension=8)
    try:
        assert store.all_vector_ids().tolist() == []
        for number in range(6):
            article, paragraphs, vectors = _article(number, 1 + number % 3)
            store.upsert(article, f"h{number}", paragraphs, vectors)
        store.delete("a2")
        store.delete("a4")
        expected = [
            row[0]
            for row in store._conn.execute(
                "SELECT vector_id FROM paragraphs WHERE vector_id IS NOT NULL ORDER BY vector_id"
            )
        ]
        got = store.all_vector_ids()
        assert got.dtype == np.int64
        assert got.tolist() == expected
    finally:
        store.close()


def _saved_index(tmp_path: Path) -> Path:
    path = tmp_path / "index.faiss"
    index = FaissVectorIndex(8, "flat", path=path)
    vectors = np.random.default_rng(0).standard_normal((50, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index.add(np.arange(1, 51, dtype=np.int64), vectors)
    index.save()
    index.close()
    return path


def test_snapshot_sidecar_carries_both_checksums_and_old_sidecars_still_load(tmp_path: Path) -> None:
    path = _saved_index(tmp_path)
    sidecar = path.with_name(path.name + ".meta.json")
    meta = json.loads(sidecar.read_text())
    assert len(meta["sha256"]) == 64 and len(meta[FAST_DIGEST]) == 32
    # A sidecar from before the fast checksum (SHA-256 only) is still verified and loaded, and gains the
    # fast checksum for the next start.
    fast = meta.pop(FAST_DIGEST)
    sidecar.write_text(json.dumps(meta))
    assert FaissVectorIndex.load(path, 8, "flat").ntotal == 50
    assert json.loads(sidecar.read_text())[FAST_DIGEST] == fast
    meta["sha256"] = "0" * 64
    sidecar.write_text(json.dumps(meta))
    with pytest.raises(CorruptIndexError):
        FaissVectorIndex.load(path, 8, "flat")


def test_a_flipped_byte_fails_the_fast_checksum(tmp_path: Path) -> None:
    path = _saved_index(tmp_path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(CorruptIndexError, match="xxh3_128 differs"):
        FaissVectorIndex.load(path, 8, "flat")


def _reference_covering(
    windows: passages._SentenceWindows, wanted: set[int]
) -> tuple[list[passages.Sentence], list[int]]:
    """The runs holding a sentence of `wanted` as merged pseudo-sentences (their terms' counts summed),
    and each run's first position: the windows as they were built before the numpy seed scorer."""
    runs = []
    firsts = windows.firsts(wanted)
    for first in firsts:
        members = windows.sentences[first : first + windows.size]
        terms: Counter[str] = Counter()
        for member in members:
            terms.update(member.terms)
        runs.append(passages.Sentence(members[0].start, members[-1].end, members[0].paragraph, terms))
    return runs, firsts


def _reference_window_seeds(
    left: passages._SentenceWindows,
    right: passages._SentenceWindows,
    weights: dict[str, float],
    found: Sequence[tuple[int, int]],
    params: passages.PassageParams,
) -> list[tuple[int, int]]:
    """One tier's window seeds as `find_passages` computed them before the tiers shared a pass."""
    size = left.size
    unseeded_left = set(range(len(left.sentences))) - {i for i, _ in found}
    unseeded_right = set(range(len(right.sentences))) - {j for _, j in found}
    if size < 2 or not unseeded_left or not unseeded_right:
        return list(found)
    added: set[tuple[int, int]] = set()
    left_runs, left_firsts = _reference_covering(left, unseeded_left)
    right_runs, right_firsts = _reference_covering(right, unseeded_right)
    for i, j in passages.seeds(left_runs, right_runs, weights, params):
        for a in range(left_firsts[i], left_firsts[i] + size):
            for b in range(right_firsts[j], right_firsts[j] + size):
                if a in unseeded_left and b in unseeded_right and (a, b) not in added:
                    mine, theirs = left.sentences[a].terms, right.sentences[b].terms
                    dice = 2.0 * len(mine.keys() & theirs.keys()) / (len(mine) + len(theirs))
                    if dice >= params.window_member_dice and (
                        _reference_cosine(mine, theirs, weights) >= params.window_member_cosine
                    ):
                        added.add((a, b))
    return sorted({*found, *added})


def _spun_and_original_sentences() -> tuple[
    list[passages.Sentence], list[passages.Sentence], dict[str, float]
]:
    """Seed 000 (a machine-spun rewrite of 001) and 001 as sentences, and their term weights: sentences
    match at every strength."""
    spun, original = (
        next((Path(__file__).parents[2] / "seeds").glob(f"{prefix}_*.txt")).read_text(encoding="utf-8")
        for prefix in ("000", "001")
    )
    left = passages.sentences(spun, _paragraphs(spun))
    right = passages.sentences(original, _paragraphs(original))
    return left, right, passages._weights(left, right)


@pytest.mark.parametrize(
    ("full", "weak"),
    [((0.33, 0.30), (0.25, 0.25)), ((0.5, 0.5), (0.1, 0.1)), ((0.45, 0.4), (0.3, 0.2))],
)
def test_tiered_seeds_match_two_separate_window_passes(
    full: tuple[float, float], weak: tuple[float, float]
) -> None:
    left, right, weights = _spun_and_original_sentences()
    params = passages.PassageParams(seed_cosine=full[0], seed_dice=full[1])
    weak_params = passages.PassageParams(seed_cosine=weak[0], seed_dice=weak[1])

    def windows() -> tuple[passages._SentenceWindows, passages._SentenceWindows]:
        return passages._SentenceWindows(left, 2), passages._SentenceWindows(right, 2)

    expected = tuple(
        _reference_window_seeds(*windows(), weights, passages.seeds(left, right, weights, tier), tier)
        for tier in (params, weak_params)
    )
    assert passages.tiered_seeds(*windows(), weights, params, weak_params) == expected
    assert expected[0] != expected[1]  # the tiers differ, so both filters are exercised


_TERMS = st.lists(
    st.sampled_from(["vote", "council", "budget", "rose", "mayor", "tax", "city", "888"]), max_size=9
)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(_TERMS, max_size=7),
    st.lists(_TERMS, max_size=7),
    st.sampled_from([(0.0, 0.0), (0.25, 0.25), (0.33, 0.33), (0.5, 0.2)]),
    st.integers(2, 3),
)
def test_numpy_seed_scores_match_the_per_pair_loop(
    left_terms: list[list[str]], right_terms: list[list[str]], minimums: tuple[float, float], size: int
) -> None:
    def sentences(term_lists: list[list[str]]) -> list[passages.Sentence]:
        return [passages.Sentence(k, k + 1, k, Counter(terms)) for k, terms in enumerate(term_lists) if terms]

    left, right = sentences(left_terms), sentences(right_terms)
    weights = passages._weights(left, right)
    got = passages.scored_seeds(left, right, weights, *minimums)
    want = _reference_scored(left, right, weights, *minimums)
    assert [(i, j, dice) for i, j, dice, _ in got] == [(i, j, dice) for i, j, dice, _ in want]
    assert [cosine for *_, cosine in got] == pytest.approx([cosine for *_, cosine in want], rel=1e-12)
    # Windows of `size` sentences: the runs' summed counts, scored the same way.
    windows = passages._SentenceWindows(left, size), passages._SentenceWindows(right, size)
    everything = (set(range(len(left))), set(range(len(right))))
    scorer = passages._SeedScorer(left, right, weights)
    got_windows = passages._window_matches(*windows, scorer, everything, *minimums)
    (left_runs, left_firsts), (right_runs, right_firsts) = (
        _reference_covering(w, wanted) for w, wanted in zip(windows, everything, strict=True)
    )
    want_windows = [
        (left_firsts[i], right_firsts[j], dice, cosine)
        for i, j, dice, cosine in _reference_scored(left_runs, right_runs, weights, *minimums)
    ]
    assert [m[:3] for m in got_windows] == [m[:3] for m in want_windows]
    assert [m[3] for m in got_windows] == pytest.approx([m[3] for m in want_windows], rel=1e-12)


def test_seed_scores_are_the_same_in_blocks_of_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    left, right, weights = _spun_and_original_sentences()
    whole = passages.scored_seeds(left, right, weights, 0.1, 0.1)
    monkeypatch.setattr(passages, "_SCORED_ROWS_PER_BLOCK", 3)  # len(left) is not a multiple of 3
    blocked = passages.scored_seeds(left, right, weights, 0.1, 0.1)
    want = _reference_scored(left, right, weights, 0.1, 0.1)
    assert len(left) % 3 and len(want) > 20
    for got in (whole, blocked):  # a block's shared terms set the summation order: last bits only
        assert [g[:3] for g in got] == [w[:3] for w in want]
        assert [g[3] for g in got] == pytest.approx([w[3] for w in want], rel=1e-12)
