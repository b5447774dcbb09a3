"""Lexical and anchor evidence for a pair of texts. Pure functions over strings.

Semantic similarity alone cannot separate a spun rewrite from a same-topic article (both reach cosine
0.7-0.8 on single paragraphs), so every pair also carries:
- lexical overlap: containment of the shorter side's content words and word bigrams in the other side;
- anchor overlap: numbers, names and quoted words, which spinners rarely change.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

from rapidfuzz import fuzz

_QUOTE_TRANSLATION = str.maketrans({"‘": "'", "’": "'", "‚": "'", "“": '"', "”": '"', "„": '"', "`": "'"})
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_CAPITALISED = re.compile(r"\b[A-Z][\w'’-]*[A-Za-z]\b")
# The same matches, with sentence-initial ones (at the start of the text, or after a sentence end, quote
# or colon and at most one whitespace character) taken by the first branch, whose group stays empty:
# `findall` then yields "" for those and the name for the others, so the filter runs in C. A skipped name
# must still be consumed: rejecting it would let the scan restart inside it ("O'Neil" -> "Neil").
_SENTENCE_END = '[.!?"“:]'
_NAME_OR_SKIPPED = re.compile(
    rf"(?:^|(?<={_SENTENCE_END})|(?<={_SENTENCE_END}\s)){_CAPITALISED.pattern}|({_CAPITALISED.pattern})"
)
_QUOTED = re.compile(r"[\"“”]([^\"“”]{3,300})[\"“”]")

# A short fixed list instead of NLTK's: no corpus download is possible offline, and function words are
# all we need to drop so that overlap measures content words.
STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves said says say told one two
    """.split()  # noqa: SIM905 - a word list reads better as prose than as 170 quoted strings
)


def fold(text: str) -> str:
    """Case, quote and accent folding used before every lexical comparison."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTE_TRANSLATION).lower()
    return text


# Bounded small: entries are whole paragraphs; the cache only saves re-tokenising within one request.
@lru_cache(maxsize=4096)
def words(text: str) -> tuple[str, ...]:
    return tuple(_WORD.findall(fold(text)))


@dataclass(frozen=True, slots=True)
class TextProfile:
    """Precomputed word sets of one text, so an n x m comparison tokenises each text once."""

    content_words: frozenset[str]
    bigrams: frozenset[tuple[str, str]]
    anchors: frozenset[str]
    folded: str
    word_count: int


# Profiles of paragraph-sized texts are memoised: a Check profiles its own paragraphs once per candidate
# source, and the paragraphs of the sources it is compared with recur across Checks. Profiles are
# immutable, so sharing them is safe. Longer texts (whole passages, up to an article) are not kept: a few
# thousand of them could pin gigabytes.
PROFILE_CACHE_MAX_CHARS = 2000


def profile(text: str) -> TextProfile:
    if len(text) <= PROFILE_CACHE_MAX_CHARS:
        return _cached_profile(text)
    return _profile(text)


@lru_cache(maxsize=2048)
def _cached_profile(text: str) -> TextProfile:
    return _profile(text)


def _profile(text: str) -> TextProfile:
    tokens = words(text)
    return TextProfile(
        content_words=frozenset(tokens).difference(STOPWORDS),
        bigrams=frozenset(itertools.pairwise(tokens)),
        anchors=anchor_set(text),
        folded=" ".join(tokens),
        word_count=len(tokens),
    )


def anchor_set(text: str) -> frozenset[str]:
    """The distinct ``anchors`` of a text, found with whole-text regex calls (profile's hot path)."""
    found = {"#" + number.replace(",", "") for number in _NUMBER.findall(text)}
    for name in _NAME_OR_SKIPPED.findall(text):
        token = name.lower()
        if token and token not in STOPWORDS:
            found.add("@" + token.replace("’", "'"))
    for quoted in _QUOTED.findall(text):
        found.update("q" + token for token in words(quoted) if token not in STOPWORDS)
    return frozenset(found)


def anchors(text: str) -> Iterable[str]:
    """Numbers, capitalised names (not sentence-initial) and quoted words of a text.

    The reference definition, match by match; ``anchor_set`` computes the same set faster.
    """
    for match in _NUMBER.finditer(text):
        yield "#" + match.group().replace(",", "")
    for match in _CAPITALISED.finditer(text):
        start = match.start()
        before = text[max(0, start - 2) : start].strip()
        # Sentence-initial capitals are grammar, not names.
        if start == 0 or before.endswith((".", "!", "?", '"', "“", ":")):
            continue
        token = match.group().lower()
        if token not in STOPWORDS:
            yield "@" + token.replace("’", "'")
    for match in _QUOTED.finditer(text):
        for token in words(match.group(1)):
            if token not in STOPWORDS:
                yield "q" + token


def _containment(left: frozenset, right: frozenset) -> float:
    """|A ∩ B| / min(|A|, |B|): containment of the smaller set, so merges and splits still score high."""
    smaller = min(len(left), len(right))
    if smaller == 0:
        return 0.0
    return len(left & right) / smaller


def lexical_overlap(a: TextProfile, b: TextProfile) -> float:
    """Mean of content-word and word-bigram containment, in [0, 1]."""
    return 0.5 * _containment(a.content_words, b.content_words) + 0.5 * _containment(a.bigrams, b.bigrams)


def anchor_overlap(a: TextProfile, b: TextProfile) -> float:
    """Containment of anchors; 0 when either side has none (no evidence either way)."""
    return _containment(a.anchors, b.anchors)


def verbatim_ratio(a: TextProfile, b: TextProfile) -> float:
    """Normalised edit similarity (rapidfuzz) of the folded word streams, in [0, 1]."""
    if not a.folded or not b.folded:
        return 0.0
    return fuzz.ratio(a.folded, b.folded) / 100.0
