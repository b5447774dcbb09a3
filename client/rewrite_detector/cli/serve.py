"""``rewrite-detector serve``: start the service (needs the ``[server]`` extra, imported only here)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from rewrite_detector.cli._common import EXIT_FAILED, fail

# Top-level modules whose absence means "the server extra is not installed" rather than a bug.
_SERVER_EXTRA_MODULES = frozenset(
    {
        "rewrite_detector_server",
        "rewrite_detector_models",
        "torch",
        "sentence_transformers",
        "faiss",
        "numpy",
        "rapidfuzz",
        "grpc_health",
        "grpc_reflection",
        "transformers",
    }
)


def serve(
    host: Annotated[
        str | None,
        typer.Option("--host", help="Address to bind [env REWRITE_DETECTOR_HOST; default 127.0.0.1]."),
    ] = None,
    port: Annotated[
        int | None,
        typer.Option(
            "--port", min=0, max=65535, help="Port, 0 = any free [env REWRITE_DETECTOR_PORT; default 50051]."
        ),
    ] = None,
    data_dir: Annotated[
        Path | None,
        typer.Option(
            "--data-dir",
            file_okay=False,
            help="Store and index directory [env REWRITE_DETECTOR_DATA_DIR; default ./data].",
        ),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            metavar="PATH",
            help="Embedding model directory or name [env REWRITE_DETECTOR_MODEL; default: bundled model].",
        ),
    ] = None,
    index_type: Annotated[
        str | None,
        typer.Option("--index-type", help="Vector index type [env REWRITE_DETECTOR_INDEX_TYPE]."),
    ] = None,
) -> None:
    """Run the rewrite-detector gRPC server until interrupted (SIGINT / SIGTERM).

    Options left out fall back to the server's settings: REWRITE_DETECTOR_* variables, then defaults.
    """
    try:
        from rewrite_detector_server import app as server_app
    except ImportError as err:
        missing = (err.name or "").split(".")[0]
        if missing not in _SERVER_EXTRA_MODULES:
            raise
        fail(
            f"the server is not installed (missing module {err.name!r}): "
            "pip install 'rewrite-detector[server]'",
            EXIT_FAILED,
        )
    extra = {"index_type": index_type} if index_type is not None else {}
    server_app.serve_forever(host=host, port=port, data_dir=data_dir, model=model, **extra)
