"""The PAN evaluation runner end to end on a tiny synthetic corpus, with the real detection core and the
hashing embedder (verbatim reuse is found by it; paraphrase quality is measured by bench/eval_pan.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from rewrite_detector_models import HashingEmbedder
from rewrite_detector_server.core.detector import Detector
from rewrite_detector_server.evaluation.pan import PanCorpus
from rewrite_detector_server.evaluation.run import (
    ENTIRE,
    clean_pair_false_positives,
    document_level,
    index_sources,
    pair_outcomes_from_retrieval,
    plagdet_by_label,
    run_pair,
    run_suspicious,
)
from rewrite_detector_server.storage import Storage

PARAGRAPHS = {
    "harbour": "The harbour authority approved a dredging plan on Tuesday, allowing container ships with "
    "deeper drafts to dock at the northern quay after three years of delays and repeated budget overruns.",
    "orchard": "Apple growers in the valley reported an early frost that damaged blossoms across most "
    "orchards, and several cooperatives warned that cider production could fall by a third this autumn.",
    "museum": "The city museum reopened its east wing with a collection of bronze age tools, pottery shards "
    "and woven baskets recovered from a peat bog by volunteers during last summer's excavation.",
    "chess": "A sixteen-year-old student won the regional chess championship after a tense final game that "
    "lasted almost six hours and ended with a knight sacrifice her opponent did not foresee.",
    "railway": "Engineers replaced the signalling cables along the coastal railway overnight, so the morning "
    "trains ran on time for the first time since the storm flooded the tunnel in March.",
    "bakery": "A family bakery celebrated its hundredth anniversary by handing out free rye loaves, baked to "
    "the founder's recipe, to everyone who queued outside the shop before nine in the morning.",
}


def _write_pair(root: Path, sub: str, susp: str, src: str, case: tuple[int, int, int, int] | None) -> None:
    directory = root / sub
    directory.mkdir(parents=True, exist_ok=True)
    feature = ""
    if case:
        feature = (
            f'<feature name="plagiarism" obfuscation="none" this_offset="{case[0]}" this_length="{case[1]}" '
            f'source_reference="{src}" source_offset="{case[2]}" source_length="{case[3]}" />'
        )
    (directory / f"{susp[:-4]}-{src[:-4]}.xml").write_text(
        f'<document reference="{susp}">{feature}</document>', "utf-8"
    )


@pytest.fixture
def corpus(tmp_path: Path) -> PanCorpus:
    root = tmp_path / "pan"
    (root / "src").mkdir(parents=True)
    (root / "susp").mkdir()
    source = "\n\n".join(PARAGRAPHS[k] for k in ("harbour", "orchard", "museum"))
    derived = "\n\n".join(PARAGRAPHS[k] for k in ("chess", "orchard", "railway"))
    clean = "\n\n".join(PARAGRAPHS[k] for k in ("chess", "railway", "bakery"))
    (root / "src" / "source-document00001.txt").write_text(source, "utf-8", newline="")
    (root / "susp" / "suspicious-document00001.txt").write_text(derived, "utf-8", newline="")
    (root / "susp" / "suspicious-document00002.txt").write_text(clean, "utf-8", newline="")
    reused = PARAGRAPHS["orchard"]
    case = (derived.index(reused), len(reused), source.index(reused), len(reused))
    _write_pair(root, "02-no-obfuscation", "suspicious-document00001.txt", "source-document00001.txt", case)
    _write_pair(root, "01-no-plagiarism", "suspicious-document00002.txt", "source-document00001.txt", None)
    return PanCorpus(root)


@pytest.fixture
def detector(tmp_path: Path) -> Iterator[Detector]:
    embedder = HashingEmbedder()
    storage = Storage.open(tmp_path / "data", model_name=embedder.name, dimension=embedder.dimension)
    yield Detector(embedder, storage)
    storage.close()


def test_pair_mode_scores_a_verbatim_paragraph_exactly(corpus: PanCorpus, detector: Detector) -> None:
    outcomes = [run_pair(detector, corpus, pair) for pair in corpus.pairs]
    derived = next(o for o in outcomes if o.suspicious_id == "suspicious-document00001.txt")
    clean = next(o for o in outcomes if o.suspicious_id == "suspicious-document00002.txt")
    assert len(derived.detections) == 1 and derived.score > 0.0
    assert clean.detections == () and clean.verdict == "ORIGINAL"
    scores = plagdet_by_label(corpus.pairs, [d for o in outcomes for d in o.detections])
    assert scores[ENTIRE].plagdet == 1.0
    assert scores["none"].plagdet == 1.0 and scores["no-plagiarism"].plagdet == 1.0
    rates = clean_pair_false_positives(corpus.pairs, outcomes, labels=["no-plagiarism"])
    assert (rates.pairs, rates.with_detection, rates.not_original) == (1, 0.0, 0.0)
    by_key = {o.key: o.score for o in outcomes}
    doc = document_level(corpus.pairs, {"ours": [by_key[p.key] for p in corpus.pairs]})
    assert doc["ours"][ENTIRE]["auc"] == 1.0


def test_retrieval_mode_finds_the_source_without_being_told(corpus: PanCorpus, detector: Detector) -> None:
    assert index_sources(detector, corpus, [p.source_id for p in corpus.pairs]) == {}
    checked = [run_suspicious(detector, corpus, s) for s in sorted({p.suspicious_id for p in corpus.pairs})]
    derived, clean = checked
    assert [m.source_id for m in derived.matches] == ["source-document00001.txt"]
    assert clean.matches == ()
    per_pair = pair_outcomes_from_retrieval(corpus.pairs, checked)
    assert {o.suspicious_id: o.found for o in per_pair} == {
        "suspicious-document00001.txt": True,
        "suspicious-document00002.txt": False,
    }
    scores = plagdet_by_label(corpus.pairs, [d for o in checked for d in o.detections])
    assert scores[ENTIRE].plagdet == 1.0


def test_a_detection_on_the_clean_pair_costs_precision(corpus: PanCorpus, detector: Detector) -> None:
    outcomes = [run_pair(detector, corpus, pair) for pair in corpus.pairs]
    true_detection = next(d for o in outcomes for d in o.detections)
    false_detection = type(true_detection)(
        "suspicious-document00002.txt", 0, 50, "source-document00001.txt", 0, 50
    )
    scores = plagdet_by_label(corpus.pairs, [true_detection, false_detection])
    assert scores[ENTIRE].precision == 0.5 and scores[ENTIRE].recall == 1.0
    assert scores["no-plagiarism"].plagdet == 0.0 and scores["none"].plagdet == 1.0


def test_a_source_starting_with_markup_is_read_as_the_plain_text_it_is(
    tmp_path: Path, detector: Detector
) -> None:
    # Three pan13-train sources start with a stray <a href> line; sniffed as HTML, they were extracted
    # and their detections indexed the extracted text (source spans shifted by the dropped markup).
    root = tmp_path / "pan-markup"
    (root / "src").mkdir(parents=True)
    (root / "susp").mkdir()
    source = '<a href="http://example.org/ad?id=1" target="_blank">ad</a>\n' + "\n\n".join(
        PARAGRAPHS[k] for k in ("harbour", "orchard", "museum")
    )
    derived = "\n\n".join(PARAGRAPHS[k] for k in ("chess", "orchard", "railway"))
    (root / "src" / "source-document00001.txt").write_text(source, "utf-8", newline="")
    (root / "susp" / "suspicious-document00001.txt").write_text(derived, "utf-8", newline="")
    reused = PARAGRAPHS["orchard"]
    case = (derived.index(reused), len(reused), source.index(reused), len(reused))
    _write_pair(root, "02-no-obfuscation", "suspicious-document00001.txt", "source-document00001.txt", case)
    corpus = PanCorpus(root)

    paired = [run_pair(detector, corpus, pair) for pair in corpus.pairs]
    assert plagdet_by_label(corpus.pairs, [d for o in paired for d in o.detections])[ENTIRE].plagdet == 1.0
    assert index_sources(detector, corpus, ["source-document00001.txt"]) == {}
    checked = run_suspicious(detector, corpus, "suspicious-document00001.txt")
    assert plagdet_by_label(corpus.pairs, list(checked.detections))[ENTIRE].plagdet == 1.0
