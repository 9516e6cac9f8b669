"""Every asset attaches the numbers its page plots over time (documents, chunks, rows, seconds, nDCG@10, drift
magnitude, p95) as numeric metadata, and they are the figures the core computed, not approximations of them."""

import datetime
from pathlib import Path

import dagster as dg
import pytest

from rag_assets.definitions import build_definitions
from rag_assets.defs.retrieval.assets import retrieval_evaluation
from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import AuditEventType
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.observability.performance import performance_report
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.engines import engine_for
from tests.unit.test_cli import write_beir

NUMERIC = (dg.IntMetadataValue, dg.FloatMetadataValue)
# What each asset's page should plot: at least these keys, each an int or a float (a bool or a string is not plotted).
PLOTTED = {
    "raw_documents": {"documents", "rows", "bytes", "seconds"},
    "chunks": {"documents", "chunks", "tokens", "rows", "seconds", "chunks_per_s"},
    "embeddings": {"chunks", "embedded_chunks", "rows", "seconds"},
    "semantic_index": {"rows", "upserted", "deleted", "data_version", "seconds"},
    "bm25_index": {"documents", "chunks", "seconds"},
    "drift_report": {"drift_magnitude", "sample_size", "seconds"},
    "reindex_candidate": {"rows", "embedded", "seconds"},
    "serving_version": {"rows"},
    "retrieval_evaluation": {
        "ndcg_at_10",
        "recall_at_100",
        "mrr_at_10",
        "queries",
        "latency_p50_ms",
        "latency_p95_ms",
        "seconds",
    },
    "performance_report": {"queries", "sla_compliance", "cache_hit_rate", "retrieval_p50_ms", "retrieval_p95_ms"},
    "compliance_report": {"total_events", "version_updates", "retrievals"},
}


def _numbers(instance: dg.DagsterInstance, asset: str) -> dict[str, float]:
    """The asset's latest numeric metadata, after checking that every key it should plot is numeric."""
    event = instance.get_latest_materialization_event(dg.AssetKey(asset))
    assert event is not None, f"{asset} was not materialized"
    metadata = event.asset_materialization.metadata
    not_numeric = {
        k: type(metadata.get(k)).__name__ for k in PLOTTED[asset] if not isinstance(metadata.get(k), NUMERIC)
    }
    assert not not_numeric, f"{asset}: not plottable: {not_numeric}"
    return {k: v.value for k, v in metadata.items() if isinstance(v, NUMERIC)}


@pytest.mark.slow
def test_every_asset_attaches_plottable_numbers_that_match_the_core(tmp_path: Path, embedder) -> None:
    write_corpus(tmp_path / "docs")
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        quality={"reports_dir": str(tmp_path / "reports"), "drift_dir": str(tmp_path / "drift")},
    )
    definitions, instance = build_definitions(config), dg.DagsterInstance.ephemeral()

    def run(job: str, **options: object) -> None:
        assert definitions.resolve_job_def(job).execute_in_process(instance=instance, **options).success

    run("ingestion")
    engine = engine_for(config, embedder=embedder)
    for query in ("how are deleted rows purged", "what do sensors watch", "hnsw ef"):
        engine.search(query)
    engine.query_log.close()
    run("drift_report_job")
    run("reindex")
    month = datetime.datetime.now(datetime.UTC).date().replace(day=1)
    run("performance_report_job", partition_key=month.isoformat())
    assert dg.materialize(
        [retrieval_evaluation],
        resources=definitions.resources,
        instance=instance,
        run_config={"ops": {"retrieval_evaluation": {"config": {"dataset": str(write_beir(tmp_path / "tiny"))}}}},
    ).success
    for query_id in ("q1", "q2"):  # what the CLI and the service record per query
        audit_trail(config).record(AuditEventType.RETRIEVAL, details={"query_id": query_id})
    run("compliance_report_job", partition_key=month.isoformat())

    numbers = {asset: _numbers(instance, asset) for asset in PLOTTED}
    assert all(
        isinstance(numbers[asset]["seconds"], float) and numbers[asset]["seconds"] >= 0
        for asset in PLOTTED
        if "seconds" in PLOTTED[asset]
    )

    manager = MilvusIndexManager(config.milvus, config.index)
    indexed = manager.count("semantic_index__v1")
    assert numbers["raw_documents"]["documents"] == numbers["raw_documents"]["rows"] == 5
    assert numbers["chunks"]["documents"] == numbers["bm25_index"]["documents"] == 5
    assert (
        numbers["chunks"]["chunks"]
        == numbers["chunks"]["rows"]
        == numbers["embeddings"]["rows"]
        == numbers["semantic_index"]["rows"]
        == numbers["semantic_index"]["upserted"]
        == numbers["bm25_index"]["chunks"]
        == indexed
        > 5
    ), "the long document spans several chunks"
    assert numbers["embeddings"]["embedded_chunks"] == indexed  # a first run embeds every chunk

    assert 0 <= numbers["drift_report"]["drift_magnitude"] <= 1
    assert isinstance(numbers["drift_report"]["drift_magnitude"], float)
    # the same settings rebuild the same chunks; the new version serves them all
    assert numbers["reindex_candidate"]["rows"] == numbers["reindex_candidate"]["embedded"] == indexed
    assert numbers["serving_version"]["rows"] == manager.count("semantic_index") == indexed

    evaluation = numbers["retrieval_evaluation"]
    assert evaluation["ndcg_at_10"] == pytest.approx(1.0) and evaluation["queries"] == 3
    assert 0 < evaluation["latency_p50_ms"] <= evaluation["latency_p95_ms"]

    last_day = (month + datetime.timedelta(days=31)).replace(day=1) - datetime.timedelta(days=1)
    logged = performance_report(
        Path(config.quality.query_log_dir),
        period="monthly",
        start=month,
        today=last_day,
        target_latency_ms=config.pipeline.target_latency_ms,
    )
    performance = numbers["performance_report"]
    assert performance["queries"] == logged.queries >= 3
    assert performance["retrieval_p95_ms"] == pytest.approx(logged.latency_ms["retrieval"].p95)
    assert performance["sla_compliance"] == pytest.approx(logged.sla_compliance)

    audit = ComplianceManager(config).generate_compliance_report(month, last_day)
    assert numbers["compliance_report"]["retrievals"] == audit.retrievals == 2
    assert numbers["compliance_report"]["total_events"] == audit.total_events >= 2
