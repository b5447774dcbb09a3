"""Document-level baselines for the PAN benchmark: one similarity score per (suspicious, source) pair.

- word 3-gram containment: |G(susp) ∩ G(src)| / |G(susp)| over lower-cased word trigrams (Broder's
  containment of the suspicious document in the source);
- TF-IDF cosine: scikit-learn TfidfVectorizer (sublinear tf, English stop words) fitted on every
  document of the run;
- MinHash Jaccard: datasketch MinHash (128 permutations) over the same word trigrams;
- embedding cosine: cosine of the two documents' mean paragraph embeddings (content paragraphs as the
  core segments them, the same embedder and cache as the detector; the mean is L2-normalised).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence

import numpy as np
from datasketch import MinHash

from rewrite_detector_models.embedder import Embedder
from rewrite_detector_server.core.segment import segment

_WORD = re.compile(r"\w+", re.UNICODE)

BASELINES = ("word3_containment", "tfidf_cosine", "minhash_jaccard", "embedding_cosine")


def word_trigrams(text: str) -> set[tuple[str, str, str]]:
    words = _WORD.findall(text.lower())
    return set(zip(words, words[1:], words[2:], strict=False))


def containment(a: set[tuple[str, str, str]], b: set[tuple[str, str, str]]) -> float:
    return len(a & b) / len(a) if a else 0.0


def _minhash(shingles: set[tuple[str, str, str]], num_perm: int) -> MinHash:
    m = MinHash(num_perm=num_perm, seed=1)
    m.update_batch([" ".join(s).encode("utf-8") for s in shingles])
    return m


def mean_paragraph_embedding(text: str, embedder: Embedder) -> np.ndarray:
    texts = [p.text for p in segment(text).content_paragraphs] or [text]
    vectors = embedder.embed_batch(texts)
    mean = vectors.mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 0 else mean


def baseline_scores(
    pairs: Sequence[tuple[str, str]],
    read_suspicious: Callable[[str], str],
    read_source: Callable[[str], str],
    embedder: Embedder,
    *,
    num_perm: int = 128,
) -> tuple[dict[str, list[float]], dict[str, float]]:
    """Scores of every baseline for each (suspicious id, source id), and each baseline's seconds."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs: dict[tuple[str, str], str] = {}
    for susp, src in pairs:
        docs.setdefault(("susp", susp), read_suspicious(susp))
        docs.setdefault(("src", src), read_source(src))
    keys = list(docs)
    row = {k: i for i, k in enumerate(keys)}
    seconds: dict[str, float] = {}
    scores: dict[str, list[float]] = {}

    started = time.perf_counter()
    grams = {k: word_trigrams(docs[k]) for k in keys}
    scores["word3_containment"] = [containment(grams[("susp", s)], grams[("src", r)]) for s, r in pairs]
    trigram_seconds = time.perf_counter() - started
    seconds["word3_containment"] = trigram_seconds

    started = time.perf_counter()
    matrix = TfidfVectorizer(sublinear_tf=True, stop_words="english").fit_transform([docs[k] for k in keys])
    scores["tfidf_cosine"] = [
        float(matrix[row[("susp", s)]].multiply(matrix[row[("src", r)]]).sum()) for s, r in pairs
    ]
    seconds["tfidf_cosine"] = time.perf_counter() - started

    started = time.perf_counter()
    hashes = {k: _minhash(grams[k], num_perm) for k in keys}
    scores["minhash_jaccard"] = [float(hashes[("susp", s)].jaccard(hashes[("src", r)])) for s, r in pairs]
    seconds["minhash_jaccard"] = time.perf_counter() - started + trigram_seconds

    started = time.perf_counter()
    means = {k: mean_paragraph_embedding(docs[k], embedder) for k in keys}
    scores["embedding_cosine"] = [float(means[("susp", s)] @ means[("src", r)]) for s, r in pairs]
    seconds["embedding_cosine"] = time.perf_counter() - started
    return scores, seconds
