"""Embedding backends side by side: raw speed, closeness to torch fp32, and detection quality.

    python bench/bench_backends.py --pan-pairs 60 --max-seconds 1500

Measured in one run, on the same texts, with rounds interleaved across backends (two shared cores:
interleaving spreads other load evenly over the backends):

1. speed: paragraphs/s of the seed articles' paragraphs (as the service segments them) through
   stock ``SentenceTransformer.encode`` (torch fp32, batch_size 32, the baseline) and through each
   backend's ``embed_batch``; ratios to the baseline;
2. closeness: cosine of each backend's vectors to torch fp32 on PAN paragraphs, and whether a
   paragraph's vector depends on what else is in its batch (dynamic int8 quantisation scales
   activations per batch tensor);
3. seeds: the verdict and score of every seed checked against indexed 001, per backend;
4. PAN pair mode (the evaluation harness in rewrite_detector_server.evaluation) on a stratified subset:
   plagdet per backend and its loss against torch in points (x100). The default backend must lose
   <= 0.5 points.

Writes bench/out/backends.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np
from _speed import MODEL_CACHE, OUT, PAN, paragraphs_of, run_header, seed_texts

from rewrite_detector_models.embedder import EMBED_BACKENDS, Embedder, default_model_path, load_embedder
from rewrite_detector_server.app import build_detector
from rewrite_detector_server.config import Settings
from rewrite_detector_server.core.types import ArticleInput
from rewrite_detector_server.evaluation.pan import PanCorpus
from rewrite_detector_server.evaluation.run import ENTIRE, plagdet_by_label, run_pair


def load_backends(cache_dir: Path) -> dict[str, Embedder]:
    return {b: load_embedder(backend=b, cache_dir=cache_dir) for b in EMBED_BACKENDS}


def batched_variants(cache_dir: Path) -> dict[str, Embedder]:
    """The ONNX backends run in padded batches of 32 on all cores, instead of one text per run."""
    from rewrite_detector_models.onnx_backend import OnnxEmbedder, export_dir_name

    return {
        f"{backend} (batches of 32)": OnnxEmbedder(
            cache_dir / export_dir_name("all-MiniLM-L6-v2", backend == "onnx-int8"),
            name="all-MiniLM-L6-v2",
            batch_size=32,
        )
        for backend in ("onnx", "onnx-int8")
    }


def measure_speed(backends: dict[str, Embedder], texts: list[str], rounds: int) -> dict[str, Any]:
    from sentence_transformers import SentenceTransformer

    stock = SentenceTransformer(default_model_path(), device="cpu")
    runners = {"stock SentenceTransformer.encode (torch fp32)": lambda: stock.encode(texts, batch_size=32)}
    runners.update({f"backend {name}": (lambda e=e: e.embed_batch(texts)) for name, e in backends.items()})
    for run in runners.values():  # warm-up: first calls allocate
        run()
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(rounds):
        for name, run in runners.items():
            started = time.perf_counter()
            run()
            rates[name].append(len(texts) / (time.perf_counter() - started))
    baseline = statistics.median(rates["stock SentenceTransformer.encode (torch fp32)"])
    return {
        name: {
            "paragraphs_per_s_median": round(statistics.median(r), 1),
            "paragraphs_per_s_all": [round(x, 1) for x in r],
            "ratio_to_stock": round(statistics.median(r) / baseline, 2),
        }
        for name, r in rates.items()
    }


def measure_closeness(backends: dict[str, Embedder], texts: list[str]) -> dict[str, Any]:
    reference = backends["torch"].embed_batch(texts)
    out = {}
    for name, embedder in backends.items():
        batched = embedder.embed_batch(texts)
        alone = np.stack([embedder.embed_batch([t])[0] for t in texts[:100]])
        to_fp32 = np.sum(batched * reference, axis=1)
        batch_effect = np.sum(batched[:100] * alone, axis=1)
        out[name] = {
            "paragraphs": len(texts),
            "cosine_to_torch_min": round(float(to_fp32.min()), 4),
            "cosine_to_torch_p1": round(float(np.percentile(to_fp32, 1)), 4),
            "cosine_to_torch_mean": round(float(to_fp32.mean()), 4),
            "cosine_batched_vs_alone_min": round(float(batch_effect.min()), 4),
        }
    return out


def seed_verdicts(embedder: Embedder, seeds: dict[str, str]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-backends-") as tmp:
        detector = build_detector(Settings(data_dir=Path(tmp), embed_cache_size=0), embedder)
        try:
            detector.index(ArticleInput(id="001", text=seeds["001"]))
            out = {}
            for key, text in seeds.items():
                if key == "001":
                    continue
                result = detector.check(text)
                top = result.matches[0].source_id if result.matches else None
                out[key] = {"verdict": result.verdict.value, "score": round(result.score, 3), "source": top}
            return out
        finally:
            detector.close()


def pan_plagdet(embedder: Embedder, pairs: list[Any], corpus: PanCorpus, deadline: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-backends-pan-") as tmp:
        detector = build_detector(Settings(data_dir=Path(tmp)), embedder)
        started = time.perf_counter()
        outcomes = []
        try:
            for pair in pairs:
                if time.monotonic() > deadline:
                    break
                outcomes.append(run_pair(detector, corpus, pair))
        finally:
            detector.close()
    return {"outcomes": outcomes, "seconds": round(time.perf_counter() - started, 1)}


def score(pairs: list[Any], outcomes: list[Any]) -> dict[str, float]:
    by_label = plagdet_by_label(pairs, [d for o in outcomes for d in o.detections])
    return {k: round(v.plagdet, 4) for k, v in by_label.items()}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="interleaved speed rounds")
    parser.add_argument("--pan-paragraphs", type=int, default=400, help="PAN paragraphs for closeness")
    parser.add_argument(
        "--pan-pairs", type=int, default=60, help="stratified PAN pairs for plagdet (0 = skip)"
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-seconds", type=float, default=1800, help="stop starting PAN pairs after this")
    parser.add_argument("--cache-dir", type=Path, default=MODEL_CACHE, help="where ONNX exports go")
    parser.add_argument("--out", type=Path, default=OUT / "backends.json")
    args = parser.parse_args()
    started = time.monotonic()
    deadline = started + args.max_seconds

    results: dict[str, Any] = run_header("bench_backends.py")
    export_started = time.perf_counter()
    backends = load_backends(args.cache_dir)
    results["load_seconds_including_any_export"] = round(time.perf_counter() - export_started, 1)
    seeds = seed_texts()
    seed_paragraphs = paragraphs_of(list(seeds.values()))
    print(f"speed: {len(seed_paragraphs)} seed paragraphs x {args.rounds} interleaved rounds", flush=True)
    variants = {**backends, **batched_variants(args.cache_dir)}
    results["speed"] = measure_speed(variants, seed_paragraphs, args.rounds)
    print(json.dumps(results["speed"], indent=1), flush=True)

    corpus = PanCorpus(PAN)
    pairs = corpus.subset(args.pan_pairs or 1, args.seed)
    pan_texts = [corpus.read_source(p.source_id) for p in pairs[:20]]
    pan_paragraphs = list(dict.fromkeys(paragraphs_of(pan_texts)))[: args.pan_paragraphs]
    results["closeness"] = measure_closeness(variants, pan_paragraphs + seed_paragraphs)
    print(json.dumps(results["closeness"], indent=1), flush=True)

    results["seeds"] = {name: seed_verdicts(e, seeds) for name, e in backends.items()}
    print(json.dumps(results["seeds"], indent=1), flush=True)

    if args.pan_pairs:
        runs: dict[str, Any] = {}
        # Each backend gets an equal share of the remaining time; all are scored on the pairs every
        # backend finished (the subset is interleaved across strata, so any prefix stays stratified).
        for i, (name, embedder) in enumerate(backends.items()):
            share = (deadline - time.monotonic()) / (len(backends) - i)
            runs[name] = pan_plagdet(embedder, pairs, corpus, time.monotonic() + share)
            print(name, len(runs[name]["outcomes"]), "pairs", runs[name]["seconds"], "s", flush=True)
        common = min(len(r["outcomes"]) for r in runs.values())
        scored = {name: score(pairs[:common], r["outcomes"][:common]) for name, r in runs.items()}
        reference = scored["torch"][ENTIRE]
        results["pan"] = {
            "pairs": common,
            "labels": dict(Counter(p.label for p in pairs[:common])),
            "plagdet": scored,
            "seconds": {name: r["seconds"] for name, r in runs.items()},
            "loss_points_vs_torch": {
                name: round((reference - s[ENTIRE]) * 100, 2) for name, s in scored.items()
            },
        }
        print(json.dumps(results["pan"], indent=1), flush=True)

    results["seconds"] = round(time.monotonic() - started, 1)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {args.out} in {results['seconds']} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
