"""Sentence-level tightening of an aligned pair's spans.

Paragraphs are the API's unit, but a reused passage often starts or ends inside a paragraph (a long
paragraph with one copied sentence, or PAN's 400-character cases inside 1,000-character blocks). Spans
are therefore trimmed to the first and last sentence on each side that has lexical support in the
other side. Sentences in between stay (a rewritten sentence inside a copied passage is still part of
it). A side with no lexically supported sentence keeps its whole span: that is a pure paraphrase, and
the embedding evidence is paragraph-level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from rewrite_detector_server.core.features import TextProfile, profile
from rewrite_detector_server.core.segment import normalize_inline, split_sentences
from rewrite_detector_server.core.types import Paragraph


@dataclass(frozen=True, slots=True)
class RefineParams:
    # A sentence is supported when this share of its content words occurs in one sentence of the other
    # side (or in the other side as a whole, for summaries that condense several sentences).
    sentence_support: float = 0.5
    # Sentences with fewer content words than this cannot anchor a span (too easy to match by chance).
    min_content_words: int = 3


@dataclass(frozen=True, slots=True)
class _Sentence:
    start: int
    end: int
    profile: TextProfile


def _sentences(text: str, paragraphs: Sequence[Paragraph]) -> list[_Sentence]:
    out: list[_Sentence] = []
    for paragraph in paragraphs:
        for start, end in split_sentences(text, paragraph.start, paragraph.end):
            out.append(_Sentence(start, end, profile(normalize_inline(text[start:end]))))
    return out


def _support(sentence: TextProfile, others: Sequence[_Sentence], whole: frozenset[str]) -> float:
    words = sentence.content_words
    if not words:
        return 0.0
    best_single = max((len(words & o.profile.content_words) for o in others), default=0)
    # A sentence supported only by the union of the other side's words needs a higher bar than one
    # supported by a single sentence; blend the two so neither dominates.
    return max(best_single, 0.8 * len(words & whole)) / len(words)


def _trim(mine: list[_Sentence], others: list[_Sentence], params: RefineParams) -> tuple[int, int] | None:
    whole = frozenset().union(*(o.profile.content_words for o in others)) if others else frozenset()
    supported = [
        s
        for s in mine
        if len(s.profile.content_words) >= params.min_content_words
        and _support(s.profile, others, whole) >= params.sentence_support
    ]
    if not supported:
        return None
    return supported[0].start, supported[-1].end


def refine_spans(
    submitted_text: str,
    submitted_paragraphs: Sequence[Paragraph],
    source_text: str,
    source_paragraphs: Sequence[Paragraph],
    params: RefineParams | None = None,
) -> tuple[tuple[int, int], tuple[int, int]]:
    """Tight (submitted_span, source_span) for one aligned group of paragraphs."""
    params = params or RefineParams()
    default_sub = (submitted_paragraphs[0].start, submitted_paragraphs[-1].end)
    default_src = (source_paragraphs[0].start, source_paragraphs[-1].end)
    sub_sentences = _sentences(submitted_text, submitted_paragraphs)
    src_sentences = _sentences(source_text, source_paragraphs)
    sub_span = _trim(sub_sentences, src_sentences, params) or default_sub
    src_span = _trim(src_sentences, sub_sentences, params) or default_src
    return sub_span, src_span
