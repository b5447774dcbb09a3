"""The PAN corpus reader on a tiny synthetic corpus in the PAN 2013 layout, and on the real one if present."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from rewrite_detector_server.evaluation.pan import CorpusFormatError, PanCorpus, sub_corpus_label
from rewrite_detector_server.evaluation.plagdet import Annotation

REAL_CORPUS = Path("/work/shared/data/pan13-train")

# A reused sentence inside CRLF text: offsets must count "\r\n" as two characters.
SOURCE_TEXT = "Intro line.\r\nThe reused passage sits here.\r\nTail — with a dash.\r\n"
SUSPICIOUS_TEXT = "Héllo there.\r\n\r\nThe reused passage sits here.\r\nEnd.\r\n"
PASSAGE = "The reused passage sits here."


def _feature(**attrs: object) -> str:
    return "<feature " + " ".join(f'{k}="{v}"' for k, v in attrs.items()) + " />"


def _write_pair(directory: Path, susp: str, src: str, features: list[str]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    body = "\n".join(f"  {f}" for f in features)
    (directory / f"{susp[:-4]}-{src[:-4]}.xml").write_text(
        f'<document reference="{susp}">\n  {_feature(name="about", title="news")}\n{body}\n</document>\n',
        "utf-8",
    )


def make_corpus(root: Path, *, clean_pairs: int = 4, derived_pairs: int = 2) -> Path:
    (root / "src").mkdir(parents=True)
    (root / "susp").mkdir()
    listed = []
    for i in range(clean_pairs + derived_pairs):
        susp, src = f"suspicious-document{i:05d}.txt", f"source-document{i:05d}.txt"
        (root / "susp" / susp).write_bytes(SUSPICIOUS_TEXT.encode("utf-8"))
        (root / "src" / src).write_bytes(SOURCE_TEXT.encode("utf-8"))
        listed.append(f"{susp} {src}")
        if i < clean_pairs:
            _write_pair(root / "01-no-plagiarism", susp, src, [])
        else:
            case = _feature(
                name="plagiarism",
                obfuscation="none",
                this_offset=SUSPICIOUS_TEXT.index(PASSAGE),
                this_length=len(PASSAGE),
                source_reference=src,
                source_offset=SOURCE_TEXT.index(PASSAGE),
                source_length=len(PASSAGE),
            )
            _write_pair(root / "02-no-obfuscation", susp, src, [case])
    # A translation-style case: no obfuscation attribute, only type.
    susp, src = "suspicious-document00099.txt", "source-document00099.txt"
    (root / "susp" / susp).write_bytes(SUSPICIOUS_TEXT.encode("utf-8"))
    (root / "src" / src).write_bytes(SOURCE_TEXT.encode("utf-8"))
    listed.append(f"{susp} {src}")
    translated = _feature(
        name="plagiarism",
        type="translation-chain",
        this_offset=0,
        this_length=5,
        source_reference=src,
        source_offset=0,
        source_length=6,
    )
    _write_pair(root / "04-translation-obfuscation", susp, src, [translated])
    (root / "pairs").write_text("\n".join(listed) + "\n", "utf-8")
    return root


def test_reads_pairs_cases_and_labels(tmp_path: Path) -> None:
    corpus = PanCorpus(make_corpus(tmp_path / "pan"))
    assert len(corpus.pairs) == 7
    assert corpus.sub_corpora == ("01-no-plagiarism", "02-no-obfuscation", "04-translation-obfuscation")
    assert Counter(p.label for p in corpus.pairs) == {"no-plagiarism": 4, "none": 2, "translation": 1}
    derived = corpus.pair("suspicious-document00004.txt", "source-document00004.txt")
    assert derived is not None and derived.is_derived and derived.label == "none"
    (case,) = derived.cases
    assert case.obfuscation == "none"
    assert case.annotation == Annotation(
        "suspicious-document00004.txt",
        SUSPICIOUS_TEXT.index(PASSAGE),
        len(PASSAGE),
        "source-document00004.txt",
        SOURCE_TEXT.index(PASSAGE),
        len(PASSAGE),
    )
    translated = corpus.pair("suspicious-document00099.txt", "source-document00099.txt")
    assert translated is not None and translated.cases[0].obfuscation == "translation-chain"
    clean = corpus.pair("suspicious-document00000.txt", "source-document00000.txt")
    assert clean is not None and not clean.is_derived and clean.label == "no-plagiarism"
    assert len(corpus.cases()) == 3


def test_offsets_index_the_text_read_without_newline_translation(tmp_path: Path) -> None:
    corpus = PanCorpus(make_corpus(tmp_path / "pan"))
    pair = corpus.pair("suspicious-document00005.txt", "source-document00005.txt")
    assert pair is not None
    a = pair.cases[0].annotation
    suspicious, source = corpus.read_suspicious(pair.suspicious_id), corpus.read_source(pair.source_id)
    assert "\r\n" in suspicious
    assert suspicious[a.suspicious_offset : a.suspicious_end] == PASSAGE
    assert source[a.source_offset : a.source_end] == PASSAGE


def test_subset_is_stratified_deterministic_and_interleaved(tmp_path: Path) -> None:
    corpus = PanCorpus(make_corpus(tmp_path / "pan", clean_pairs=20, derived_pairs=10))
    first = corpus.subset(6, seed=1)
    assert first == corpus.subset(6, seed=1)
    assert len(first) == 6 and len(set(first)) == 6
    # 20 : 10 : 1 pairs -> 6 picks: every stratum present, the rest proportional.
    assert Counter(p.label for p in first) == {"no-plagiarism": 3, "none": 2, "translation": 1}
    other_seeds = {tuple(p.key for p in corpus.subset(6, seed=s)) for s in range(2, 8)}
    assert len(other_seeds) > 1
    # Interleaved: the first three already hold both large strata.
    assert {p.label for p in first[:3]} >= {"no-plagiarism", "none"}
    everything = corpus.subset(None, seed=3)
    assert sorted(everything, key=lambda p: p.key) == sorted(corpus.pairs, key=lambda p: p.key)
    assert corpus.subset(0, seed=1) == []


def test_sub_corpus_labels() -> None:
    assert sub_corpus_label("01-no-plagiarism") == "no-plagiarism"
    assert sub_corpus_label("02-no-obfuscation") == "none"
    assert sub_corpus_label("05-summary-obfuscation") == "summary"
    assert sub_corpus_label("07-something-new") == "something-new"


def test_rejects_what_is_not_a_pan_corpus(tmp_path: Path) -> None:
    with pytest.raises(CorpusFormatError, match="no src/ directory"):
        PanCorpus(tmp_path)
    root = make_corpus(tmp_path / "pan")
    (root / "pairs").write_text("suspicious-document00000.txt source-document00000.txt\n", "utf-8")
    with pytest.raises(CorpusFormatError, match="does not match"):
        PanCorpus(root)


def test_rejects_a_case_naming_another_source(tmp_path: Path) -> None:
    root = make_corpus(tmp_path / "pan")
    bad = _feature(
        name="plagiarism",
        this_offset=0,
        this_length=3,
        source_reference="source-document00777.txt",
        source_offset=0,
        source_length=3,
    )
    _write_pair(root / "02-no-obfuscation", "suspicious-document00004.txt", "source-document00004.txt", [bad])
    with pytest.raises(CorpusFormatError, match="names source"):
        PanCorpus(root)


@pytest.mark.skipif(not REAL_CORPUS.is_dir(), reason=f"PAN 2013 training corpus not present at {REAL_CORPUS}")
def test_real_pan13_corpus_counts_and_verbatim_offsets() -> None:
    corpus = PanCorpus(REAL_CORPUS)
    assert len(corpus.pairs) == 5185
    cases_per_label = Counter(p.label for p in corpus.pairs for _ in p.cases)
    assert cases_per_label == {"none": 1252, "random": 1267, "translation": 1250, "summary": 238}
    # Verbatim cases match their source once whitespace is normalised (SOURCE.md), which only
    # holds if offsets index the text exactly as read.
    verbatim = [p for p in corpus.subset(40, seed=0) if p.label == "none"]
    assert verbatim
    for pair in verbatim:
        suspicious, source = corpus.read_suspicious(pair.suspicious_id), corpus.read_source(pair.source_id)
        for a in pair.annotations:
            left = suspicious[a.suspicious_offset : a.suspicious_end]
            right = source[a.source_offset : a.source_end]
            assert " ".join(left.split()) == " ".join(right.split())
