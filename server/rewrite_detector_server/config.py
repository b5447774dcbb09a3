"""Server settings: command-line flags > environment (REWRITE_DETECTOR_*) > defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV_PREFIX = "REWRITE_DETECTOR_"


@dataclass(frozen=True, slots=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 50051
    data_dir: Path = field(default_factory=lambda: Path("./data"))
    # "default" = the bundled all-MiniLM-L6-v2; otherwise a local sentence-transformers directory.
    model: str = "default"
    index_type: str = "flat"
    max_text_bytes: int = 2 * 1024 * 1024
    max_workers: int = 16
    # gRPC messages may carry several articles (bulk streams carry one per message).
    max_message_bytes: int = 64 * 1024 * 1024
    shutdown_grace_seconds: float = 10.0
    log_level: str = "INFO"

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


def _parse(name: str, raw: str, annotation: object) -> Any:
    kind = str(annotation)
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except ValueError as err:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a valid {kind}") from err
    return raw
