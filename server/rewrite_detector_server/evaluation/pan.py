"""Reader for PAN text-alignment corpora in the PAN 2013 layout.

Layout (pan13-text-alignment-training-corpus-2013-01-21; see /work/shared/data/pan13-train/SOURCE.md):

    src/source-documentNNNNN.txt          source documents
    susp/suspicious-documentNNNNN.txt     suspicious documents
    pairs                                 every "suspicious source" pair (file names), one a line
    NN-<name>/                            one directory per sub-corpus, one XML per pair, named
        <suspicious stem>-<source stem>.xml   after the pair, holding zero or more
        <feature name="plagiarism" this_offset= this_length= source_reference= source_offset=
                 source_length= obfuscation=|type= .../>

Offsets are Python str indexes into the documents decoded as UTF-8 and read WITHOUT newline
translation, which is how `read_suspicious` / `read_source` read them.
"""

from __future__ import annotations

import random
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rewrite_detector_server.evaluation.plagdet import Annotation

__all__ = ["CorpusFormatError", "PanCase", "PanCorpus", "PanPair", "sub_corpus_label"]

SOURCE_DIR = "src"
SUSPICIOUS_DIR = "susp"
PAIRS_FILE = "pairs"

# Short names used in PAN's result tables; any other directory gets its name without the "NN-" prefix.
_LABELS = {
    "no-plagiarism": "no-plagiarism",
    "no-obfuscation": "none",
    "random-obfuscation": "random",
    "translation-obfuscation": "translation",
    "summary-obfuscation": "summary",
}


class CorpusFormatError(ValueError):
    """The directory is not a PAN text-alignment corpus, or its files contradict each other."""


def sub_corpus_label(directory_name: str) -> str:
    """'03-random-obfuscation' -> 'random'; '01-no-plagiarism' -> 'no-plagiarism'."""
    prefix, _, rest = directory_name.partition("-")
    name = rest if prefix.isdigit() and rest else directory_name
    return _LABELS.get(name, name)


def _stem(file_name: str) -> str:
    return file_name[:-4] if file_name.endswith(".txt") else file_name


@dataclass(frozen=True, slots=True)
class PanCase:
    annotation: Annotation
    # The XML's `obfuscation` attribute, else its `type` ("translation-chain" in the translation set).
    obfuscation: str


@dataclass(frozen=True, slots=True)
class PanPair:
    suspicious_id: str  # file name, e.g. "suspicious-document00001.txt"
    source_id: str
    sub_corpus: str  # directory name, e.g. "03-random-obfuscation"
    cases: tuple[PanCase, ...]

    @property
    def label(self) -> str:
        """The sub-corpus' short name: no-plagiarism / none / random / translation / summary."""
        return sub_corpus_label(self.sub_corpus)

    @property
    def is_derived(self) -> bool:
        """At least one plagiarism case: the suspicious document reuses this source."""
        return bool(self.cases)

    @property
    def key(self) -> tuple[str, str]:
        return (self.suspicious_id, self.source_id)

    @property
    def annotations(self) -> tuple[Annotation, ...]:
        return tuple(c.annotation for c in self.cases)


def _read_pair_xml(path: Path, sub_corpus: str) -> PanPair:
    try:
        root = ElementTree.parse(path).getroot()
    except ElementTree.ParseError as err:
        raise CorpusFormatError(f"{path} is not well-formed XML: {err}") from err
    suspicious_id = root.get("reference", "")
    if not suspicious_id:
        raise CorpusFormatError(f"{path}: <document> has no reference attribute (the suspicious file name)")
    prefix = _stem(suspicious_id) + "-"
    if not path.stem.startswith(prefix):
        raise CorpusFormatError(
            f"{path}: the file name should be '<suspicious stem>-<source stem>.xml' for {suspicious_id}"
        )
    source_id = path.stem[len(prefix) :] + ".txt"
    cases = []
    for feature in root.iter("feature"):
        if feature.get("name") != "plagiarism":
            continue
        try:
            annotation = Annotation(
                suspicious_id,
                int(feature.attrib["this_offset"]),
                int(feature.attrib["this_length"]),
                feature.attrib["source_reference"],
                int(feature.attrib["source_offset"]),
                int(feature.attrib["source_length"]),
            )
        except (KeyError, ValueError) as err:
            raise CorpusFormatError(f"{path}: bad plagiarism feature {feature.attrib}: {err}") from err
        if annotation.source_id != source_id:
            raise CorpusFormatError(
                f"{path}: a case names source {annotation.source_id!r} but the file is for {source_id!r}"
            )
        cases.append(PanCase(annotation, feature.get("obfuscation") or feature.get("type") or ""))
    cases.sort(key=lambda c: c.annotation)
    return PanPair(suspicious_id, source_id, sub_corpus, tuple(cases))


class PanCorpus:
    """A PAN text-alignment corpus on disk: its pairs with their cases, and its documents."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        for needed in (SOURCE_DIR, SUSPICIOUS_DIR):
            if not (self.root / needed).is_dir():
                raise CorpusFormatError(
                    f"{self.root} has no {needed}/ directory: point at a PAN text-alignment corpus "
                    "(the directory holding src/, susp/, pairs and the NN-name/ sub-corpora)"
                )
        pairs: list[PanPair] = []
        for directory in sorted(p for p in self.root.iterdir() if p.is_dir()):
            if directory.name in (SOURCE_DIR, SUSPICIOUS_DIR):
                continue
            pairs.extend(_read_pair_xml(xml, directory.name) for xml in sorted(directory.glob("*.xml")))
        if not pairs:
            raise CorpusFormatError(f"{self.root} has no sub-corpus directory with pair XML files")
        self._by_key: dict[tuple[str, str], PanPair] = {}
        for pair in pairs:
            if pair.key in self._by_key:
                first = self._by_key[pair.key].sub_corpus
                raise CorpusFormatError(f"pair {pair.key} appears in both {first} and {pair.sub_corpus}")
            self._by_key[pair.key] = pair
        self._check_pairs_file()
        self.pairs: tuple[PanPair, ...] = tuple(sorted(pairs, key=lambda p: (p.sub_corpus, p.key)))

    def _check_pairs_file(self) -> None:
        path = self.root / PAIRS_FILE
        if not path.is_file():
            return
        listed = {tuple(line.split()) for line in path.read_text("utf-8").splitlines() if line.strip()}
        if bad := [p for p in listed if len(p) != 2]:
            raise CorpusFormatError(f"{path}: lines must be 'suspicious source', got {bad[0]}")
        found = set(self._by_key)
        if listed != found:
            missing, extra = sorted(listed - found)[:3], sorted(found - listed)[:3]
            raise CorpusFormatError(
                f"{path} does not match the sub-corpus XML files: listed without XML {missing}, "
                f"XML not listed {extra}"
            )

    # -- documents ------------------------------------------------------------------------------------

    def suspicious_path(self, suspicious_id: str) -> Path:
        return self.root / SUSPICIOUS_DIR / suspicious_id

    def source_path(self, source_id: str) -> Path:
        return self.root / SOURCE_DIR / source_id

    @staticmethod
    def _read(path: Path) -> str:
        # newline="": PAN offsets count "\r\n" as two characters, as they are on disk.
        with path.open(encoding="utf-8", newline="") as handle:
            return handle.read()

    def read_suspicious(self, suspicious_id: str) -> str:
        return self._read(self.suspicious_path(suspicious_id))

    def read_source(self, source_id: str) -> str:
        return self._read(self.source_path(source_id))

    # -- pairs ----------------------------------------------------------------------------------------

    @property
    def sub_corpora(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(p.sub_corpus for p in self.pairs))

    def pair(self, suspicious_id: str, source_id: str) -> PanPair | None:
        return self._by_key.get((suspicious_id, source_id))

    def cases(self, pairs: Iterable[PanPair] | None = None) -> list[Annotation]:
        return [a for p in (self.pairs if pairs is None else pairs) for a in p.annotations]

    def subset(self, n: int | None, seed: int) -> list[PanPair]:
        """`n` pairs stratified by sub-corpus (and, within it, derived vs clean), deterministic in `seed`.

        Each stratum gets its proportional share (largest remainders; every stratum at least one pair
        when n allows). The result is interleaved across strata so that any prefix is itself close to
        stratified: a run stopped by a time limit still scores a balanced sample. `n` None or >= the
        corpus size returns every pair, in that interleaved order.
        """
        strata: dict[tuple[str, bool], list[PanPair]] = defaultdict(list)
        for pair in self.pairs:
            strata[(pair.sub_corpus, pair.is_derived)].append(pair)
        keys = sorted(strata)
        total = len(self.pairs)
        if n is None or n >= total:
            quotas = {k: len(strata[k]) for k in keys}
        else:
            if n < 0:
                raise ValueError(f"subset size must be non-negative, got {n}")
            quotas = _allocate(n, {k: len(strata[k]) for k in keys})
        chosen: list[tuple[float, int, PanPair]] = []
        for rank, k in enumerate(keys):
            rng = random.Random(f"{seed}:{k[0]}:{k[1]}")
            picked = rng.sample(strata[k], quotas[k])
            chosen.extend(((i + 0.5) / len(picked), rank, p) for i, p in enumerate(picked))
        return [p for _, _, p in sorted(chosen, key=lambda item: (item[0], item[1]))]


def _allocate(n: int, sizes: dict[tuple[str, bool], int]) -> dict[tuple[str, bool], int]:
    """Largest-remainder proportional allocation of n over strata, each non-empty stratum >= 1 if n allows."""
    total = sum(sizes.values())
    exact = {k: n * size / total for k, size in sizes.items()}
    quotas = {k: int(v) for k, v in exact.items()}
    if n >= len(sizes):
        for k in quotas:
            quotas[k] = max(quotas[k], 1)
    by_remainder: Sequence[tuple[str, bool]] = sorted(
        exact, key=lambda k: (exact[k] - int(exact[k]), k), reverse=True
    )
    i = 0
    while sum(quotas.values()) < n:
        k = by_remainder[i % len(by_remainder)]
        if quotas[k] < sizes[k]:
            quotas[k] += 1
        i += 1
    while sum(quotas.values()) > n:  # the at-least-one floor overshot: take from the largest
        k = max(quotas, key=lambda q: (quotas[q], q))
        quotas[k] -= 1
    return quotas
