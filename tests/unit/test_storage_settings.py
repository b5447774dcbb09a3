"""Storage settings that cannot work together are refused before anything is loaded, naming the settings."""

from __future__ import annotations

import pytest

from rewrite_detector_server.config import ConfigError, Settings, check_storage_settings

SHARED_STORE = "postgresql://rd@db:5432/news"


@pytest.mark.parametrize(
    ("overrides", "complaint"),
    [
        ({"vector_backend": "faiss"}, "REWRITE_DETECTOR_VECTOR_BACKEND=milvus"),
        ({"vector_backend": "milvus", "milvus_uri": ""}, "(empty: milvus-lite)"),
        ({"vector_backend": "milvus", "milvus_uri": "/data/milvus.db"}, "http(s)://host:19530"),
        ({"store_url": "mysql://db/news", "vector_backend": "milvus"}, "must be a PostgreSQL URL"),
    ],
)
def test_shared_store_without_a_shared_index_is_refused(overrides: dict[str, str], complaint: str) -> None:
    settings = Settings(**{"store_url": SHARED_STORE, **overrides})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="STORE_URL") as refused:
        check_storage_settings(settings)
    assert complaint in str(refused.value)


def test_shared_store_with_a_milvus_server_and_the_default_are_accepted() -> None:
    check_storage_settings(
        Settings(store_url=SHARED_STORE, vector_backend="milvus", milvus_uri="http://m:19530")
    )
    check_storage_settings(Settings(store_url=SHARED_STORE, vector_backend="milvus", milvus_uri="https://m"))
    check_storage_settings(Settings())  # no store URL: SQLite in the data dir, as before


def test_store_url_comes_from_the_environment_and_stays_out_of_repr() -> None:
    settings = Settings.from_env({"REWRITE_DETECTOR_STORE_URL": "postgresql://rd:secret@db/news"})
    assert settings.store_url == "postgresql://rd:secret@db/news"
    assert "secret" not in repr(settings)
    assert Settings.from_env({}).store_url == ""
