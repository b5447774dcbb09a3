"""The data directory's manifest: which model and vector space built it.

Vectors from different models (or dimensions) are not comparable; mixing them would return confident
nonsense rather than an error. So the first open of a data directory records the model, and every later
open refuses a different one. Written temp + fsync + rename so it is never torn.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import faiss

from ..errors import IncompatibleIndexError
from ._fsutil import atomic_write_text

__all__ = [
    "FORMAT_VERSION",
    "MANIFEST_NAME",
    "Manifest",
    "check_compatible",
    "read_manifest",
    "write_manifest",
]

MANIFEST_NAME = "manifest.json"
# Bump when the on-disk layout (store schema, index files) changes incompatibly.
FORMAT_VERSION = 1


@dataclass(frozen=True, slots=True)
class Manifest:
    model_name: str
    dimension: int
    index_type: str
    metric: str = "ip"
    normalized: bool = True
    format_version: int = FORMAT_VERSION
    faiss_version: str = faiss.__version__
    created_at: float = 0.0

    @classmethod
    def for_model(cls, model_name: str, dimension: int, index_type: str) -> Manifest:
        return cls(model_name=model_name, dimension=dimension, index_type=index_type, created_at=time.time())


def read_manifest(data_dir: Path) -> Manifest | None:
    """The manifest of ``data_dir``; None if there is none. Raises ``ValueError`` if it is unreadable."""
    path = Path(data_dir) / MANIFEST_NAME
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot read {path}: {err}") from err
    try:
        return Manifest(
            model_name=str(raw["model_name"]),
            dimension=int(raw["dimension"]),
            index_type=str(raw["index_type"]),
            metric=str(raw.get("metric", "ip")),
            normalized=bool(raw.get("normalized", True)),
            format_version=int(raw.get("format_version", FORMAT_VERSION)),
            faiss_version=str(raw.get("faiss_version", "")),
            created_at=float(raw.get("created_at", 0.0)),
        )
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path} is not a valid manifest: {err}") from err


def write_manifest(data_dir: Path, manifest: Manifest) -> None:
    atomic_write_text(
        Path(data_dir) / MANIFEST_NAME, json.dumps(asdict(manifest), indent=2, sort_keys=True) + "\n"
    )


def check_compatible(existing: Manifest, *, model_name: str, dimension: int, data_dir: Path) -> None:
    """Raise ``IncompatibleIndexError`` if ``data_dir`` (described by ``existing``) cannot serve this model.

    The index type is deliberately not checked: the index is rebuilt from the store when it changes.
    """
    if existing.format_version > FORMAT_VERSION:
        raise IncompatibleIndexError(
            f"data dir {data_dir} has format version {existing.format_version}, newer than this build "
            f"reads ({FORMAT_VERSION}); upgrade rewrite-detector or use another --data-dir"
        )
    if existing.model_name != model_name or existing.dimension != dimension:
        raise IncompatibleIndexError(
            f"data dir {data_dir} was built with model {existing.model_name!r} "
            f"({existing.dimension}-d vectors), but this server is configured with model {model_name!r} "
            f"({dimension}-d). Start the server with model {existing.model_name!r} to use this data, "
            f"or pass another --data-dir to build a separate index with {model_name!r} "
            f"(and re-index the articles there)."
        )
    if existing.metric != "ip" or not existing.normalized:
        raise IncompatibleIndexError(
            f"data dir {data_dir} uses metric {existing.metric!r} (normalized={existing.normalized}); "
            f"this build needs inner product on normalised vectors. Use another --data-dir."
        )
