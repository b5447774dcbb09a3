"""ONNX Runtime backends for sentence-transformers models: fp32 ("onnx") and dynamic int8 ("onnx-int8").

Why not ``SentenceTransformer(..., backend="onnx")`` + ``export_dynamic_quantized_onnx_model``: that path
needs ``optimum.onnxruntime``, which optimum 2.x moved to the ``optimum-onnx`` package, whose only
release (0.1.0) requires ``transformers<4.58`` while sentence-transformers 6.x requires
``transformers>=5`` — ``pip install "sentence-transformers[onnx]==6.2.0"`` is unresolvable. So the
export is done here with the same building blocks optimum uses: ``torch.onnx.export`` of the
transformer (mean pooling and L2 normalisation folded into the graph), then ONNX Runtime's
``quantize_dynamic`` with the settings of optimum's ``AutoQuantizationConfig.avx512_vnni(is_static=False)``
(int8 symmetric per-channel weights, uint8 asymmetric activations computed at run time, no
reduce_range). Every export is checked against the torch model before it is used.

Exported once, into a cache directory (by default ``<data_dir>/models/<model>-onnx[-int8]/``), with an
``export.json`` recording what it was built from; a later start reuses it unless the source model
changed. Loading an export needs only onnxruntime, tokenizers and numpy: torch is imported only to
export.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import IO, Any

import numpy as np

try:  # POSIX only; without it concurrent exporters fall back to "last rename wins", still atomic.
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

# Bump when the export procedure changes, so old caches are rebuilt rather than trusted.
EXPORT_FORMAT = 1
EXPORT_MANIFEST = "export.json"
MODEL_FILE = "model.onnx"
TOKENIZER_FILE = "tokenizer.json"
ONNX_OPSET = 17

# An export must reproduce the torch model this closely on probe texts, or it is refused. int8 loses a
# little (cosine >= 0.985 on the seeds is the measured norm), fp32 nothing.
MIN_PROBE_COSINE = {False: 0.9999, True: 0.97}

_PROBE_TEXTS = (
    "The central bank raised interest rates by a quarter point on Wednesday.",
    "Officials said the bridge would reopen once engineers had inspected it, probably within a week, "
    "although local businesses fear the closure will last through the summer tourist season.",
    "Short.",
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros, the company said.",
)


class OnnxExportError(RuntimeError):
    """The model cannot be exported to ONNX, or the export does not reproduce the torch model."""


def export_dir_name(model_name: str, quantized: bool) -> str:
    return f"{model_name}-onnx-int8" if quantized else f"{model_name}-onnx"


def ensure_onnx_export(model_dir: str | Path, target_dir: str | Path, *, quantized: bool) -> Path:
    """Export ``model_dir`` (a local sentence-transformers directory) to ``target_dir`` unless done already.

    Safe against concurrent starts (a lock file beside the target) and crashes (the export is built in a
    temporary directory and renamed into place). Returns ``target_dir``.
    """
    model_dir, target_dir = Path(model_dir), Path(target_dir)
    expected = _source_fingerprint(model_dir, quantized)
    if _export_matches(target_dir, expected):
        return target_dir
    _check_pooling(model_dir)
    target_dir.parent.mkdir(parents=True, exist_ok=True)
    with _export_lock(target_dir.parent / f".{target_dir.name}.lock"):
        if _export_matches(target_dir, expected):  # another process finished it while we waited
            return target_dir
        started = time.monotonic()
        logger.info(
            "exporting model to onnx source=%s target=%s quantized=%s (once; later starts reuse it)",
            model_dir,
            target_dir,
            quantized,
        )
        staging = Path(tempfile.mkdtemp(prefix=f".{target_dir.name}.", dir=target_dir.parent))
        try:
            probe_cosine = _export(model_dir, staging, quantized=quantized)
            manifest = {**_read_json(staging / EXPORT_MANIFEST), **expected, "exported_at": time.time()}
            (staging / EXPORT_MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
            staging.chmod(0o755)  # mkdtemp made it private; the export is not secret
            if target_dir.exists():
                shutil.rmtree(target_dir)
            os.replace(staging, target_dir)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        logger.info(
            "onnx export done target=%s seconds=%.1f probe_min_cosine=%.4f",
            target_dir,
            time.monotonic() - started,
            probe_cosine,
        )
    return target_dir


class OnnxEmbedder:
    """An exported model run by ONNX Runtime on the CPU; ``embed_batch`` rows are L2-normalised.

    By default each text is one model run, and the runs go in parallel, one single-threaded run per
    core (``threads``, 0 = all cores) on one shared session. Two reasons, both measured by
    bench/bench_backends.py and noted in bench/RESULTS.md:
    - dynamic int8 quantisation scales the activations of a whole batch tensor at once, so in a padded
      batch a text's int8 vector depends on what else is in the batch (cosine down to ~0.97 between
      batch compositions); one text per run gives every text the same vector whatever the traffic;
    - on these small matrices, whole-core single-text runs were faster than batches of 32 split over
      the cores by intra-op threads (no padding, no thread barriers), for fp32 and int8 alike.
    ``batch_size`` > 1 batches instead (length-sorted, padded to the longest; one run on all cores).
    """

    def __init__(
        self,
        export_dir: str | Path,
        *,
        name: str,
        batch_size: int = 1,
        threads: int = 0,
    ) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        export_dir = Path(export_dir)
        manifest = json.loads((export_dir / EXPORT_MANIFEST).read_text(encoding="utf-8"))
        self._name = name
        self._dimension = int(manifest["dimension"])
        self._max_seq_length = int(manifest["max_seq_length"])
        self._quantized = bool(manifest["quantized"])
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self._batch_size = batch_size
        self._tokenizer = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE))
        self._tokenizer.no_padding()  # padded per length-sorted batch below, to the batch's longest
        self._tokenizer.enable_truncation(max_length=self._max_seq_length)
        self._pad_id = int(manifest["pad_token_id"])
        cores = threads if threads > 0 else (os.cpu_count() or 1)
        # Single-text runs: one single-threaded run per core at a time. Batches: one run on all cores.
        self._parallel_runs = cores if self._batch_size == 1 else 1
        options = ort.SessionOptions()
        options.intra_op_num_threads = 1 if self._parallel_runs > 1 else cores
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # InferenceSession.run is thread-safe: the parallel runs share one session (one copy of weights).
        self._session = ort.InferenceSession(
            str(export_dir / MODEL_FILE), options, providers=["CPUExecutionProvider"]
        )
        self._inputs = {i.name for i in self._session.get_inputs()}
        self._pool = ThreadPoolExecutor(self._parallel_runs, thread_name_prefix="onnx-run")

    @property
    def name(self) -> str:
        return self._name

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def max_seq_length(self) -> int:
        return self._max_seq_length

    @property
    def backend(self) -> str:
        return "onnx-int8" if self._quantized else "onnx"

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        if not texts:
            return out
        encodings = self._tokenizer.encode_batch(list(texts))
        token_ids = [e.ids for e in encodings]
        lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
        # Longest first, as sentence-transformers does: batches of similar lengths waste no padding.
        order = np.argsort(-lengths, kind="stable")
        batches = [order[i : i + self._batch_size] for i in range(0, len(order), self._batch_size)]

        def run(rows: np.ndarray) -> None:
            width = int(lengths[rows[0]])
            input_ids = np.full((rows.size, width), self._pad_id, dtype=np.int64)
            attention_mask = np.zeros((rows.size, width), dtype=np.int64)
            for slot, row in enumerate(rows):
                input_ids[slot, : lengths[row]] = token_ids[row]
                attention_mask[slot, : lengths[row]] = 1
            feeds = {"input_ids": input_ids, "attention_mask": attention_mask}
            (vectors,) = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})
            out[rows] = vectors

        if self._parallel_runs == 1:
            for rows in batches:
                run(rows)
        else:
            for _ in self._pool.map(run, batches):  # each batch writes its own rows of `out`
                pass
        return out


# ----------------------------------------------------------------------------------------- export


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8"))


def _weights_file(model_dir: Path) -> Path:
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (model_dir / name).is_file():
            return model_dir / name
    raise OnnxExportError(f"no model.safetensors or pytorch_model.bin in {model_dir}")


def _source_fingerprint(model_dir: Path, quantized: bool) -> dict[str, Any]:
    """What an export depends on; a cached export whose manifest differs is rebuilt."""
    import onnxruntime

    files = {}
    for path in (_weights_file(model_dir), model_dir / "config.json", model_dir / "modules.json"):
        if path.is_file():
            stat = path.stat()
            files[path.name] = [stat.st_size, stat.st_mtime_ns]
    return {
        "format": EXPORT_FORMAT,
        "source": str(model_dir.resolve()),
        "source_files": files,
        "quantized": quantized,
        "quantization": "dynamic int8, avx512_vnni settings" if quantized else "none",
        "onnxruntime": onnxruntime.__version__,
    }


def _export_matches(target_dir: Path, expected: dict[str, Any]) -> bool:
    try:
        manifest = _read_json(target_dir / EXPORT_MANIFEST)
    except (OSError, ValueError):
        return False
    if not (target_dir / MODEL_FILE).is_file() or not (target_dir / TOKENIZER_FILE).is_file():
        return False
    return all(manifest.get(key) == value for key, value in expected.items())


@contextlib.contextmanager
def _export_lock(path: Path) -> Iterator[None]:
    handle: IO[bytes] = open(path, "a+b")  # noqa: SIM115 - released in finally
    try:
        if fcntl is not None:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        yield
    finally:
        if fcntl is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


def _check_pooling(model_dir: Path) -> None:
    """Only Transformer -> mean Pooling (-> Normalize) pipelines are folded into the graph here."""
    modules = _read_json(model_dir / "modules.json") if (model_dir / "modules.json").is_file() else []
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in modules]
    supported = ("Transformer", "Pooling", "Normalize")
    if kinds[:2] != ["Transformer", "Pooling"] or any(k not in supported for k in kinds):
        raise OnnxExportError(
            f"{model_dir} is a {' -> '.join(kinds) or 'non-sentence-transformers'} pipeline; the ONNX "
            "backends support Transformer -> mean Pooling (-> Normalize) only: use --backend torch"
        )
    pooling = _read_json(model_dir / modules[1].get("path", "1_Pooling") / "config.json")
    other_modes = [
        k
        for k, v in pooling.items()
        if k.startswith("pooling_mode_") and v and k != "pooling_mode_mean_tokens"
    ]
    if not pooling.get("pooling_mode_mean_tokens") or other_modes:
        raise OnnxExportError(f"{model_dir} does not use plain mean pooling; use --backend torch")


def _export(model_dir: Path, staging: Path, *, quantized: bool) -> float:
    """Write model.onnx + tokenizer.json into ``staging``; returns the probe texts' minimum cosine."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    reference = SentenceTransformer(str(model_dir), device="cpu")
    max_seq_length = int(reference.max_seq_length or 0)
    # Eager attention traces to plain ops; the SDPA path carries Python-side shape checks that a trace
    # would freeze.
    transformer = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    if not getattr(tokenizer, "is_fast", False):
        raise OnnxExportError(f"{model_dir} has no fast (Rust) tokenizer; use --backend torch")
    tokenizer.backend_tokenizer.save(str(staging / TOKENIZER_FILE))

    class MeanPooledEncoder(torch.nn.Module):
        def __init__(self, encoder: torch.nn.Module) -> None:
            super().__init__()
            self.encoder = encoder

        def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
            hidden = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=torch.zeros_like(input_ids)
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1e-9)
            return torch.nn.functional.normalize(pooled, p=2.0, dim=1)

    # A padded example batch, so nothing about "no padding" can be frozen into the trace.
    sample = tokenizer(list(_PROBE_TEXTS[:2]), padding=True, return_tensors="pt")
    fp32_path = staging / ("model-fp32.onnx" if quantized else MODEL_FILE)
    with torch.no_grad(), warnings_quiet():
        torch.onnx.export(
            MeanPooledEncoder(transformer),
            (sample["input_ids"], sample["attention_mask"]),
            str(fp32_path),
            input_names=["input_ids", "attention_mask"],
            output_names=["sentence_embedding"],
            dynamic_axes={
                "input_ids": {0: "batch", 1: "sequence"},
                "attention_mask": {0: "batch", 1: "sequence"},
                "sentence_embedding": {0: "batch"},
            },
            opset_version=ONNX_OPSET,
            # The TorchScript exporter: the torch.export-based default needs onnxscript and gains
            # nothing for a plain BERT encoder.
            dynamo=False,
        )
    if quantized:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        with warnings_quiet():
            quantize_dynamic(
                str(fp32_path),
                str(staging / MODEL_FILE),
                # optimum's avx512_vnni(is_static=False): fully connected ops only (the embedding
                # Gather stays fp32), int8 symmetric per-channel weights, uint8 asymmetric activations.
                op_types_to_quantize=["MatMul", "Add"],
                weight_type=QuantType.QInt8,
                per_channel=True,
                reduce_range=False,
                extra_options={"WeightSymmetric": True, "ActivationSymmetric": False},
            )
        fp32_path.unlink()

    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    dimension = int(reference.get_embedding_dimension() or 0)
    facts = {"dimension": dimension, "max_seq_length": max_seq_length, "pad_token_id": pad_id}
    (staging / EXPORT_MANIFEST).write_text(json.dumps({**facts, "quantized": quantized}))
    exported = OnnxEmbedder(staging, name="probe", threads=1).embed_batch(_PROBE_TEXTS)
    expected = reference.encode(
        list(_PROBE_TEXTS), normalize_embeddings=True, convert_to_numpy=True, show_progress_bar=False
    )
    probe_cosine = float(np.min(np.sum(exported * expected, axis=1)))
    if probe_cosine < MIN_PROBE_COSINE[quantized]:
        raise OnnxExportError(
            f"the ONNX export of {model_dir} does not reproduce the torch model (probe cosine "
            f"{probe_cosine:.4f} < {MIN_PROBE_COSINE[quantized]}); use --backend torch"
        )
    manifest = _read_json(staging / EXPORT_MANIFEST)
    manifest["probe_min_cosine"] = probe_cosine
    (staging / EXPORT_MANIFEST).write_text(json.dumps(manifest))
    return probe_cosine


class _BelowError(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= logging.ERROR


@contextlib.contextmanager
def warnings_quiet() -> Iterator[None]:
    """The exporters warn about tracing details that the probe comparison checks anyway."""
    import warnings

    root = logging.getLogger()
    quiet = _BelowError()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # quantize_dynamic logs its pre-processing advice straight on the root logger; a filter on the
        # root logger drops those records without touching records of other loggers.
        root.addFilter(quiet)
        try:
            yield
        finally:
            root.removeFilter(quiet)
