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

import dataclasses
import itertools
import math
import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import snowballstemmer

from rewrite_detector_server.core.features import STOPWORDS, words
from rewrite_detector_server.core.segment import split_sentences
from rewrite_detector_server.core.types import Paragraph

_STEMMER = snowballstemmer.stemmer("english")
# snowballstemmer keeps the word being stemmed in the stemmer object: concurrent Checks (gRPC threads)
# corrupt each other's state (IndexError). The lru_cache in front makes the lock rarely taken.
_STEMMER_LOCK = threading.Lock()


@dataclass(frozen=True, slots=True)
class PassageParams:
    seed_cosine: float = 0.33
    seed_dice: float = 0.33
    max_gap: int = 4
    # Gap allowed between seeds on the source side; larger lets a summary's few sentences gather the
    # long source stretch they condense.
    source_max_gap: int = 24
    # A passage found with the wide source gap is taken as a summary (replacing the narrow-gap passages
    # it overlaps) when its source span is at least this many times longer than its submitted span.
    summary_ratio: float = 5.0
    cluster_cosine: float = 0.34
    min_chars: int = 150


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


@lru_cache(maxsize=131072)
def _stem(word: str) -> str:
    with _STEMMER_LOCK:
        return str(_STEMMER.stemWord(word))


def sentences(text: str, paragraphs: Sequence[Paragraph]) -> list[Sentence]:
    out = []
    for position, paragraph in enumerate(paragraphs):
        for start, end in split_sentences(text, paragraph.start, paragraph.end):
            terms = Counter(_stem(w) for w in words(text[start:end]) if w not in STOPWORDS and len(w) > 1)
            if terms:
                out.append(Sentence(start, end, position, terms))
    return out


def _weights(left: Sequence[Sentence], right: Sequence[Sentence]) -> dict[str, float]:
    """Inverse sentence frequency over both documents: a term in every sentence says nothing."""
    frequency: Counter[str] = Counter()
    for sentence in (*left, *right):
        frequency.update(sentence.terms.keys())
    total = len(left) + len(right)
    return {term: math.log(total / count) + 1.0 for term, count in frequency.items()}


def _cosine(a: Counter[str], b: Counter[str], weights: dict[str, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    dot = sum(count * b[t] * weights[t] ** 2 for t, count in a.items() if t in b)
    if dot == 0.0:
        return 0.0
    norm_a = math.sqrt(sum((c * weights[t]) ** 2 for t, c in a.items()))
    norm_b = math.sqrt(sum((c * weights[t]) ** 2 for t, c in b.items()))
    return dot / (norm_a * norm_b)


def _dice(a: Counter[str], b: Counter[str]) -> float:
    shared = len(a.keys() & b.keys())
    return 2.0 * shared / (len(a) + len(b))


def seeds(
    left: Sequence[Sentence], right: Sequence[Sentence], weights: dict[str, float], params: PassageParams
) -> list[tuple[int, int]]:
    # An inverted index keeps this near-linear: most sentence pairs share no term at all.
    postings: dict[str, list[int]] = {}
    for j, sentence in enumerate(right):
        for term in sentence.terms:
            postings.setdefault(term, []).append(j)
    found = []
    for i, sentence in enumerate(left):
        candidates = {j for term in sentence.terms for j in postings.get(term, ())}
        for j in sorted(candidates):
            other = right[j].terms
            if (
                _dice(sentence.terms, other) >= params.seed_dice
                and _cosine(sentence.terms, other, weights) >= params.seed_cosine
            ):
                found.append((i, j))
    return found


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


def _merged_terms(sentences_: Sequence[Sentence], first: int, last: int) -> Counter[str]:
    total: Counter[str] = Counter()
    for sentence in sentences_[first : last + 1]:
        total.update(sentence.terms)
    return total


def _extend(
    found: list[tuple[int, int]],
    left: Sequence[Sentence],
    right: Sequence[Sentence],
    weights: dict[str, float],
    params: PassageParams,
    max_gap: int,
    source_gap: int,
) -> list[Passage]:
    passages = []
    for cluster in _cluster(found, max_gap, source_gap):
        l_first, l_last = min(s[0] for s in cluster), max(s[0] for s in cluster)
        r_first, r_last = min(s[1] for s in cluster), max(s[1] for s in cluster)
        cosine = _cosine(_merged_terms(left, l_first, l_last), _merged_terms(right, r_first, r_last), weights)
        if cosine < params.cluster_cosine and max_gap > 0 and len(cluster) > 1:
            narrower = _extend(cluster, left, right, weights, params, max_gap - 1, max(0, source_gap - 1))
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


def _filter(passages: list[Passage], params: PassageParams) -> list[Passage]:
    kept: list[Passage] = []
    # Better passages first: an overlapping weaker one is the same reuse seen twice, or noise.
    for passage in sorted(passages, key=lambda p: (p.cosine * p.seeds, p.cosine), reverse=True):
        if any(_overlaps(passage.submitted_span, k.submitted_span) for k in kept):
            continue
        kept.append(passage)
    return sorted(
        (
            p
            for p in kept
            if p.submitted_span[1] - p.submitted_span[0] >= params.min_chars
            and p.source_span[1] - p.source_span[0] >= params.min_chars
        ),
        key=lambda p: p.submitted_span,
    )


def _length(span: tuple[int, int]) -> int:
    return span[1] - span[0]


def _prefer_summaries(narrow: list[Passage], wide: list[Passage], params: PassageParams) -> list[Passage]:
    """Swap in wide-gap passages that condense a much longer source stretch (summaries)."""
    summaries = [
        w for w in wide if _length(w.source_span) >= params.summary_ratio * _length(w.submitted_span)
    ]
    kept = [n for n in narrow if not any(_overlaps(n.submitted_span, w.submitted_span) for w in summaries)]
    return kept + summaries


_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


def _tokens(text: str, span: tuple[int, int]) -> list[tuple[str, int, int]]:
    return [(_stem(m.group().lower()), m.start(), m.end()) for m in _TOKEN.finditer(text, span[0], span[1])]


def _trim_edges(
    mine: list[tuple[str, int, int]],
    other: list[tuple[str, int, int]],
    head_end: int,
    tail_start: int,
    span_end: int,
) -> tuple[int, int] | None:
    """Span from the first to the last word that starts or ends a word bigram shared with the other side,
    cutting at most into the first and last sentence.

    Sentence boundaries are too coarse at the edges: a passage pasted into a document often starts or
    ends mid-sentence. A shared bigram is where reuse demonstrably begins; words before it are not. The
    cut stops at the edge sentences because obfuscation (shuffled words, machine translation) breaks
    bigrams inside reused sentences too.
    """
    shared = {(a[0], b[0]) for a, b in itertools.pairwise(other)}
    hits = [k for k, (a, b) in enumerate(itertools.pairwise(mine)) if (a[0], b[0]) in shared]
    if not hits:
        return None
    start = min(mine[hits[0]][1], head_end)
    last = hits[-1] + 1
    # Ending on the passage's last word keeps the punctuation after it (the sentence's full stop).
    end = max(mine[last][2] if last < len(mine) - 1 else span_end, tail_start)
    return (start, end) if start < end else None


def _tighten(
    passage: Passage, left: Sequence[Sentence], right: Sequence[Sentence], texts: tuple[str, str]
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
    return dataclasses.replace(
        passage,
        submitted_span=left_span or passage.submitted_span,
        source_span=right_span or passage.source_span,
    )


def find_passages(
    submitted_text: str,
    submitted_paragraphs: Sequence[Paragraph],
    source_text: str,
    source_paragraphs: Sequence[Paragraph],
    params: PassageParams | None = None,
) -> list[Passage]:
    """Reused passages between two documents' content paragraphs, in submitted order."""
    params = params or PassageParams()
    left = sentences(submitted_text, submitted_paragraphs)
    right = sentences(source_text, source_paragraphs)
    if not left or not right:
        return []
    weights = _weights(left, right)
    found = seeds(left, right, weights, params)
    if not found:
        return []
    extended = _extend(found, left, right, weights, params, params.max_gap, params.max_gap)
    if params.source_max_gap > params.max_gap:
        extended = _prefer_summaries(
            extended,
            _extend(found, left, right, weights, params, params.max_gap, params.source_max_gap),
            params,
        )
    texts = (submitted_text, source_text)
    return _filter([_tighten(p, left, right, texts) for p in extended], params)
