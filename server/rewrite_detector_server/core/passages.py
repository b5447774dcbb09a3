"""Sentence-level passage alignment: seeds, extension, filtering.

Paragraph embeddings find rewrites whose paragraphs line up, but a reused passage can be a few sentences
inside a long paragraph (PAN's cases are ~460 characters inside ~1,000-character blocks; a news article
may copy two sentences of a wire story into its own paragraph). This module finds such passages from
lexical evidence between sentences, in the seed -> extend -> filter scheme that the strongest PAN text
alignment systems use (Sanchez-Perez, Sidorov and Gelbukh 2014 describe the scheme; this is our own
implementation over our sentence splitter, with stemmed content words and sentence-frequency weights):

1. seeds: sentence pairs whose weighted cosine and Dice coefficient both pass a threshold;
2. extension: seeds close to each other on both sides (a gap of at most `max_gap` sentences) form a
   cluster; a cluster whose two sides are not similar as wholes is split again with a smaller gap;
3. filtering: overlapping passages keep the better one, passages shorter than `min_chars` go.

Pure functions over texts and paragraph spans; no model, no gRPC.
"""

from __future__ import annotations

import bisect
import dataclasses
import itertools
import math
import re
import statistics
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

import numpy as np
import snowballstemmer

from rewrite_detector_server.core.features import STOPWORDS, words
from rewrite_detector_server.core.segment import split_sentences
from rewrite_detector_server.core.spans import span_length
from rewrite_detector_server.core.types import Paragraph

# The C build of Snowball (PyStemmer, a server dependency) when installed, else snowballstemmer's pure
# Python: the same stems, the C one ~11x faster.
_STEMMER = snowballstemmer.stemmer("english")
# snowballstemmer keeps the word being stemmed in the stemmer object: concurrent Checks (gRPC threads)
# corrupt each other's state (IndexError). The lru_cache in front makes the lock rarely taken.
_STEMMER_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class PassageParams:
    seed_cosine: float = 0.33
    seed_dice: float = 0.33
    # Looking for summaries (the wide source gap below), weaker sentence pairs also count as seeds, but
    # only in a cluster that holds a seed at the full thresholds: a summary's sentences condense, so
    # they match their source sentences less closely, but they never start a passage. Not used for the
    # narrow passages: there they spilled over case edges (pan13-train, whole corpus: summary 0.558 ->
    # 0.616, entire 0.846 -> 0.845; in every passage instead, summary 0.651 but entire 0.830, clean-pair
    # false positives 2.4 %).
    weak_seed_cosine: float = 0.25
    weak_seed_dice: float = 0.25
    max_gap: int = 4
    # Gap allowed between seeds on the source side; larger lets a summary's few sentences gather the
    # long source stretch they condense.
    source_max_gap: int = 24
    # A passage found with the wide source gap is taken as a summary (replacing the narrow-gap passages
    # it overlaps) when its source span is at least this many times longer than its submitted span ...
    summary_ratio: float = 3.0
    # ... and when its seeds pair each submitted sentence with at most this many distinct source
    # sentences on average. A summary sentence condenses one or a few source sentences, the next one
    # sentences further on: few seeds per sentence, spread along the source. A copy or paraphrase whose
    # wide passage reached far into the source did so through same-topic look-alikes, several per
    # submitted sentence (pan13-train, wide passages passing the other tests: median 1.25-1.33 on
    # summary pairs, 1.45-2.75 on the other obfuscations). With both tiers, whole corpus in pair mode:
    # summary 0.623 -> 0.786, entire 0.858 -> 0.865.
    summary_max_sources_per_sentence: float = 1.6
    # A passage condensing at least `summary_long_ratio` times as much source text may merge more
    # source sentences per sentence (a summary sentence that joins two or three facts) and still be
    # taken for a summary (ratio 5 with no cap at all was the earlier rule).
    summary_long_ratio: float = 5.0
    summary_long_max_sources_per_sentence: float = 2.5
    # ... and when at least this many distinct submitted sentences seed it. A summary condenses several
    # source sentences in several of its own; one submitted sentence with a few same-topic seeds far
    # away in the source is a verbatim or paraphrased passage, and swapping it for the wide passage
    # over-extended its source span (pan13-train: 2 keeps 83 of 85 summary swaps and drops 413 of 650
    # swaps on the other obfuscation types, whose source sides were ~75 % outside their case).
    summary_min_sentences: int = 2
    # ... and when no single narrow passage already explains it: one length-balanced narrow passage
    # (source <= 2x submitted) covering this fraction of its submitted span is a copy or a paraphrase
    # with same-topic seeds further away, not a summary (whose sentences each seed a different place) ...
    summary_max_single_cover: float = 0.9
    # ... and when the document reuses the source nowhere else: no narrow passage of reportable length
    # outside it. A document that copies or paraphrases the source passage by passage elsewhere has its
    # reuse located already; a wide passage beside those is its same-topic remainder stretched over the
    # source (pan13-train, passages alone on 300 pairs a type: every one of the 41 summaries swapped in
    # on summary pairs stood alone; 38 of the 53 swapped in on the other obfuscations, whose source sides
    # were 80-90 % outside their case, had other passages beside them).
    summary_only_reuse: bool = True
    # ... and when its submitted side is at least this long (a one-sentence "summary" is a paraphrase).
    summary_min_chars: int = 300
    # A summary whose seeds spread over at least this fraction of the source's sentences condenses the
    # whole source: its source span becomes all of the source's content (0 disables).
    summary_whole_source: float = 0.25
    cluster_cosine: float = 0.34
    min_chars: int = 150
    # Passages under `min_chars` but at least this long on both sides are kept apart as context:
    # too short to report as reuse (same-topic sentences match that well), they are still the strongest
    # evidence a pair with nothing longer has. The detector reports them as WEAK pairs, which move the
    # score by their small WEAK share only (pan13-train pair mode: document-level ROC-AUC 0.981 ->
    # 0.986, plagdet and verdicts unchanged; of the 72 derived pairs that had no aligned pair at all,
    # 55 had a sentence-level seed, against 222 of the 1776 such case-free pairs).
    short_min_chars: int = 40
    # A passage that is mostly a copy (at least `copy_share` of its submitted words inside word
    # `copy_ngram`-grams the source side also has) ends where the copied n-grams end, on both sides.
    # The edge trimming keeps a whole edge sentence that shares a few words with the other side in any
    # order, which is right for reworded reuse but kept same-topic neighbours of verbatim copies: on
    # pan13-train's verbatim cases 309 detections ran past the case on the source side, by a median
    # of ~200 characters (one sentence). Whole corpus in pair mode: none 0.895 -> 0.916, the other
    # obfuscations within 0.2 point (on a sample, share 0.6 cost random 0.5 point; 4-grams cut less).
    copy_ngram: int = 5
    copy_share: float = 0.7
    # Sentences that no sentence-level seed explains on either side are compared again as windows of
    # this many consecutive sentences (window against window, at the seed thresholds; 0 disables): a spinner
    # merges and splits sentences and shuffles clauses across their boundaries, which breaks the
    # one-to-one sentence match while the words stay nearby. A window match seeds only those of its
    # member pairs that are unseeded on both sides and still share words on their own (Dice and
    # cosine at least `window_member_*`), so a same-topic neighbour of a copied sentence is not pulled
    # in. Passages alone on 300 pairs a type (scratch run, pan13-train): random 0.838 -> 0.857,
    # translation 0.862 -> 0.872, summary 0.787 -> 0.815, verbatim 0.915 -> 0.913. Whole corpus in pair
    # mode, with `summary_only_reuse`: entire 0.871 -> 0.884, random 0.850 -> 0.866, translation 0.862
    # -> 0.881, clean pairs with a detection 1.5 % -> 2.0 %.
    window_sentences: int = 2
    window_member_dice: float = 0.2
    window_member_cosine: float = 0.2
    # A seeded sentence whose partner's neighbours (up to `merge_reach` sentences away, unseeded) explain
    # more of its words joins them too: a spinner merges two or three source sentences into one (or
    # splits one), and a seed with only one of them left the passage too short to report or cut its
    # edges inside the reuse. A neighbour joins while the tf-idf cosine of the sentence against the
    # growing run rises (a verbatim 1:1 copy has nothing left to explain, so it never grows) and the
    # neighbour alone reaches `merge_member_cosine`. Whole pan13-train in pair mode: random 0.866 ->
    # 0.875, translation 0.882 -> 0.886, none 0.929 -> 0.931, summary 0.789 -> 0.788, entire 0.886 ->
    # 0.891, clean pairs with a detection 1.2 % -> 1.4 % (0 disables; on a 1000-pair subset a 0.05
    # minimum gain or a reach of 1 gained less, and no member floor cost translation 0.7 point).
    merge_reach: int = 2
    merge_member_cosine: float = 0.2
    # Before the narrow passages are built, a seed is dropped as a stray when its sentence has other
    # partners in its cluster and its partner (with the run of consecutive partners it belongs to, the
    # sentences a merged sentence joins) lies more than `stray_reach` sentences off the cluster's
    # diagonal (the median of source minus submitted position over its seeds): a same-topic look-alike
    # of a reused sentence a few sentences away, which stretched the passage past the reuse (mostly
    # on the source side; 0 disables). Random obfuscation moves words across sentence boundaries, so
    # order within the diagonal band is free: a longest in-order chain (scratch variant) dropped real
    # seeds. 1000-pair subset, pair mode, entire: 0.8988 without; reach 2 / 3 / 4 / 5: 0.9031 /
    # 0.9069 / 0.9052 / 0.9032 (an earlier rule, a partner more than 3 sentences from every other
    # sentence's partners: 0.9032). Whole pan13-train: entire 0.891 -> 0.895 (precision 0.904 ->
    # 0.925, recall 0.883 -> 0.873), none 0.931 -> 0.935, random 0.875 -> 0.878, translation 0.886 ->
    # 0.895, summary 0.788 -> 0.783 (the earlier rule: 0.895 too, precision 0.918).
    stray_reach: int = 3
    # A pair whose only passages are too short to report still reports those of at least
    # `lone_min_chars` (shorter side) with a tf-idf cosine of at least `lone_min_cosine` (0 disables).
    # Random obfuscation breaks a reused passage's sentences until only one or two still seed, which
    # leaves it under `min_chars`; beside a reportable passage, a short one is mostly a same-topic
    # look-alike elsewhere in the related source. pan13-train, pair mode (scratch count over stop 15's
    # whole-corpus run; "in a case" = over half of both sides inside one): of the short passages passing
    # these thresholds, 28 of 85 lie in a case where the pair has a reportable passage, 34 of 40 where
    # it has none (3 of the 6 others on clean pairs). Whole corpus in pair mode, entire / random / clean
    # pairs with a detection / document AUC: off 0.8962 / 0.8762 / 1.4 % / 0.9853; cosine 0.4 0.8984 /
    # 0.8832 / 1.6 % / 0.9844; 0.45 0.8985 / 0.8827 / 1.6 % / 0.9845; 0.5 0.8981 / 0.8818 / 1.5 % /
    # 0.9849 (80 characters instead of 100: the same on the 1000-pair subset).
    lone_min_chars: int = 100
    lone_min_cosine: float = 0.45


@dataclass(frozen=True, slots=True)
class Sentence:
    start: int
    end: int
    # Position of the paragraph (in the content paragraphs given) that holds the sentence.
    paragraph: int
    terms: Counter[str]


@dataclass(frozen=True, slots=True)
class Passage:
    """A reused passage: sentence ranges (inclusive) and character spans on both sides."""

    submitted_sentences: tuple[int, int]
    source_sentences: tuple[int, int]
    submitted_span: tuple[int, int]
    source_span: tuple[int, int]
    # Content paragraph positions covered on each side (first, last).
    submitted_paragraphs: tuple[int, int]
    source_paragraphs: tuple[int, int]
    cosine: float
    seeds: int
    # Found with the wide source gap and swapped in as a summary (see PassageParams.summary_ratio).
    summary: bool = False


@lru_cache(maxsize=131072)
def stem_word(word: str) -> str:
    with _STEMMER_LOCK:
        return str(_STEMMER.stemWord(word))


def _sentence_terms(sentence: str) -> Counter[str]:
    # map over a list: the per-word work stays in C (same terms, same first-seen order).
    return Counter(map(stem_word, [w for w in words(sentence) if w not in STOPWORDS and len(w) > 1]))


# Paragraphs recur across Checks (every Check against a source re-reads its paragraphs, and a repeated
# submission re-reads its own): their sentences and terms are kept per paragraph text, for texts up to
# PARAGRAPH_CACHE_MAX_CHARS (segment.py caps paragraphs at 1200 normalised characters; raw markup can add
# to that), which bounds the cache to tens of MB. The Counters are shared and never mutated.
PARAGRAPH_CACHE_MAX_CHARS = 4000


@lru_cache(maxsize=4096)
def _paragraph_sentences(raw: str) -> tuple[tuple[int, int, Counter[str]], ...]:
    found = []
    for start, end in split_sentences(raw, 0, len(raw)):
        terms = _sentence_terms(raw[start:end])
        if terms:
            found.append((start, end, terms))
    return tuple(found)


def sentences(text: str, paragraphs: Sequence[Paragraph]) -> list[Sentence]:
    out = []
    for position, paragraph in enumerate(paragraphs):
        first, stop = paragraph.start, paragraph.end
        # split_sentences reads outside its range only to find where the word before a full stop
        # starts, which stops at whitespace: a paragraph after whitespace splits alone exactly as in
        # its article, so its sentences can come from the per-paragraph cache.
        if (
            0 <= first <= stop <= len(text)
            and stop - first <= PARAGRAPH_CACHE_MAX_CHARS
            and (first == 0 or text[first - 1].isspace())
        ):
            for start, end, terms in _paragraph_sentences(text[first:stop]):
                out.append(Sentence(first + start, first + end, position, terms))
            continue
        for start, end in split_sentences(text, first, stop):
            terms = _sentence_terms(text[start:end])
            if terms:
                out.append(Sentence(start, end, position, terms))
    return out


def _weights(left: Sequence[Sentence], right: Sequence[Sentence]) -> dict[str, float]:
    """Inverse sentence frequency over both documents: a term in every sentence says nothing."""
    # One counting pass in C over every sentence's distinct terms (Counter.update per sentence is a
    # Python-level call each).
    frequency = Counter(itertools.chain.from_iterable(s.terms.keys() for s in (*left, *right)))
    total = len(left) + len(right)
    return {term: math.log(total / count) + 1.0 for term, count in frequency.items()}


def _norm(terms: Counter[str], weights: dict[str, float]) -> float:
    return math.sqrt(sum((c * weights[t]) ** 2 for t, c in terms.items()))


def _dot(a: Counter[str], b: Counter[str], weights: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(count * b[t] * weights[t] ** 2 for t, count in a.items() if t in b)


def _cosine(a: Counter[str], b: Counter[str], weights: dict[str, float]) -> float:
    dot = _dot(a, b, weights)
    if dot == 0.0:
        return 0.0
    return dot / (_norm(a, weights) * _norm(b, weights))


def seeds(
    left: Sequence[Sentence], right: Sequence[Sentence], weights: dict[str, float], params: PassageParams
) -> list[tuple[int, int]]:
    return [(i, j) for i, j, _, _ in scored_seeds(left, right, weights, params.seed_dice, params.seed_cosine)]


def scored_seeds(
    left: Sequence[Sentence],
    right: Sequence[Sentence],
    weights: dict[str, float],
    min_dice: float,
    min_cosine: float,
) -> list[tuple[int, int, float, float]]:
    """Sentence pairs (i, j, Dice, cosine) whose Dice and weighted cosine reach the minimums, in order."""
    scorer = _SeedScorer(left, right, weights)
    return scorer.scored(scorer.left, scorer.right, min_dice, min_cosine)


_SCORED_ROWS_PER_BLOCK = 256


@dataclass(frozen=True, slots=True)
class _TermRows:
    """Rows of term counts (sentences, or runs of them) as flat entry arrays ordered by row: entry k is
    `counts[k]` of vocabulary term `columns[k]` in row `rows[k]`, each term once per row; row r's
    entries are `starts[r]:starts[r + 1]`."""

    columns: np.ndarray
    counts: np.ndarray
    rows: np.ndarray
    size: int
    starts: np.ndarray

    @classmethod
    def of(cls, sentences_: Sequence[Sentence], columns: np.ndarray) -> _TermRows:
        """The sentences' rows; `columns` starts with their terms' vocabulary positions, in order."""
        lengths = np.fromiter((len(s.terms) for s in sentences_), dtype=np.int64, count=len(sentences_))
        total = int(lengths.sum())
        counts = itertools.chain.from_iterable(s.terms.values() for s in sentences_)
        return cls(
            columns[:total],
            np.fromiter(counts, dtype=np.float64, count=total),
            np.repeat(np.arange(len(sentences_)), lengths),
            len(sentences_),
            np.concatenate(([0], np.cumsum(lengths))),
        )

    def block(self, first: int, stop: int) -> _TermRows:
        """Rows `first` to `stop` (exclusive), renumbered from 0."""
        begin, end = int(self.starts[first]), int(self.starts[stop])
        return _TermRows(
            self.columns[begin:end],
            self.counts[begin:end],
            self.rows[begin:end] - first,
            stop - first,
            self.starts[first : stop + 1] - begin,
        )

    def windows(self, firsts: Sequence[int], size: int, width: int) -> _TermRows:
        """The summed term counts of the runs of `size` consecutive rows starting at `firsts`."""
        first = np.asarray(firsts, dtype=np.int64)
        begin, end = self.starts[first], self.starts[first + size]
        lengths = end - begin
        # A run's entries are one contiguous slice: gather them all, then sum each (run, term) once.
        offsets = np.arange(int(lengths.sum())) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        entry = np.repeat(begin, lengths) + offsets
        run = np.repeat(np.arange(first.size), lengths)
        keys, inverse = np.unique(run * width + self.columns[entry], return_inverse=True)
        rows = keys // width
        return _TermRows(
            keys % width,
            np.bincount(inverse, weights=self.counts[entry]),
            rows,
            first.size,
            np.searchsorted(rows, np.arange(first.size + 1)),
        )


class _SeedScorer:
    """Dice and weighted cosine of every pair of rows of the two sides, in a few numpy products.

    Per-pair loops over Counters did the same and were most of the matching CPU spent on candidates that
    turn out unrelated — the usual case, since most submitted articles are original: on the throughput
    benchmark's Checks (~2.5 same-topic candidates each, nearly all ORIGINAL) the seed search was 62 % of
    the per-source work. Dice is exact; a cosine can differ from the per-pair sum in its last bits
    (another summation order), which the hot-path tests and the PAN per-pair details check.
    """

    def __init__(
        self, left: Sequence[Sentence], right: Sequence[Sentence], weights: dict[str, float]
    ) -> None:
        everywhere = list(itertools.chain.from_iterable(s.terms for s in (*left, *right)))
        vocabulary = {term: k for k, term in enumerate(dict.fromkeys(everywhere))}
        self.width = len(vocabulary)
        self.weights = np.fromiter(map(weights.__getitem__, vocabulary), dtype=np.float64, count=self.width)
        columns = np.fromiter(map(vocabulary.__getitem__, everywhere), dtype=np.int64, count=len(everywhere))
        self.left = _TermRows.of(left, columns)
        self.right = _TermRows.of(right, columns[int(self.left.starts[-1]) :])

    def scored(
        self, left: _TermRows, right: _TermRows, min_dice: float, min_cosine: float
    ) -> list[tuple[int, int, float, float]]:
        """Row pairs (i, j, Dice, cosine) sharing a term whose Dice and cosine reach the minimums, in
        (i, j) order. Dice counts distinct terms; the cosine weighs each count by its term's weight."""
        found: list[tuple[int, int, float, float]] = []
        # Blocks of left rows bound the dense arrays (rows x the other side's rows, and rows x shared
        # terms) for the longest texts the limits allow.
        for first in range(0, left.size, _SCORED_ROWS_PER_BLOCK):
            stop = min(left.size, first + _SCORED_ROWS_PER_BLOCK)
            found.extend(
                (first + i, j, dice, cosine)
                for i, j, dice, cosine in self._scored_block(
                    left.block(first, stop), right, min_dice, min_cosine
                )
            )
        return found

    def _scored_block(
        self, left: _TermRows, right: _TermRows, min_dice: float, min_cosine: float
    ) -> list[tuple[int, int, float, float]]:
        if left.size == 0 or right.size == 0:
            return []
        present = np.zeros((2, self.width), dtype=bool)
        present[0, left.columns] = True
        present[1, right.columns] = True
        common = np.flatnonzero(present[0] & present[1])
        if common.size == 0:
            return []
        position = np.full(self.width, -1, dtype=np.int64)
        position[common] = np.arange(common.size)
        mine, theirs = self._dense(left, position, common.size), self._dense(right, position, common.size)
        shared = (mine > 0).astype(np.float64) @ (theirs > 0).astype(np.float64).T
        dice = 2.0 * shared / np.add.outer(np.diff(left.starts), np.diff(right.starts))
        candidate = (shared > 0) & (dice >= min_dice)
        if not candidate.any():
            return []
        weight = self.weights[common]
        dot = (mine * weight) @ (theirs * weight).T
        norms = np.outer(self._norms(left), self._norms(right))
        cosine = np.divide(dot, norms, out=np.zeros_like(dot), where=candidate)
        rows, columns = np.nonzero(candidate & (cosine >= min_cosine))
        pair_dice, pair_cosine = dice[rows, columns].tolist(), cosine[rows, columns].tolist()
        return list(zip(rows.tolist(), columns.tolist(), pair_dice, pair_cosine, strict=True))

    @staticmethod
    def _dense(side: _TermRows, position: np.ndarray, width: int) -> np.ndarray:
        """The side's counts of the shared terms only (the others add to no pair's Dice or dot)."""
        out = np.zeros((side.size, width))
        where = position[side.columns]
        kept = where >= 0
        out[side.rows[kept], where[kept]] = side.counts[kept]
        return out

    def _norms(self, side: _TermRows) -> np.ndarray:
        weighted = side.counts * self.weights[side.columns]
        return np.sqrt(np.bincount(side.rows, weights=weighted * weighted, minlength=side.size))


class _SentenceWindows:
    """One side's sentences and the size of the runs of consecutive sentences compared as windows."""

    def __init__(self, sentences_: Sequence[Sentence], size: int) -> None:
        self.sentences = sentences_
        self.size = size

    def firsts(self, wanted: set[int]) -> list[int]:
        """The first position of each run holding at least one sentence of `wanted`."""
        return [
            first
            for first in range(len(self.sentences) - self.size + 1)
            if not wanted.isdisjoint(range(first, first + self.size))
        ]


def tiered_seeds(
    left: _SentenceWindows,
    right: _SentenceWindows,
    weights: dict[str, float],
    params: PassageParams,
    weak: PassageParams,
) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """The seeds of `params` and those of `weak` (thresholds no higher), each plus the seeds of sentence
    windows among the sentences its tier leaves unseeded on both sides (see
    PassageParams.window_sentences), sorted.

    One scored pass over the sentence pairs and one over the window pairs serve both tiers: the weak
    tier's candidates are among the lower thresholds' (its unseeded sentences are among the full
    tier's), so both are filtered out of the same scored pairs, with the same results as a separate
    pass per tier (tests/unit/test_hot_paths.py keeps that two-pass code as the reference)."""
    low_dice, low_cosine = min(params.seed_dice, weak.seed_dice), min(params.seed_cosine, weak.seed_cosine)
    scorer = _SeedScorer(left.sentences, right.sentences, weights)
    plain = scorer.scored(scorer.left, scorer.right, low_dice, low_cosine)
    tiers = [
        (
            tier,
            [(i, j) for i, j, dice, cosine in plain if dice >= tier.seed_dice and cosine >= tier.seed_cosine],
        )
        for tier in (params, weak)
    ]
    unseeded = [_unseeded(left, right, found) for _, found in tiers]
    if left.size < 2 or not all(unseeded[0]):
        return tiers[0][1], tiers[1][1]
    # Runs over the full tier's unseeded sentences hold every run the weak tier looks at.
    matches = _window_matches(left, right, scorer, unseeded[0], low_dice, low_cosine)
    results = []
    for (tier, found), (unseeded_left, unseeded_right) in zip(tiers, unseeded, strict=True):
        mine = [
            match
            for match in matches
            if match[2] >= tier.seed_dice
            and match[3] >= tier.seed_cosine
            and not unseeded_left.isdisjoint(range(match[0], match[0] + left.size))
            and not unseeded_right.isdisjoint(range(match[1], match[1] + right.size))
        ]
        results.append(
            _with_window_members(left, right, weights, found, (unseeded_left, unseeded_right), mine, tier)
            if unseeded_left and unseeded_right
            else list(found)
        )
    return results[0], results[1]


def _unseeded(
    left: _SentenceWindows, right: _SentenceWindows, found: Sequence[tuple[int, int]]
) -> tuple[set[int], set[int]]:
    return (
        set(range(len(left.sentences))) - {i for i, _ in found},
        set(range(len(right.sentences))) - {j for _, j in found},
    )


def _window_matches(
    left: _SentenceWindows,
    right: _SentenceWindows,
    scorer: _SeedScorer,
    unseeded: tuple[set[int], set[int]],
    min_dice: float,
    min_cosine: float,
) -> list[tuple[int, int, float, float]]:
    """Window pairs (first sentence of each run, Dice, cosine) among the runs covering `unseeded`."""
    left_firsts, right_firsts = left.firsts(unseeded[0]), right.firsts(unseeded[1])
    if not left_firsts or not right_firsts:
        return []
    scored = scorer.scored(
        scorer.left.windows(left_firsts, left.size, scorer.width),
        scorer.right.windows(right_firsts, right.size, scorer.width),
        min_dice,
        min_cosine,
    )
    return [(left_firsts[i], right_firsts[j], dice, cosine) for i, j, dice, cosine in scored]


def _with_window_members(
    left: _SentenceWindows,
    right: _SentenceWindows,
    weights: dict[str, float],
    found: Sequence[tuple[int, int]],
    unseeded: tuple[set[int], set[int]],
    matches: Sequence[tuple[int, int, float, float]],
    params: PassageParams,
) -> list[tuple[int, int]]:
    """`found` plus the member pairs of the window `matches` (`_window_matches`) that are unseeded on
    both sides and still share words alone, sorted."""
    unseeded_left, unseeded_right = unseeded
    added: set[tuple[int, int]] = set()
    for first_left, first_right, _, _ in matches:
        for a in range(first_left, first_left + left.size):
            for b in range(first_right, first_right + right.size):
                if a in unseeded_left and b in unseeded_right and (a, b) not in added:
                    mine, theirs = left.sentences[a].terms, right.sentences[b].terms
                    dice = 2.0 * len(mine.keys() & theirs.keys()) / (len(mine) + len(theirs))
                    if dice >= params.window_member_dice and (
                        _cosine(mine, theirs, weights) >= params.window_member_cosine
                    ):
                        added.add((a, b))
    return sorted({*found, *added})


def merged_seeds(
    left: Sequence[Sentence],
    right: Sequence[Sentence],
    weights: dict[str, float],
    found: Sequence[tuple[int, int]],
    params: PassageParams,
) -> list[tuple[int, int]]:
    """`found` plus the pairs of each seed's sentence with the unseeded neighbours of its partner that
    were merged into it or split from it (see PassageParams.merge_reach), sorted."""
    reach = params.merge_reach
    if reach < 1 or not found:
        return list(found)
    sides = (left, right)
    seeded = ({i for i, _ in found}, {j for _, j in found})
    added: set[tuple[int, int]] = set()
    for seed in found:
        for side in (0, 1):  # grow the run on this side around seed[side], against seed[1 - side]
            sentence = sides[1 - side][seed[1 - side]].terms
            run_side = sides[side]
            for step in (-1, 1):
                run = run_side[seed[side]].terms
                best = _cosine(sentence, run, weights)
                k = seed[side] + step
                while 0 <= k < len(run_side) and abs(k - seed[side]) <= reach and k not in seeded[side]:
                    neighbour = run_side[k].terms
                    grown = run + neighbour
                    cosine = _cosine(sentence, grown, weights)
                    if cosine <= best or _cosine(sentence, neighbour, weights) < params.merge_member_cosine:
                        break
                    run, best = grown, cosine
                    added.add((seed[0], k) if side == 1 else (k, seed[1]))
                    k += step
    return sorted({*found, *added})


def _split_by_gap(items: list[tuple[int, int]], side: int, max_gap: int) -> list[list[tuple[int, int]]]:
    ordered = sorted(items, key=lambda s: (s[side], s[1 - side]))
    groups: list[list[tuple[int, int]]] = [[ordered[0]]]
    for seed in ordered[1:]:
        if seed[side] - groups[-1][-1][side] > max_gap + 1:
            groups.append([seed])
        else:
            groups[-1].append(seed)
    return groups


def _cluster(found: list[tuple[int, int]], max_gap: int, source_gap: int) -> list[list[tuple[int, int]]]:
    """Split seed sets at gaps on either side until every cluster is dense on both sides."""
    pending = [found]
    done = []
    while pending:
        group = pending.pop()
        by_left = _split_by_gap(group, 0, max_gap)
        if len(by_left) > 1:
            pending.extend(by_left)
            continue
        by_right = _split_by_gap(group, 1, source_gap)
        if len(by_right) > 1:
            pending.extend(by_right)
            continue
        done.append(group)
    return done


def _without_strays(found: list[tuple[int, int]], max_gap: int, reach: int) -> list[tuple[int, int]]:
    """`found` without the stray seeds of each cluster (see PassageParams.stray_reach), sorted."""
    kept: list[tuple[int, int]] = []
    for cluster in _cluster(found, max_gap, max_gap):
        partners: tuple[dict[int, set[int]], dict[int, set[int]]] = ({}, {})  # per side: position -> partners
        for i, j in cluster:
            partners[0].setdefault(i, set()).add(j)
            partners[1].setdefault(j, set()).add(i)
        diagonal = statistics.median(j - i for i, j in cluster)
        survivors = [
            seed
            for seed in cluster
            if not any(_stray(seed, side, partners[side], diagonal, reach) for side in (0, 1))
        ]
        kept.extend(survivors)
    return sorted(kept)


def _stray(
    seed: tuple[int, int], side: int, partners: dict[int, set[int]], diagonal: float, reach: int
) -> bool:
    """Whether the seed's sentence on `side` has other partners and the run of consecutive partners the
    seed's partner belongs to (the sentences a merged sentence joins) lies more than `reach` sentences
    off the cluster's median offset `diagonal` (source position minus submitted position)."""
    own, partner = seed[side], seed[1 - side]
    mine = partners[own]
    if len(mine) == 1:
        return False
    first = last = partner
    while first - 1 in mine:
        first -= 1
    while last + 1 in mine:
        last += 1
    # Offsets as source minus submitted position, whichever side `own` is on.
    low, high = sorted((first - own, last - own) if side == 0 else (own - first, own - last))
    return not low - reach <= diagonal <= high + reach


def _merged_terms(sentences_: Sequence[Sentence], first: int, last: int) -> Counter[str]:
    # Counting the sentences' elements gives the same counts in the same first-seen order as updating
    # with each Counter, but in C (Counter.update with a mapping loops in Python).
    return Counter(itertools.chain.from_iterable(s.terms.elements() for s in sentences_[first : last + 1]))


def _extend(
    found: list[tuple[int, int]],
    left: Sequence[Sentence],
    right: Sequence[Sentence],
    weights: dict[str, float],
    params: PassageParams,
    max_gap: int,
    source_gap: int,
    strong: frozenset[tuple[int, int]] | None = None,
) -> list[Passage]:
    passages = []
    for cluster in _cluster(found, max_gap, source_gap):
        if strong is not None and strong.isdisjoint(cluster):
            continue
        l_first, l_last = min(s[0] for s in cluster), max(s[0] for s in cluster)
        r_first, r_last = min(s[1] for s in cluster), max(s[1] for s in cluster)
        cosine = _cosine(_merged_terms(left, l_first, l_last), _merged_terms(right, r_first, r_last), weights)
        if cosine < params.cluster_cosine and max_gap > 0 and len(cluster) > 1:
            narrower = _extend(
                cluster, left, right, weights, params, max_gap - 1, max(0, source_gap - 1), strong
            )
            passages.extend(narrower)
            continue
        passages.append(
            Passage(
                submitted_sentences=(l_first, l_last),
                source_sentences=(r_first, r_last),
                submitted_span=(left[l_first].start, left[l_last].end),
                source_span=(right[r_first].start, right[r_last].end),
                submitted_paragraphs=(left[l_first].paragraph, left[l_last].paragraph),
                source_paragraphs=(right[r_first].paragraph, right[r_last].paragraph),
                cosine=cosine,
                seeds=len(cluster),
            )
        )
    return passages


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] < b[1] and b[0] < a[1]


def _filter(passages: list[Passage], params: PassageParams) -> tuple[list[Passage], list[Passage]]:
    """The passages long enough to report and the shorter ones kept as context, each in submitted order."""
    kept: list[Passage] = []
    # Better passages first: an overlapping weaker one is the same reuse seen twice, or noise.
    for passage in sorted(passages, key=lambda p: (p.cosine * p.seeds, p.cosine), reverse=True):
        if any(_overlaps(passage.submitted_span, k.submitted_span) for k in kept):
            continue
        kept.append(passage)
    kept.sort(key=lambda p: p.submitted_span)
    shortest = [min(span_length(p.submitted_span), span_length(p.source_span)) for p in kept]
    reportable = [p for p, n in zip(kept, shortest, strict=True) if n >= params.min_chars]
    short = [p for p, n in zip(kept, shortest, strict=True) if params.short_min_chars <= n < params.min_chars]
    if not reportable and params.lone_min_chars > 0:
        lone = [
            p
            for p, n in zip(kept, shortest, strict=True)
            if params.lone_min_chars <= n < params.min_chars and p.cosine >= params.lone_min_cosine
        ]
        if lone:
            reportable = lone
            short = [p for p in short if p not in lone]
    return reportable, short


def _seeded_sentences(passage: Passage, found: Sequence[tuple[int, int]]) -> int:
    (l_first, l_last), (r_first, r_last) = passage.submitted_sentences, passage.source_sentences
    return len({i for i, j in found if l_first <= i <= l_last and r_first <= j <= r_last})


def _sources_per_sentence(passage: Passage, grown: Sequence[tuple[int, int]]) -> float:
    """Distinct source sentences per distinct submitted sentence among the seeds inside the passage."""
    (l_first, l_last), (r_first, r_last) = passage.submitted_sentences, passage.source_sentences
    inside = [(i, j) for i, j in grown if l_first <= i <= l_last and r_first <= j <= r_last]
    return len({j for _, j in inside}) / max(1, len({i for i, _ in inside}))


def _condenses(passage: Passage, grown: Sequence[tuple[int, int]], params: PassageParams) -> bool:
    """Whether the passage's source side is long enough, for its seeds' spread, to be what it condenses."""
    ratio = span_length(passage.source_span) / max(1, span_length(passage.submitted_span))
    if ratio >= params.summary_long_ratio:
        cap = params.summary_long_max_sources_per_sentence
    elif ratio >= params.summary_ratio:
        cap = params.summary_max_sources_per_sentence
    else:
        return False
    return _sources_per_sentence(passage, grown) <= cap


def _prefer_summaries(
    narrow: list[Passage],
    wide: list[Passage],
    found: Sequence[tuple[int, int]],
    grown: Sequence[tuple[int, int]],
    right: Sequence[Sentence],
    params: PassageParams,
) -> list[Passage]:
    """Swap in wide-gap passages that condense a much longer source stretch (summaries).

    `found` are the full-threshold seeds, `grown` those and the weak ones the wide passages grew from.
    """
    summaries = [
        dataclasses.replace(w, summary=True)
        for w in wide
        if span_length(w.submitted_span) >= params.summary_min_chars
        and _seeded_sentences(w, found) >= params.summary_min_sentences
        and _single_cover(w, narrow) < params.summary_max_single_cover
        and _condenses(w, grown, params)
        and not (params.summary_only_reuse and _reused_elsewhere(w, narrow, params))
    ]
    if params.summary_whole_source > 0:
        summaries = [
            _to_whole_source(w, right)
            if w.source_sentences[1] - w.source_sentences[0] + 1 >= params.summary_whole_source * len(right)
            else w
            for w in summaries
        ]
    kept = [n for n in narrow if not any(_overlaps(n.submitted_span, w.submitted_span) for w in summaries)]
    return kept + summaries


def _reused_elsewhere(wide: Passage, narrow: Sequence[Passage], params: PassageParams) -> bool:
    """Whether a narrow passage of reportable length lies outside the wide passage's submitted span."""
    return any(
        not _overlaps(n.submitted_span, wide.submitted_span)
        and min(span_length(n.submitted_span), span_length(n.source_span)) >= params.min_chars
        for n in narrow
    )


def _single_cover(wide: Passage, narrow: Sequence[Passage]) -> float:
    """The largest fraction of the wide passage's submitted span one length-balanced narrow passage covers."""
    first, last = wide.submitted_span
    return max(
        (
            (min(last, n.submitted_span[1]) - max(first, n.submitted_span[0])) / max(1, last - first)
            for n in narrow
            if span_length(n.source_span) <= 2 * span_length(n.submitted_span)
        ),
        default=0.0,
    )


def _to_whole_source(passage: Passage, right: Sequence[Sentence]) -> Passage:
    return dataclasses.replace(
        passage,
        source_sentences=(0, len(right) - 1),
        source_span=(right[0].start, right[-1].end),
        source_paragraphs=(right[0].paragraph, right[-1].paragraph),
    )


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)
_CLOSING_PUNCTUATION = frozenset(".!?;:,\"'’”)]")


class _Tokens(NamedTuple):
    """Stemmed words of a span and their character spans, as parallel lists."""

    stems: list[str]
    spans: list[tuple[int, int]]


def _tokens(text: str, span: tuple[int, int]) -> _Tokens:
    # Words via findall and map (C loops); spans via one cheap call per match.
    stems = list(map(stem_word, map(str.lower, _TOKEN.findall(text, span[0], span[1]))))
    return _Tokens(stems, [m.span() for m in _TOKEN.finditer(text, span[0], span[1])])


def _trim_edges(
    mine: _Tokens,
    other: _Tokens,
    head_end: int,
    tail_start: int,
    span_end: int,
    window: int = 3,
) -> tuple[int, int] | None:
    """Span from the first to the last run of `window` consecutive words that all occur on the other
    side, cutting at most into the first and last sentence.

    Sentence boundaries are too coarse at the edges: a passage pasted into a document often starts or
    ends mid-sentence. A run of words the other side also has is where reuse demonstrably begins; words
    before it are not. The words may come in any order: shuffled and replaced words (random
    obfuscation, machine translation) break word bigrams inside reused text, which made the earlier
    shared-bigram rule cut reused words off (pan13-train, passages alone on 400 pairs a type: random
    0.856 -> 0.863, translation 0.868 -> 0.877, summary 0.608 -> 0.620, verbatim unchanged at 0.895;
    runs of 2 words extended verbatim edges into unrelated words, 0.896 -> 0.883). The cut stops at
    the edge sentences because obfuscation breaks word runs inside reused sentences too.
    """
    vocabulary = set(other.stems)
    present = [stem in vocabulary for stem in mine.stems]
    last_start = len(present) - window
    # Only the first and the last run matter: scan in from both ends.
    first = next((k for k in range(last_start + 1) if all(present[k : k + window])), None)
    if first is None:
        return None
    last_hit = next(k for k in range(last_start, first - 1, -1) if all(present[k : k + window]))
    start = min(mine.spans[first][0], head_end)
    last = last_hit + window - 1
    end = max(_word_end(mine, last, span_end), tail_start)
    return (start, end) if start < end else None


def _word_end(tokens: _Tokens, last: int, span_end: int) -> int:
    """Where a span ending on word `last` ends: on the span's last word, at the span's end, which keeps
    the punctuation after it (the sentence's full stop)."""
    return tokens.spans[last][1] if last < len(tokens.stems) - 1 else span_end


def _within(tokens: _Tokens, span: tuple[int, int]) -> _Tokens:
    """The words of `tokens` inside `span` (a narrower span of the same text), without re-tokenising."""
    first = bisect.bisect_left(tokens.spans, (span[0], -1))
    last = first
    while last < len(tokens.spans) and tokens.spans[last][1] <= span[1]:
        last += 1
    return _Tokens(tokens.stems[first:last], tokens.spans[first:last])


def _tighten(
    passage: Passage,
    left: Sequence[Sentence],
    right: Sequence[Sentence],
    texts: tuple[str, str],
    params: PassageParams,
) -> Passage:
    l_first, l_last = passage.submitted_sentences
    r_first, r_last = passage.source_sentences
    left_tokens = _tokens(texts[0], passage.submitted_span)
    right_tokens = _tokens(texts[1], passage.source_span)
    left_span = _trim_edges(
        left_tokens, right_tokens, left[l_first].end, left[l_last].start, passage.submitted_span[1]
    )
    right_span = _trim_edges(
        right_tokens, left_tokens, right[r_first].end, right[r_last].start, passage.source_span[1]
    )
    if passage.summary and passage.source_sentences == (0, len(right) - 1):
        right_span = None  # a summary of the whole source claims all of it, edges included
    tightened = dataclasses.replace(
        passage,
        submitted_span=left_span or passage.submitted_span,
        source_span=right_span or passage.source_span,
    )
    if passage.summary:
        return tightened
    return _to_copied_ngrams(
        tightened,
        _within(left_tokens, tightened.submitted_span),
        _within(right_tokens, tightened.source_span),
        texts,
        params,
    )


def _ngram_hits(mine: _Tokens, other: _Tokens, n: int) -> list[int]:
    """Start positions of `mine`'s word n-grams that also occur in `other`."""
    theirs = {tuple(other.stems[k : k + n]) for k in range(len(other.stems) - n + 1)}
    return [k for k in range(len(mine.stems) - n + 1) if tuple(mine.stems[k : k + n]) in theirs]


def _to_copied_ngrams(
    passage: Passage,
    left_tokens: _Tokens,
    right_tokens: _Tokens,
    texts: tuple[str, str],
    params: PassageParams,
) -> Passage:
    """A mostly copied passage cut to the hull of its shared word n-grams on each side; others unchanged.

    `left_tokens` / `right_tokens` are the words of the passage's submitted and source spans.
    """
    n = params.copy_ngram
    left_hits = _ngram_hits(left_tokens, right_tokens, n)
    right_hits = _ngram_hits(right_tokens, left_tokens, n)
    if not left_hits or not right_hits:
        return passage
    copied_words = {k for hit in left_hits for k in range(hit, hit + n)}
    if len(copied_words) < params.copy_share * len(left_tokens.stems):
        return passage

    def hull(text: str, tokens: _Tokens, hits: list[int], span: tuple[int, int]) -> tuple[int, int]:
        # Inside the span the copy's closing punctuation (a full stop, a closing quote) is kept too.
        end = _word_end(tokens, hits[-1] + n - 1, span[1])
        while end < span[1] and text[end] in _CLOSING_PUNCTUATION:
            end += 1
        return (tokens.spans[hits[0]][0], end)

    return dataclasses.replace(
        passage,
        submitted_span=hull(texts[0], left_tokens, left_hits, passage.submitted_span),
        source_span=hull(texts[1], right_tokens, right_hits, passage.source_span),
    )


def find_passages(
    submitted_text: str,
    submitted_paragraphs: Sequence[Paragraph],
    source_text: str,
    source_paragraphs: Sequence[Paragraph],
    params: PassageParams | None = None,
) -> list[Passage]:
    """Reused passages between two documents' content paragraphs, in submitted order."""
    return find_passages_and_short(
        submitted_text, submitted_paragraphs, source_text, source_paragraphs, params
    )[0]


def find_passages_and_short(
    submitted_text: str,
    submitted_paragraphs: Sequence[Paragraph],
    source_text: str,
    source_paragraphs: Sequence[Paragraph],
    params: PassageParams | None = None,
) -> tuple[list[Passage], list[Passage]]:
    """`find_passages`, and the passages it drops as shorter than `min_chars` (down to
    `short_min_chars`), each in submitted order."""
    params = params or PassageParams()
    left = sentences(submitted_text, submitted_paragraphs)
    right = sentences(source_text, source_paragraphs)
    if not left or not right:
        return [], []
    weights = _weights(left, right)
    windows = (
        _SentenceWindows(left, params.window_sentences),
        _SentenceWindows(right, params.window_sentences),
    )
    weak_params = dataclasses.replace(
        params,
        seed_cosine=min(params.seed_cosine, params.weak_seed_cosine),
        seed_dice=min(params.seed_dice, params.weak_seed_dice),
    )
    found, grown = tiered_seeds(*windows, weights, params, weak_params)
    found = merged_seeds(left, right, weights, found, params)
    # Weak seeds grow the wide passages only from clusters holding a full seed; without a weaker tier
    # the wide passages grow from the full seeds, merged ones included.
    strong: frozenset[tuple[int, int]] | None = None
    if weak_params != params:
        strong = frozenset(found)
    else:
        grown = found
    if not found:
        return [], []
    narrow_seeds = _without_strays(found, params.max_gap, params.stray_reach) if params.stray_reach else found
    extended = _extend(narrow_seeds, left, right, weights, params, params.max_gap, params.max_gap)
    if params.source_max_gap > params.max_gap:
        # The summary test counts full-threshold seeds only (its thresholds were measured on them).
        extended = _prefer_summaries(
            extended,
            _extend(grown, left, right, weights, params, params.max_gap, params.source_max_gap, strong),
            found,
            grown,
            right,
            params,
        )
    texts = (submitted_text, source_text)
    return _filter([_tighten(p, left, right, texts, params) for p in extended], params)
