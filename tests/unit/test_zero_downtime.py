"""Zero downtime, proven: 8 threads query without pause during a re-index and the alias move; no query fails and
every answer comes from one complete version (on Milvus Lite, and on the real server in the slow run)."""

from pathlib import Path

from benchmarks.zero_downtime import under_load
from rag_core.config import RAGConfig
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from tests.support.configs import make_config
from tests.support.corpus import paragraphs, write_corpus


def test_eight_threads_query_through_a_reindex_without_an_error_or_a_mixed_answer(
    tmp_path: Path, milvus_uri: str, collection: str, embedder
) -> None:
    config: RAGConfig = make_config(
        tmp_path,
        milvus_uri,
        collection,
        retrieval={"bm25_refresh_s": 0.2},
        quality={"drift_dir": str(tmp_path / "drift")},
    )
    docs = tmp_path / "docs"
    write_corpus(docs)
    for topic in ("indexes", "queries", "versions", "schedules"):  # enough text for the rebuild to take a while
        (docs / f"{topic}.md").write_text(f"# {topic}\n\n{paragraphs(topic, 12)}\n", encoding="utf-8")
    ingest_path(docs, RagContext(config, embedder=embedder))

    run = under_load(config, embedder=embedder, threads=8)
    assert run.errors == [] and run.inconsistent == 0
    assert run.served_before == f"{collection}__v1" and run.served_after == f"{collection}__v2"
    assert set(run.versions_seen) == {f"{collection}__v1", f"{collection}__v2"}, "both versions answered"
    assert run.answers_during_reindex > 0 and run.answered > 100
