"""The operations guide's Python API, exactly as its snippets use it (rag_core for advanced_rag)."""

import asyncio
from pathlib import Path

import pytest

from rag_core import AdvancedRAGPipeline, Document
from tests.support.configs import make_config
from tests.support.corpus import write_corpus


@pytest.fixture
def pipeline(tmp_path: Path, embedder) -> AdvancedRAGPipeline:
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        "semantic_index",
        retrieval={"bm25_dir": str(tmp_path / "bm25"), "metrics_dir": str(tmp_path / "metrics")},
    )
    return AdvancedRAGPipeline(config)


def test_ingest_any_batch_then_retrieve_with_metrics_and_report(pipeline: AdvancedRAGPipeline, tmp_path: Path) -> None:
    files = write_corpus(tmp_path / "docs")
    report = asyncio.run(
        pipeline.ingest_documents(
            [
                Document(
                    doc_id="guide", text="Run compaction weekly to purge deleted rows.", title="Weekly operations"
                ),
                {"id": "faq", "text": "Drift is detected by comparing query distributions.", "title": "FAQ"},
            ]
        )
    )
    assert report.documents == 2 and report.sync.upserted == 2
    from_files = asyncio.run(pipeline.ingest_documents([files["milvus.md"], str(files["bm25.txt"])]))
    assert from_files.documents == 2

    results, metrics = asyncio.run(pipeline.retrieve(query="purge deleted rows"))
    assert results[0].doc_id == "guide"
    assert pipeline.config.rerank_top_k == 5 and len(results) == 4, "all four documents, fewer than rerank_top_k"
    assert metrics.total_latency_ms > 0 and metrics.latency_ms["dense"] > 0
    assert metrics.top_score == pytest.approx(results[0].fused_score)

    pipeline.config.rerank_top_k = 2
    pipeline.config.hybrid_alpha = 0.8  # "favor dense search"
    results, _ = asyncio.run(pipeline.retrieve(query="purge deleted rows"))
    assert len(results) == 2

    report = pipeline.get_performance_report()
    assert report["stage_latencies"]["retrieval"]["p95"] > 0
    assert 0 <= report["sla_compliance"]["compliance_rate"] <= 1
    pipeline.engine.latency.save()
    later = AdvancedRAGPipeline(pipeline.settings).get_performance_report()
    assert later["stage_latencies"]["retrieval"]["p50"] > 0, "a later process reads the persisted latencies"


def test_bad_batches_name_the_item_and_field(pipeline: AdvancedRAGPipeline) -> None:
    with pytest.raises(ValueError, match=r"Item 1 has no 'text'"):
        asyncio.run(pipeline.ingest_documents([{"id": "a", "text": "ok"}, {"id": "b"}]))
    with pytest.raises(TypeError, match="one kind per batch"):
        asyncio.run(pipeline.ingest_documents([{"id": "a", "text": "ok"}, "docs/a.md"]))
    with pytest.raises(ValueError, match="Empty query"):
        asyncio.run(pipeline.retrieve(query="  "))
