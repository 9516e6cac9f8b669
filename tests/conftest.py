import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from rag_core.config import EmbeddingConfig, RAGConfig
from rag_core.models.embedder import Embedder, shared_embedder
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.milvus_server import MilvusServer, running_server
from tests.support.models import degraded_model
from tests.support.paths import ONNX_CACHE, ONNX_CACHE_VARIABLE
from tests.support.postgres_server import PostgresServer, running_postgres

os.environ.setdefault(ONNX_CACHE_VARIABLE, str(ONNX_CACHE))


@pytest.fixture(scope="session")
def embedder() -> Embedder:
    """The bundled model, loaded once for the whole session (the same instance the Dagster resources use)."""
    return shared_embedder(EmbeddingConfig())


class _SharedServerCollections:
    """What each test leaves on the session's server is dropped after it.

    Left there, hundreds of small loaded collections keep the 2.3.5 server's compaction and index workers busy,
    and a later test's compaction queued behind them misses its wait (seen in full runs: a one-second job still
    'Executing' after 60 s).
    """

    client: MilvusClient | None = None

    def names(self) -> set[str]:
        return set(self.client.list_collections()) if self.client else set()

    def drop_all_but(self, keep: set[str]) -> None:
        if self.client is None:
            return
        for name in self.names() - keep:
            for alias in self.client.list_aliases(name).get("aliases", []):
                self.client.drop_alias(alias)
            self.client.drop_collection(name)


_SHARED_SERVER = _SharedServerCollections()


@pytest.fixture(scope="session")
def milvus_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MilvusServer]:
    with running_server(tmp_path_factory.mktemp("milvus-server")) as server:
        _SHARED_SERVER.client = MilvusClient(server.uri)
        try:
            yield server
        finally:
            _SHARED_SERVER.client.close()
            _SHARED_SERVER.client = None


@pytest.fixture(autouse=True)
def _drop_what_the_test_left_on_the_server() -> Iterator[None]:
    before = _SHARED_SERVER.names()
    yield
    _SHARED_SERVER.drop_all_but(before)


@pytest.fixture(params=["lite", pytest.param("server", marks=pytest.mark.server)])
def milvus_uri(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using this runs on Milvus Lite (a file) and on the real server."""
    if request.param == "lite":
        return str(tmp_path / "milvus.db")
    return request.getfixturevalue("milvus_server").uri


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """Debian's PostgreSQL on loopback, for the audit store's tests (tests/support/postgres_server.py)."""
    with running_postgres() as server:
        yield server


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.slow)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty audit database: an SQLite file, and a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'audit.db'}"
    return request.getfixturevalue("postgres").new_database()


@pytest.fixture
def collection() -> str:
    """A fresh alias per test, so tests sharing the session's server never see each other's data."""
    return f"t_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def config(tmp_path: Path, milvus_uri: str, collection: str, embedder) -> RAGConfig:
    """The retrieval corpus ingested on the backend under test, with strong consistency for read-after-write."""
    config = make_config(
        tmp_path,
        milvus_uri,
        collection,
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        pipeline={"top_k": 6, "rerank_top_k": 3},
    )
    ingest(config, RETRIEVAL_DOCS, embedder)
    return config


TIERS = ("unit", "integration", "e2e", "deploy")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Each test is marked with its tier, the folder it sits in (`-m unit`, `-m "not e2e"`). Tests on the real Milvus
    server are slow by nature (it takes 20-40 s to start), as are the tiers above unit: `-m "not slow"` skips them."""
    tests = Path(__file__).resolve().parent
    for item in items:
        tier = item.path.resolve().relative_to(tests).parts[0]
        if tier in TIERS:
            item.add_marker(getattr(pytest.mark, tier))
        if item.get_closest_marker("server") or tier != "unit":
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def perturbed_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The bundled model with noise of 0.8 x every weight matrix's std: a changed model that embeds clearly worse,
    as a broken upgrade would."""
    return degraded_model(tmp_path_factory.mktemp("perturbed") / "minilm-perturbed", noise=0.8, seed=7)
