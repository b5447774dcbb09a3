"""``rewrite-detector serve``: start the service (needs the ``[server]`` extra, imported only here)."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from rewrite_detector.cli._common import EXIT_FAILED, EXIT_USAGE, fail

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
        "prometheus_client",
        "transformers",
    }
)


class EmbedBackend(str, enum.Enum):
    # Mirrors rewrite_detector_models.embedder.EMBED_BACKENDS (the client must not import the server).
    torch = "torch"
    onnx = "onnx"
    onnx_int8 = "onnx-int8"


class VectorBackend(str, enum.Enum):
    faiss = "faiss"
    milvus = "milvus"


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
        typer.Option(
            "--index-type",
            help="Vector index type: flat, hnsw, ivf-sq8; another type than the data dir's rebuilds its "
            "index [env REWRITE_DETECTOR_INDEX_TYPE; default: the data dir's, flat for a new one].",
        ),
    ] = None,
    backend: Annotated[
        EmbedBackend | None,
        typer.Option(
            "--backend",
            help="Embedding backend; ONNX ones are exported once into <data-dir>/models "
            "[env REWRITE_DETECTOR_EMBED_BACKEND; default onnx-int8].",
        ),
    ] = None,
    tokens_file: Annotated[
        Path | None,
        typer.Option(
            "--tokens-file",
            dir_okay=False,
            help="JSON/TOML file of bearer tokens (sha256) and roles [env REWRITE_DETECTOR_TOKENS_FILE]. "
            "Single tokens: env REWRITE_DETECTOR_ADMIN_TOKEN / REWRITE_DETECTOR_READ_TOKEN.",
            show_default=False,
        ),
    ] = None,
    tls_cert: Annotated[
        Path | None,
        typer.Option(
            "--tls-cert", dir_okay=False, help="PEM server certificate [env REWRITE_DETECTOR_TLS_CERT]."
        ),
    ] = None,
    tls_key: Annotated[
        Path | None,
        typer.Option("--tls-key", dir_okay=False, help="PEM private key [env REWRITE_DETECTOR_TLS_KEY]."),
    ] = None,
    tls_client_ca: Annotated[
        Path | None,
        typer.Option(
            "--tls-client-ca",
            dir_okay=False,
            help="PEM CA of client certificates: require mutual TLS [env REWRITE_DETECTOR_TLS_CLIENT_CA].",
        ),
    ] = None,
    insecure_no_auth: Annotated[
        bool,
        typer.Option(
            "--insecure-no-auth",
            help="Allow a non-loopback --host without tokens (trusted networks only).",
        ),
    ] = False,
    metrics_port: Annotated[
        int | None,
        typer.Option(
            "--metrics-port",
            min=0,
            max=65535,
            help="Serve Prometheus /metrics on this port of --host; 0 = off "
            "[env REWRITE_DETECTOR_METRICS_PORT; default 0].",
        ),
    ] = None,
    vector_backend: Annotated[
        VectorBackend | None,
        typer.Option(
            "--vector-backend",
            help="Where vectors live: in-process FAISS or Milvus [env REWRITE_DETECTOR_VECTOR_BACKEND; "
            "default faiss].",
        ),
    ] = None,
    milvus_uri: Annotated[
        str | None,
        typer.Option(
            "--milvus-uri",
            metavar="URI",
            help="Milvus: http(s)://host:19530 for a server/cluster, or a path ending in .db for embedded "
            "milvus-lite [env REWRITE_DETECTOR_MILVUS_URI; default <data-dir>/milvus.db]. "
            "Credentials: env REWRITE_DETECTOR_MILVUS_TOKEN.",
        ),
    ] = None,
    milvus_collection: Annotated[
        str | None,
        typer.Option(
            "--milvus-collection",
            help="Milvus collection of this data dir [env REWRITE_DETECTOR_MILVUS_COLLECTION; "
            "default rewrite_detector].",
        ),
    ] = None,
    store_url: Annotated[
        str | None,
        typer.Option(
            "--store-url",
            metavar="URL",
            help="Article store shared by several replicas: postgresql://user@host:5432/dbname; needs "
            "--vector-backend milvus with an http(s):// --milvus-uri [env REWRITE_DETECTOR_STORE_URL; "
            "default: SQLite in the data dir]. Keep passwords out of the URL: PGPASSWORD or ~/.pgpass.",
        ),
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
    from rewrite_detector_server.auth import AuthConfigError
    from rewrite_detector_server.config import ConfigError
    from rewrite_detector_server.errors import IncompatibleIndexError, IndexUnavailableError

    settings = {
        "index_type": index_type,
        "tokens_file": tokens_file,
        "tls_cert": tls_cert,
        "tls_key": tls_key,
        "tls_client_ca": tls_client_ca,
        "insecure_no_auth": insecure_no_auth or None,  # None: leave it to the environment
        "metrics_port": metrics_port,
        "vector_backend": vector_backend.value if vector_backend else None,
        "milvus_uri": milvus_uri,
        "milvus_collection": milvus_collection,
        "store_url": store_url,
        "embed_backend": backend.value if backend else None,
    }
    extra: dict[str, Any] = {
        k: str(v) if isinstance(v, Path) else v for k, v in settings.items() if v is not None
    }
    try:
        server_app.serve_forever(host=host, port=port, data_dir=data_dir, model=model, **extra)
    except (AuthConfigError, ConfigError) as err:
        fail(str(err), EXIT_USAGE)
    except (IncompatibleIndexError, IndexUnavailableError) as err:
        fail(str(err), EXIT_FAILED)
    except ImportError as err:
        missing = (err.name or "").split(".")[0]
        if missing in ("psycopg", "psycopg_pool"):
            fail(
                f"the shared PostgreSQL store is not installed (missing module {err.name!r}): "
                "pip install 'rewrite-detector[shared]'",
                EXIT_FAILED,
            )
        if missing not in ("pymilvus", "milvus_lite"):
            raise
        fail(
            f"the Milvus backend is not installed (missing module {err.name!r}): "
            "pip install 'rewrite-detector[milvus]'",
            EXIT_FAILED,
        )
