"""Lexical fingerprints and the candidate sources they find (core/fingerprints.py, the store's table)."""

from __future__ import annotations

import dataclasses
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from rewrite_detector_models import HashingEmbedder
from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import ConfigError, Settings
from rewrite_detector_server.core.detector import Detector, RetrievalParams
from rewrite_detector_server.core.fingerprints import LexicalParams, fingerprints, lexical_candidates
from rewrite_detector_server.core.types import ArticleInput, Paragraph, Role
from rewrite_detector_server.storage import ArticleStore

DIM = 8

COPIED = (
    "The river authority opened all four sluice gates at Marlow on Sunday night after three days of rain. "
    "Engineers said the water level at the weir had risen by 1.8 metres since Thursday morning."
)
# The source holds the copied sentences inside a long paragraph about something else, so that the
# paragraph's embedding is dominated by the rest: the case embedding votes miss.
SOURCE_FILLER = (
    "The county council published its annual budget for schools, libraries and road repairs on Monday, "
    "with spending on adult social care rising for the fourth consecutive year. Councillors debated "
    "the proposed increase in parking charges at length, and a decision was postponed until the "
    "spring meeting, when the transport committee will present its review of bus subsidies. "
)
SOURCE_FILLER_AFTER = (
    " In sport, the rowing club announced a new coach for its junior squad, and the cricket ground will "
    "host a charity match in July. The library's summer reading challenge returns with prizes donated "
    "by local shops, and volunteers are needed to help at the museum's open weekend in August."
)


def test_fingerprints_ignore_stopwords_case_and_inflection() -> None:
    assert fingerprints("The state bank raised its rates") == fingerprints("state BANK RAISES rates")
    assert fingerprints("A state bank raised rates") & fingerprints("state bank") == fingerprints(
        "state bank"
    )
    assert not fingerprints("the river flooded") & fingerprints("a bakery reopened downtown")
    assert fingerprints("the of and") == frozenset()


def test_fingerprints_are_stable_across_processes() -> None:
    # Stored fingerprints must match those of a later process (Python's own hash() is salted).
    code = (
        "from rewrite_detector_server.core.fingerprints import fingerprints; print(sorted(fingerprints(%r)))"
    )
    text = "Engineers said the water level at the weir had risen"
    runs = {
        subprocess.run(
            [sys.executable, "-c", code % text], capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    }
    assert runs == {str(sorted(fingerprints(text)))}
    assert all(-(2**63) <= f < 2**63 for f in fingerprints(text))


def test_candidates_count_per_submitted_paragraph_not_per_document() -> None:
    a, b = list(range(1, 7)), list(range(11, 15))
    postings = {f: np.array([100 + f % 2]) for f in a} | {f: np.array([200]) for f in b}
    located = {100: ("spread", 0), 101: ("spread", 1), 200: ("concentrated", 0)}
    params = LexicalParams(min_shared=4)
    found = lexical_candidates(
        [frozenset(a[:3]), frozenset(a[3:]), frozenset(b)],
        lambda wanted, _limit: {f: postings[f] for f in wanted if f in postings},
        lambda ids: {i: located[i] for i in ids},
        params,
    )
    # "spread" shares 6 fingerprints with the document but only 3 with any one paragraph.
    assert found == [("concentrated", 4)]
    assert lexical_candidates([frozenset(b)], lambda w, n: {}, lambda i: {}, params) == []
    off = dataclasses.replace(params, min_shared=0)
    assert lexical_candidates([frozenset(b)], lambda w, n: postings, lambda i: located, off) == []


def _article(article_id: str, texts: list[str]) -> tuple[ArticleInput, list[Paragraph], np.ndarray]:
    paragraphs, position = [], 0
    for i, text in enumerate(texts):
        role = Role.BOILERPLATE if text.startswith("Related") else Role.BODY
        paragraphs.append(Paragraph(index=i, start=position, end=position + len(text), text=text, role=role))
        position += len(text) + 2
    rng = np.random.default_rng(len(article_id))
    vectors = rng.standard_normal((sum(p.is_content for p in paragraphs), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return ArticleInput(id=article_id, text="\n\n".join(texts)), paragraphs, vectors


def _held_by(store: ArticleStore, text: str, limit: int = 100) -> dict[int, set[int]]:
    postings = store.fingerprint_postings(sorted(fingerprints(text)), limit)
    return {f: set(ids.tolist()) for f, ids in postings.items()}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ArticleStore]:
    opened = ArticleStore(tmp_path / "store.sqlite3", dimension=DIM)
    yield opened
    opened.close()


def test_store_keeps_fingerprints_in_step_with_paragraphs(store: ArticleStore) -> None:
    article, paragraphs, vectors = _article("a", [COPIED, "Related article: click here"])
    outcome = store.upsert(article, "h1", paragraphs, vectors)
    (vector_id,) = outcome.added_ids.tolist()
    held = _held_by(store, COPIED)
    assert held and all(ids == {vector_id} for ids in held.values())
    # Boilerplate is never a candidate: it has no vector id and no fingerprints.
    assert _held_by(store, "Related article: click here") == {}

    replaced = _article("a", ["A bakery on Mill Lane reopened with a new bread oven."])
    store.upsert(replaced[0], "h2", replaced[1], replaced[2])
    assert _held_by(store, COPIED) == {}
    assert _held_by(store, "bakery on Mill Lane reopened")

    store.delete("a")
    assert _held_by(store, "bakery on Mill Lane reopened") == {}


def test_common_fingerprints_are_left_out(store: ArticleStore) -> None:
    for i in range(3):
        article, paragraphs, vectors = _article(
            f"a{i}", [f"Prime minister spoke. Item {i} unique{i} words{i}."]
        )
        store.upsert(article, f"h{i}", paragraphs, vectors)
    common = fingerprints("prime minister")
    assert set(store.fingerprint_postings(sorted(common), 3)) == common
    assert store.fingerprint_postings(sorted(common), 2) == {}
    assert len(store.fingerprint_postings(sorted(fingerprints("unique1 words1")), 2)) == 1


def test_version_1_store_gets_its_fingerprints_on_open(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite3"
    with_fingerprints = ArticleStore(path, dimension=DIM)
    article, paragraphs, vectors = _article("a", [COPIED])
    with_fingerprints.upsert(article, "h", paragraphs, vectors)
    with_fingerprints.close()
    # What an older build left behind: schema 1, no fingerprint table.
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE fingerprints")
    conn.execute("PRAGMA user_version=1")
    conn.commit()
    conn.close()

    reopened = ArticleStore(path, dimension=DIM)
    try:
        assert _held_by(reopened, COPIED)
        assert reopened._conn.execute("PRAGMA user_version").fetchone()[0] == 2
    finally:
        reopened.close()


def _detector(tmp_path: Path, lexical: LexicalParams) -> Detector:
    detector = build_detector(Settings(data_dir=tmp_path / "data"), HashingEmbedder())
    # The hashing test embedder scores a paragraph that merely contains a copied passage higher than a
    # real model does (~0.6 here); a stricter vote threshold recreates the real model's miss.
    detector.retrieval = RetrievalParams(vote_similarity=0.9, lexical=lexical)
    return detector


@pytest.mark.parametrize("min_shared", [0, 4])
def test_check_finds_a_source_whose_copied_passage_embeddings_miss(tmp_path: Path, min_shared: int) -> None:
    detector = _detector(tmp_path / str(min_shared), LexicalParams(min_shared=min_shared))
    try:
        source = SOURCE_FILLER + COPIED + SOURCE_FILLER_AFTER
        detector.index(ArticleInput(id="council-and-river", text=source))
        detector.index(ArticleInput(id="unrelated", text="A bakery on Mill Lane reopened with a new oven."))
        submitted = (
            "Flood warning for the lower town.\n\n"
            + COPIED
            + "\n\nResidents were told to move cars away from the towpath before midnight."
        )
        paragraph_vectors = detector._embed(detector._segment(submitted, "t").content_paragraphs)
        voted = {
            hit.article_id
            for row in detector.storage.search(paragraph_vectors, 10)
            for hit in row
            if hit.score >= detector.retrieval.vote_similarity
        }
        assert "council-and-river" not in voted  # the premise: embedding votes alone miss it

        result = detector.check(submitted)
        found = [m.source_id for m in result.matches]
        if min_shared:
            assert found == ["council-and-river"]
            (pair,) = [p for p in result.matches[0].pairs if COPIED[:40] in p.submitted_text]
            assert source[pair.source_span[0] : pair.source_span[1]].startswith(COPIED[:40])
        else:
            assert found == []
    finally:
        detector.close()


def test_lexical_and_nprobe_settings_reach_the_detector(tmp_path: Path) -> None:
    settings = Settings.from_env(
        {
            "REWRITE_DETECTOR_LEXICAL_MIN_SHARED": "0",
            "REWRITE_DETECTOR_IVF_NPROBE": "4",  # not the default (8)
            "REWRITE_DETECTOR_IVF_REGROW": "2",
        },
        data_dir=tmp_path / "data",
    )
    detector = build_detector(settings, HashingEmbedder())
    try:
        assert detector.retrieval.lexical.min_shared == 0
        assert detector.storage.index._options.ivf_nprobe == 4  # type: ignore[attr-defined]
        assert detector.storage.index._options.ivf_regrow == 2  # type: ignore[attr-defined]
    finally:
        detector.close()


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("REWRITE_DETECTOR_LEXICAL_MIN_SHARED", "-1"),
        ("REWRITE_DETECTOR_IVF_NPROBE", "0"),
        ("REWRITE_DETECTOR_IVF_REGROW", "1"),
    ],
)
def test_bad_retrieval_settings_are_refused_with_the_variable_named(
    tmp_path: Path, variable: str, value: str
) -> None:
    settings = Settings.from_env({variable: value}, data_dir=tmp_path / "data")
    with pytest.raises(ConfigError, match=variable):
        build_detector(settings, HashingEmbedder())
    assert not (tmp_path / "data").exists()  # refused before anything was opened
