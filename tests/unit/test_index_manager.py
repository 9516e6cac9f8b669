"""MilvusIndexManager against Milvus Lite and the real server: the same behaviour on both."""

import numpy as np
import pytest

import rag_core
from rag_core.config import IndexConfig, MilvusConfig
from rag_core.index.manager import MilvusIndexManager, parse_version
from rag_core.index.retry import MilvusUnavailableError


def manager_for(uri: str, **milvus) -> MilvusIndexManager:
    config = MilvusConfig(uri=uri, retry_attempts=2, retry_backoff_s=0.05, consistency_level="Strong", **milvus)
    return MilvusIndexManager(config, IndexConfig())


def rows(doc_id: str, count: int, dim: int = 8, seed: int = 0) -> list[dict]:
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [
        {
            "chunk_id": f"{doc_id}-{i}",
            "doc_id": doc_id,
            "source": "s",
            "position": i,
            "text": f"{doc_id} part {i}",
            "metadata": {"title": doc_id},
            "access_groups": ["everyone"],
            "tenant": "default",
            "vector": vectors[i].tolist(),
        }
        for i in range(count)
    ]


@pytest.fixture
def manager(milvus_uri: str) -> MilvusIndexManager:
    manager = manager_for(milvus_uri)
    yield manager
    manager.close()


def new_version(manager: MilvusIndexManager, alias: str) -> str:
    name = manager.create_version(alias, manager.version_for("m", 8, "c"))
    manager.mark_complete(name)
    manager.promote(alias, name)
    return name


def test_versions_live_behind_the_alias_with_their_parameters(manager: MilvusIndexManager, collection: str) -> None:
    version = manager.version_for("m", 8, "c")
    v1 = new_version(manager, collection)
    v2 = manager.create_version(collection, version)
    assert (v1, v2) == (f"{collection}__v1", f"{collection}__v2")
    assert manager.resolve(collection) == v1, "a new version is invisible until promoted"
    with pytest.raises(ValueError, match="incomplete build"):
        manager.promote(collection, v2)
    manager.mark_complete(v2)
    manager.promote(collection, v2)
    assert manager.resolve(collection) == v2
    assert manager.index_version(v2) == version and manager.index_version(v2).fingerprint == version.fingerprint
    assert manager.resolve("no_such_alias_here") is None


def test_upsert_is_idempotent_and_delete_by_document(manager: MilvusIndexManager, collection: str) -> None:
    name = new_version(manager, collection)
    manager.upsert(name, rows("a", 3) + rows("b", 2, seed=1))
    manager.upsert(name, rows("a", 3))
    assert manager.count(name) == 5
    assert sorted(manager.list_chunk_ids(name)) == ["a-0", "a-1", "a-2", "b-0", "b-1"]
    assert manager.delete_where(name, 'doc_id in ["a"]') == 3
    assert manager.count(name) == 2
    stats = manager.get_collection_stats(collection)
    assert (stats.name, stats.collection, stats.row_count) == (collection, name, 2)
    assert stats.index_version.model == "m"


def test_search_returns_typed_hits_and_honours_filters(manager: MilvusIndexManager, collection: str) -> None:
    name = new_version(manager, collection)
    data = rows("a", 5) + rows("b", 5, seed=2)
    manager.upsert(name, data)
    hits = manager.search(collection, [data[7]["vector"]], limit=3, ef=1)
    assert hits[0][0].chunk_id == "b-2" and hits[0][0].score == pytest.approx(1.0, abs=1e-4)
    assert hits[0][0].text == "b part 2" and hits[0][0].metadata == {"title": "b"} and len(hits[0]) == 3
    only_a = manager.search(collection, [data[7]["vector"]], limit=3, filter='doc_id == "a"')
    assert {h.doc_id for h in only_a[0]} == {"a"}


def test_health_capabilities_and_compaction(manager: MilvusIndexManager, collection: str) -> None:
    name = manager.create_version(collection, manager.version_for("m", 8, "c"))
    manager.upsert(name, rows("a", 4))
    manager.delete_where(name, 'doc_id == "a"')
    report = manager.health()
    assert report.ok and name in report.collections and report.server_version
    capabilities = manager.capabilities
    if capabilities.is_lite:
        assert capabilities.supports_bm25
    else:
        assert parse_version(capabilities.version) == (2, 3) and not capabilities.supports_bm25
    result = manager.compact(collection if manager.resolve(collection) else name)
    assert result.collection == name and result.state in ("Completed", "CompactionStateCompleted")


def test_sharding_option_reaches_the_collection(milvus_uri: str, collection: str) -> None:
    manager = manager_for(milvus_uri, enable_sharding=True, num_shards=2)
    # The guide's form: rag_core.MilvusIndexManager reads the config itself, keyword overrides win.
    assert rag_core.MilvusIndexManager(enable_sharding=True, num_shards=8, uri=milvus_uri).shards == 8
    name = manager.create_version(collection, manager.version_for("m", 8, "c"))
    described = manager.client.describe_collection(name)
    if not manager.capabilities.is_lite:
        assert described["num_shards"] == 2
    assert manager.index_version(name).num_shards == 2


def test_unreachable_milvus_is_retried_then_named_in_the_error() -> None:
    manager = manager_for("http://127.0.0.1:1")
    with pytest.raises(MilvusUnavailableError, match=r"http://127.0.0.1:1 did not answer .* after 2 attempts"):
        manager.count("anything")
    report = manager.health()
    assert not report.ok and "127.0.0.1:1" in report.error
