"""A Milvus outage: retried, then a loud failure naming the URI, while the last good index keeps serving."""

import logging
from pathlib import Path

import pytest

from rag_core.index.manager import MilvusIndexManager
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.dagster_runs import run_ingestion
from tests.support.tcp_proxy import TcpProxy


@pytest.mark.server
def test_outage_fails_the_sync_loudly_and_the_previous_version_keeps_answering(
    tmp_path: Path, milvus_server, collection: str, embedder, caplog: pytest.LogCaptureFixture
) -> None:
    write_corpus(tmp_path / "docs")
    good = make_config(tmp_path, milvus_server.uri, collection, milvus={"consistency_level": "Strong"})
    first = run_ingestion(good)
    rows = first.metadata["semantic_index"]["rows"]

    proxy = TcpProxy(target_port=milvus_server.port)
    rebuild = make_config(tmp_path, proxy.uri, collection, index={"M": 8})  # would build and promote __v2
    proxy.cut()
    with caplog.at_level(logging.WARNING, logger="rag_core.index.retry"):
        failed = run_ingestion(rebuild, expect_success=False)

    message = failed.errors["semantic_index"]
    assert f"Milvus at {proxy.uri} did not answer" in message and "after 2 attempts" in message
    assert "healthz" in message, "the error tells the user what to check"
    assert any("retry 1/1" in r.getMessage() for r in caplog.records), "the outage was retried before failing"
    assert failed.metadata["embeddings"]["embedded_chunks"] == 0, "work before the outage is kept, not redone"

    manager = MilvusIndexManager(good.milvus, good.index)
    assert manager.resolve(collection) == f"{collection}__v1"
    assert manager.count(f"{collection}__v1") == rows
    query = manager.search(collection, [[0.1] * 384], limit=3)
    assert len(query[0]) == 3, "the last good index still serves searches"
