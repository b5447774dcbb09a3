"""Verbatim reuse a PAN corpus leaves unannotated: text shared word for word with a source that is not
a designated pair of the suspicious document.

PAN annotates reuse only for its (suspicious, source) pairs. In pan13-train many suspicious documents
also share long verbatim stretches with other sources (the host text of suspicious-document00005 is an
APUS catalogue page whose paragraphs recur in six unpaired source documents). A retrieval-mode run
that reports those copies is right, yet strict PAN scoring counts every such character against
precision. This module finds those stretches from the texts alone — no model, no detector output — so
the harness can report (a) the score a perfect detector of verbatim reuse would get under strict
scoring and (b) the run scored against PAN's cases plus these stretches. Neither is a PAN measure.

Definition: word 8-grams (lower-cased ``\\w+`` tokens) shared by both documents, chained along one
diagonal when at most ``max_gap_words`` words changed or were inserted between them; a chain
covering at least ``min_words`` words is one stretch. Hand-written because it must be independent of
the detector's own fingerprints and alignment, which are what is being measured.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from rewrite_detector_server.evaluation.plagdet import Annotation

__all__ = ["VerbatimParams", "unannotated_verbatim_cases", "verbatim_stretches"]

_WORD = re.compile(r"\w+")
Span = tuple[int, int]


@dataclass(frozen=True, slots=True)
class VerbatimParams:
    ngram: int = 8
    # ~150 characters of English: shorter shared runs are mostly stock phrases and headings.
    min_words: int = 25
    # A changed or inserted word or two (a typo fix, a dropped "the") does not break a copy.
    max_gap_words: int = 3


def _tokens(text: str) -> list[re.Match[str]]:
    return list(_WORD.finditer(text))


def _grams(tokens: Sequence[re.Match[str]], n: int) -> list[tuple[str, ...]]:
    words = [t.group().casefold() for t in tokens]
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def verbatim_stretches(
    suspicious: str, source: str, params: VerbatimParams = VerbatimParams()
) -> list[tuple[Span, Span]]:
    """Maximal chains of shared word n-grams between the two texts, as (suspicious span, source span)."""
    n = params.ngram
    sus_tokens, src_tokens = _tokens(suspicious), _tokens(source)
    source_positions: dict[tuple[str, ...], list[int]] = defaultdict(list)
    for j, gram in enumerate(_grams(src_tokens, n)):
        source_positions[gram].append(j)
    # Each chain: [first i, last i, first j, last j] in n-gram start positions.
    chains: list[list[int]] = []
    open_chains: list[list[int]] = []
    for i, gram in enumerate(_grams(sus_tokens, n)):
        positions = source_positions.get(gram)
        if not positions:
            continue
        # A changed word breaks the n n-grams that contain it: the next shared n-gram is n + 1 further.
        reach = n + params.max_gap_words
        open_chains = [c for c in open_chains if i - c[1] <= reach]
        for j in positions:
            best: list[int] | None = None
            best_skew = 0
            for chain in open_chains:
                step_i, step_j = i - chain[1], j - chain[3]
                skew = abs(step_i - step_j)  # how far off the chain's diagonal this position is
                fits = step_i > 0 and 0 < step_j <= reach and skew <= params.max_gap_words
                if fits and (best is None or skew < best_skew):
                    best, best_skew = chain, skew
            if best is not None:
                best[1], best[3] = i, j
            else:
                chain = [i, i, j, j]
                chains.append(chain)
                open_chains.append(chain)
    stretches = []
    for first_i, last_i, first_j, last_j in chains:
        if last_i - first_i + n < params.min_words:
            continue
        stretches.append(
            (
                (sus_tokens[first_i].start(), sus_tokens[last_i + n - 1].end()),
                (src_tokens[first_j].start(), src_tokens[last_j + n - 1].end()),
            )
        )
    return stretches


def unannotated_verbatim_cases(
    suspicious_ids: Iterable[str],
    source_ids: Iterable[str],
    designated: set[tuple[str, str]],
    read_suspicious: Callable[[str], str],
    read_source: Callable[[str], str],
    params: VerbatimParams = VerbatimParams(),
) -> list[Annotation]:
    """Verbatim stretches between each suspicious document and every source that is not one of its
    designated pairs (`designated` holds (suspicious id, source id) keys)."""
    n = params.ngram
    # Candidate sources by shared n-grams (hashes keep the index to a few hundred MB on pan13-train).
    sources_of_gram: dict[int, list[str]] = defaultdict(list)
    for source_id in source_ids:
        for gram in set(_grams(_tokens(read_source(source_id)), n)):
            sources_of_gram[hash(gram)].append(source_id)
    cases: list[Annotation] = []
    for suspicious_id in suspicious_ids:
        text = read_suspicious(suspicious_id)
        shared: dict[str, int] = defaultdict(int)
        for gram in set(_grams(_tokens(text), n)):
            for source_id in sources_of_gram.get(hash(gram), ()):
                shared[source_id] += 1
        min_grams = params.min_words - n + 1
        for source_id, count in sorted(shared.items()):
            if count < min_grams or (suspicious_id, source_id) in designated:
                continue
            for sus_span, src_span in verbatim_stretches(text, read_source(source_id), params):
                cases.append(Annotation.from_spans(suspicious_id, sus_span, source_id, src_span))
    return cases
