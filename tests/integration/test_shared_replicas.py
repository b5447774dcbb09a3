"""Several stateless replicas sharing one index: two real ``rewrite-detector serve`` processes pointed at
one real PostgreSQL (the article store, started by conftest) and one real Milvus server (milvus-lite run
standalone with ``python -m milvus_lite server``, reached over http:// as a Milvus cluster would be).

What one replica writes, the other reads at once (there is no per-process copy of articles to go
stale); both writing the same article at the same moment leaves store and index identical; a replica
killed with SIGKILL leaves the other serving, and a replica started afterwards reconciles the shared
index (under the store's advisory lock) and serves the same data. Bad combinations are refused at
start-up with messages that name the settings.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from conftest import PostgresServer, free_port
from rewrite_detector import Client, errors
from rewrite_detector.v1 import detector_pb2 as pb

# Each replica is a process start (~2 s) and the module runs several: more than "a few seconds".
pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "rewrite_detector"]
COLLECTION = "shared_news"

ARTICLE_A = (
    "Quarterly profits at Northwind Traders rose 12 percent to 4.5 million euros.\n\n"
    "Chief executive Maria Lopez credited strong demand for its shipping services in Rotterdam.\n\n"
    "The company plans to open three new warehouses in Poland before the end of 2025."
)
ARTICLE_B = (
    "A storm closed schools across the northern valley on Friday.\n\n"
    "Officials said roads would reopen once snowploughs had cleared the main pass."
)
ARTICLE_C = (
    "The city council approved a new budget for public libraries on Tuesday evening.\n\n"
    "Three branches will extend their opening hours, the mayor said after the vote."
)
ARTICLE_D = (
    "Fishermen in the southern harbour reported record sardine catches this spring.\n\n"
    "Prices at the morning auction fell by a third, the cooperative said."
)


class MilvusStandalone:
    """``python -m milvus_lite server`` as its own process on a loopback port: a Milvus server."""

    def __init__(self, data_dir: Path) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir)),
                *("--host", "127.0.0.1", "--port", str(self.port)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        from pymilvus import MilvusClient

        deadline = time.monotonic() + 60
        while True:
            assert self.process.poll() is None, "milvus-lite server exited at start-up"
            try:
                MilvusClient(uri=self.uri, timeout=2).list_collections()
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def vector_ids(self) -> list[int]:
        from pymilvus import MilvusClient

        client = MilvusClient(uri=self.uri, timeout=10)
        try:
            rows = client.query(COLLECTION, filter="id >= 0", output_fields=["id"], limit=16_384)
        finally:
            client.close()
        return sorted(int(row["id"]) for row in rows)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass
class Replica:
    process: subprocess.Popen[str]
    client: Client
    log: Path

    def stop(self) -> None:
        self.client.close()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@dataclass
class Cluster:
    postgres_url: str
    milvus: MilvusStandalone
    root: Path
    replicas: list[Replica]

    def serve_args(self, data_dir: Path, port: int) -> list[str]:
        return [
            *CLI,
            "serve",
            *("--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir)),
            *("--model", "hashing", "--vector-backend", "milvus", "--milvus-uri", self.milvus.uri),
            *("--milvus-collection", COLLECTION, "--store-url", self.postgres_url),
        ]

    def start_replica(self, name: str) -> Replica:
        port = free_port()
        log = self.root / f"{name}.log"
        with log.open("w") as out:
            process = subprocess.Popen(
                self.serve_args(self.root / name, port),
                env={**os.environ, "HF_HUB_OFFLINE": "1"},
                stdout=out,
                stderr=subprocess.STDOUT,
                text=True,
            )
        client = Client(f"127.0.0.1:{port}", timeout=30)
        try:
            client.wait_ready(timeout=90)
        except Exception:
            process.kill()
            raise AssertionError(f"replica {name} did not start:\n{log.read_text()[-3000:]}") from None
        replica = Replica(process, client, log)
        self.replicas.append(replica)
        return replica

    def store_vector_ids(self) -> list[int]:
        import psycopg

        with psycopg.connect(self.postgres_url) as conn:
            rows = conn.execute(
                "SELECT vector_id FROM rewrite_detector.paragraphs WHERE vector_id IS NOT NULL"
            ).fetchall()
        return sorted(int(r[0]) for r in rows)


@pytest.fixture(scope="module")
def cluster(postgres_server: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    root = tmp_path_factory.mktemp("replicas")
    milvus = MilvusStandalone(root / "milvus")
    cluster = Cluster(postgres_server.new_database(), milvus, root, [])
    try:
        yield cluster
    finally:
        for replica in cluster.replicas:
            replica.stop()
        milvus.stop()


@pytest.fixture(scope="module")
def replicas(cluster: Cluster) -> tuple[Replica, Replica]:
    return cluster.start_replica("a"), cluster.start_replica("b")


def test_what_one_replica_writes_the_other_reads(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas[0].client, replicas[1].client
    assert a.index_article("a", ARTICLE_A, title="Profits").created
    assert [r.created for r in a.index_articles([{"id": "b", "text": ARTICLE_B}])] == [True]

    got = b.get_article("a", include_paragraphs=True)
    assert got.article.text == ARTICLE_A and got.article.title == "Profits" and len(got.paragraphs) == 3
    assert [s.id for s in b.iter_articles(page_size=1)] == ["a", "b"]
    stats = b.stats()
    assert (stats.article_count, stats.vector_count) == (2, 5)
    found = b.check("Reposted:\n\n" + ARTICLE_A)
    assert found.verdict == pb.NEAR_DUPLICATE and found.matches[0].source_id == "a"
    # Same content through the other replica: the content-hash no-op works across processes.
    assert b.index_article("a", ARTICLE_A, title="Profits").unchanged

    assert b.index_article("c", ARTICLE_C).created
    assert a.check(ARTICLE_C).matches[0].source_id == "c"  # ("hot" comes later)
    assert a.stats().article_count == 3


def test_same_article_written_on_both_replicas_at_once_ends_consistent(
    cluster: Cluster, replicas: tuple[Replica, Replica]
) -> None:
    versions = [ARTICLE_A, ARTICLE_B, ARTICLE_C, ARTICLE_D]
    failures: list[BaseException] = []
    start = threading.Barrier(2)

    def write(client: Client, offset: int) -> None:
        try:
            start.wait()
            for round_ in range(8):
                client.index_article("hot", versions[(offset + round_) % len(versions)])
        except BaseException as err:  # re-raised below: a thread's exception would vanish
            failures.append(err)

    threads = [threading.Thread(target=write, args=(r.client, i)) for i, r in enumerate(replicas)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []

    a, b = replicas[0].client, replicas[1].client
    final = a.get_article("hot").article.text
    assert b.get_article("hot").article.text == final
    # Store and shared index hold exactly the same vectors: no orphan, no duplicate, none missing.
    assert cluster.store_vector_ids() == cluster.milvus.vector_ids()
    assert a.stats().vector_count == len(cluster.milvus.vector_ids())
    for client in (a, b):
        found = client.check(final, source_ids=["hot"])
        assert found.verdict == pb.NEAR_DUPLICATE and found.matches[0].coverage_submitted == 1.0


def test_delete_on_one_replica_is_seen_by_the_other(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas[0].client, replicas[1].client
    assert b.delete_article("b").paragraphs_removed == 2
    with pytest.raises(errors.NotFound):
        a.get_article("b")
    assert all(m.source_id != "b" for m in a.check(ARTICLE_B).matches)
    assert "b" not in [s.id for s in a.iter_articles()]


def test_one_replica_killed_the_other_serves_and_a_new_one_catches_up(
    cluster: Cluster, replicas: tuple[Replica, Replica]
) -> None:
    a, b = replicas
    a.process.send_signal(signal.SIGKILL)
    a.process.wait(timeout=10)

    # ("hot" may hold the same text as any of them: look for the source among the matches.)
    assert "a" in {m.source_id for m in b.client.check("Reposted:\n\n" + ARTICLE_A).matches}
    assert b.client.index_article("d", ARTICLE_D).created
    assert b.client.get_article("d").article.text == ARTICLE_D

    # A replacement replica takes the reconcile lock, finds the shared index whole and serves it all.
    c = cluster.start_replica("c")
    assert "status=loaded" in c.log.read_text() and "orphans_removed=0 missing_added=0" in c.log.read_text()
    assert "d" in {m.source_id for m in c.client.check(ARTICLE_D).matches}
    assert {s.id for s in c.client.iter_articles()} == {"a", "c", "d", "hot"}
    assert cluster.store_vector_ids() == cluster.milvus.vector_ids()


def test_replica_with_another_model_is_refused(cluster: Cluster, replicas: tuple[Replica, Replica]) -> None:
    from rewrite_detector_server.errors import IncompatibleIndexError
    from rewrite_detector_server.storage import Storage
    from rewrite_detector_server.storage.milvus_index import MilvusOptions

    with pytest.raises(IncompatibleIndexError, match=r"shared store .* model 'hashing-test-embedder'"):
        Storage.open(
            cluster.root / "other-model",
            model_name="another-model",
            dimension=384,
            vector_backend="milvus",
            milvus=MilvusOptions(uri=cluster.milvus.uri, collection=COLLECTION),
            store_url=cluster.postgres_url,
        )
    assert replicas[1].client.stats().article_count == 4  # and nothing was touched


def test_shared_store_without_a_shared_index_is_refused_at_start(cluster: Cluster, tmp_path: Path) -> None:
    args = cluster.serve_args(tmp_path / "data", free_port())
    milvus_flags = ("--vector-backend", "milvus", "--milvus-uri", cluster.milvus.uri)
    faiss = [arg for arg in args if arg not in milvus_flags]
    refused = subprocess.run(faiss, capture_output=True, text=True, timeout=60, check=False)
    assert refused.returncode == 2, refused.stderr
    message = " ".join(refused.stderr.split())
    assert "REWRITE_DETECTOR_VECTOR_BACKEND=milvus" in message and "--milvus-uri" in message
    assert "Traceback" not in refused.stderr


def test_two_storages_racing_on_one_article_keep_index_and_store_identical(
    cluster: Cluster, postgres_server: PostgresServer, tmp_path: Path
) -> None:
    """The same race as above, tighter: two ``Storage`` objects (two replicas' storage layers) upsert one
    article 30 times each with no gRPC in between. Without the per-article write guard across store
    commit + index update, the index keeps vectors of versions the store has already replaced."""
    import numpy as np

    from rewrite_detector_server.core.types import ArticleInput, Paragraph
    from rewrite_detector_server.storage import Storage
    from rewrite_detector_server.storage.milvus_index import MilvusOptions

    url = postgres_server.new_database()
    options = MilvusOptions(uri=cluster.milvus.uri, collection="race")
    storages = [
        Storage.open(
            tmp_path / f"replica{i}",
            model_name="m",
            dimension=8,
            vector_backend="milvus",
            milvus=options,
            store_url=url,
        )
        for i in range(2)
    ]
    rng = np.random.default_rng(3)

    def version(n: int) -> tuple[ArticleInput, list[Paragraph], np.ndarray]:
        texts = [f"paragraph {i} of version {n}" for i in range(n)]
        vectors = rng.standard_normal((n, 8)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        paragraphs = [Paragraph(index=i, start=0, end=1, text=t) for i, t in enumerate(texts)]
        return ArticleInput(id="hot", text=" ".join(texts)), paragraphs, vectors

    versions = [version(n) for n in (1, 2, 3, 4)]

    def write(storage: Storage, offset: int) -> None:
        for round_ in range(30):
            article, paragraphs, vectors = versions[(offset + round_) % len(versions)]
            storage.upsert(article, f"hash-{len(paragraphs)}", paragraphs, vectors)

    try:
        threads = [threading.Thread(target=write, args=(s, i)) for i, s in enumerate(storages)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        import psycopg

        with psycopg.connect(url) as conn:
            rows = conn.execute("SELECT vector_id FROM rewrite_detector.paragraphs WHERE vector_id > 0")
            in_store = sorted(int(r[0]) for r in rows.fetchall())
        assert len(in_store) == storages[0].count_vectors() == len(storages[1].content_vectors("hot")[0])
        assert sorted(storages[1].index.ids().tolist()) == in_store
    finally:
        for storage in storages:
            storage.close()
