"""Server settings: command-line flags > environment (REWRITE_DETECTOR_*) > defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rewrite_detector_models.embedder import DEFAULT_EMBED_BACKEND

ENV_PREFIX = "REWRITE_DETECTOR_"
_BOOLEANS = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    # "default" = the bundled all-MiniLM-L6-v2; otherwise a local sentence-transformers directory.
    model: str = "default"
    # Empty = the type the data dir records (flat for a new one); another type rebuilds the index in it.
    index_type: str = ""
    max_text_bytes: int = 2 * 1024 * 1024
    max_workers: int = 16
    # gRPC messages may carry several articles (bulk streams carry one per message).
    max_message_bytes: int = 64 * 1024 * 1024
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"
    # Save the vector index after this many changed vectors (and on shutdown); the store is always durable.
    snapshot_every: int = 1000
    # Auth (auth.py). No tokens = auth off, allowed only on loopback unless insecure_no_auth is set.
    # Token values are kept out of repr() so a logged Settings never shows them.
    tokens_file: str = ""
    admin_token: str = field(default="", repr=False)
    read_token: str = field(default="", repr=False)
    insecure_no_auth: bool = False
    # TLS: PEM files. tls_client_ca makes client certificates mandatory (mutual TLS).
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    # Vector index backend: "faiss" (in-process) or "milvus" (storage/milvus_index.py). milvus_uri: a
    # path ending in .db runs milvus-lite embedded (empty = <data_dir>/milvus.db); http(s)://host:19530
    # is a Milvus server or cluster, authenticated by milvus_token ("user:password" or an API key).
    vector_backend: str = "faiss"
    milvus_uri: str = ""
    milvus_collection: str = "rewrite_detector"
    milvus_token: str = field(default="", repr=False)
    # Article store: empty = SQLite in the data dir (one process). A PostgreSQL URL
    # (postgresql://user@host:5432/dbname) = a store several replicas share; it needs a shared vector
    # index, vector_backend "milvus" with an http(s):// milvus_uri (check_storage_settings). Kept out of
    # repr(): the URL may carry a password (libpq's PGPASSWORD / ~/.pgpass keep it out of the URL).
    store_url: str = field(default="", repr=False)
    # Prometheus /metrics on this port (same host as the gRPC server); 0 = no metrics endpoint.
    metrics_port: int = 0
    # Embedding backend: "torch" (fp32), "onnx" (fp32) or "onnx-int8" (dynamic int8, the default: the
    # fastest within 0.5 plagdet points, see bench/RESULTS.md). ONNX exports are made once, into
    # <data_dir>/models/ unless model_cache_dir names another place. embed_threads: ONNX Runtime
    # threads, 0 = all cores.
    embed_backend: str = DEFAULT_EMBED_BACKEND
    model_cache_dir: str = ""
    embed_threads: int = 0
    # Micro-batching: concurrent requests share model calls of up to embed_batch_size texts, the first
    # waiting at most embed_batch_wait_ms for company (embed_batch_size 1 = off).
    embed_batch_size: int = 64
    embed_batch_wait_ms: float = 2.0
    # LRU of submitted texts' embeddings (0 = off); saved to <data_dir>/embedding-cache.npz on shutdown.
    embed_cache_size: int = 20_000
    # ivf-sq8 lists scanned per query: the main CPU cost of a Check at 1M paragraphs. 8 instead of 16
    # halves it with the same PAN retrieval plagdet at 1M (16, 8 and 4 alike, with and without the
    # lexical candidates) and the same voting recall of the real seed paragraphs; on real embeddings
    # alone voting recall drops ~3 points, which the lexical candidates make up (bench/RESULTS.md, nprobe).
    ivf_nprobe: int = 8
    # ivf-sq8 lists follow the corpus: retrained in the background once ~4*sqrt(n) reaches this many times
    # the current lists (storage/vector_index.py); 0 = keep the lists trained at ivf_train_size. Off by
    # default: faster searches at the cost of recall at a fixed nprobe (bench/RESULTS.md).
    ivf_regrow: float = 0.0
    # A trained ivf-sq8 index also keeps a 4-bit PQ fast-scan copy of its lists, scans that and re-ranks
    # 4*k candidates with the SQ8 codes (storage/vector_index.py). Served A/B on the 1M data dir
    # (bench/RESULTS.md, stop 17): 8 warm clients p50 / p99 166 / 283 -> 128 / 217 ms, server CPU per
    # Check 37 -> 29 ms; PAN retrieval plagdet at 1M unchanged (0.789); voting recall on the real PAN
    # embeddings 0.927 -> 0.921; +58 bytes a vector and a `remove` of ~10 ms at 1M instead of 0.1 ms.
    # Ignored by the other index types and by Milvus, like ivf_nprobe (IndexOptions keeps it off unless
    # asked: this is the service's default, not the index's).
    ivf_fast_scan: bool = True
    # Lexical candidate sources (core/fingerprints.py): a source sharing this many rare word pairs with one
    # submitted paragraph is aligned too; 0 = embedding votes only (the fingerprint table is still kept).
    lexical_min_shared: int = 4
    # Worker processes that build a Check's per-source matches (server/match_pool.py), so they run on
    # every core instead of taking turns on the serving process's GIL; -1 = one per usable core (none
    # on a single core), 0 = in the serving process.
    match_workers: int = -1

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then REWRITE_DETECTOR_<FIELD> variables, then non-None keyword overrides."""
        environ = dict(os.environ if environ is None else environ)
        values: dict[str, Any] = {}
        for spec in dataclasses.fields(cls):
            raw = environ.get(ENV_PREFIX + spec.name.upper())
            if raw is not None and raw != "":
                values[spec.name] = _parse(spec.name, raw, spec.type)
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "data_dir" in values:
            values["data_dir"] = Path(values["data_dir"])
        return cls(**values)


class ConfigError(ValueError):
    """Settings that cannot work together; the message names the settings and says what to change."""


def check_retrieval_settings(settings: Settings) -> None:
    if settings.ivf_nprobe < 1:
        raise ConfigError(
            f"{ENV_PREFIX}IVF_NPROBE must be >= 1 (lists scanned per query), got {settings.ivf_nprobe}"
        )
    if settings.ivf_regrow != 0 and settings.ivf_regrow <= 1:
        raise ConfigError(
            f"{ENV_PREFIX}IVF_REGROW must be 0 (keep the trained lists) or > 1 (retrain when the ideal "
            f"number of lists reaches that many times the current), got {settings.ivf_regrow}"
        )
    if settings.match_workers < -1:
        raise ConfigError(
            f"{ENV_PREFIX}MATCH_WORKERS must be -1 (one per core), 0 (in the serving process) or a number "
            f"of worker processes, got {settings.match_workers}"
        )
    if settings.lexical_min_shared < 0:
        raise ConfigError(
            f"{ENV_PREFIX}LEXICAL_MIN_SHARED must be >= 0 (0 = no lexical candidates), got "
            f"{settings.lexical_min_shared}"
        )


def check_storage_settings(settings: Settings) -> None:
    """Refuse a shared article store without a shared vector index, before anything is loaded.

    Replicas sharing the PostgreSQL store must also share the vectors: FAISS lives in each process and
    milvus-lite is a file one process opens, so each replica would search only its own writes.
    """
    if not settings.store_url:
        return
    if not settings.store_url.lower().startswith(("postgresql://", "postgres://")):
        raise ConfigError(
            f"{ENV_PREFIX}STORE_URL (--store-url) must be a PostgreSQL URL such as "
            "postgresql://user@host:5432/dbname, or empty for the SQLite store in the data dir"
        )
    uri = settings.milvus_uri
    if settings.vector_backend != "milvus" or not uri.lower().startswith(("http://", "https://")):
        raise ConfigError(
            f"{ENV_PREFIX}STORE_URL (--store-url) makes the article store shared between replicas, so the "
            f"vector index must be shared too: set {ENV_PREFIX}VECTOR_BACKEND=milvus (--vector-backend "
            f"milvus) and {ENV_PREFIX}MILVUS_URI (--milvus-uri) to a Milvus server, http(s)://host:19530. "
            f"Got vector backend {settings.vector_backend!r}, Milvus URI {uri or '(empty: milvus-lite)'!r}"
        )


def _parse(name: str, raw: str, annotation: object) -> Any:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        if kind == "bool":
            return _BOOLEANS[raw.strip().lower()]
    except (ValueError, KeyError) as err:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from err
    return raw
