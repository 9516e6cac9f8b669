"""The monthly performance_report asset reads one calendar month of the query log into plottable metadata, a
per-day latency table, Markdown and a PNG chart, and the monthly job runs it for a partition."""

import datetime
from pathlib import Path

import dagster as dg

from rag_assets.definitions import build_definitions
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.engines import engine_for

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_a_month_of_queries_becomes_metadata_a_table_and_a_chart(tmp_path: Path, embedder) -> None:
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        quality={"reports_dir": str(tmp_path / "reports"), "drift_dir": str(tmp_path / "drift")},
    )
    ingest(config, RETRIEVAL_DOCS, embedder)
    engine = engine_for(config, embedder=embedder)
    for query in ["compaction purges rows", "hnsw ef", "alias versions", "compaction purges rows"]:
        engine.search(query)
    engine.query_log.close()
    instance = dg.DagsterInstance.ephemeral()
    instance.report_runless_asset_event(
        dg.AssetMaterialization("drift_report", metadata={"drift_magnitude": 0.04, "drift_detected": False})
    )
    month = datetime.datetime.now(datetime.UTC).date().replace(day=1)
    job = build_definitions(config).resolve_job_def("performance_report_job")

    result = job.execute_in_process(instance=instance, partition_key=month.isoformat())
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("performance_report")[0].metadata.items()}
    assert metadata["queries"] == 4 and metadata["month"] == f"{month:%Y-%m}"
    assert 0 <= metadata["sla_compliance"] <= 1 and metadata["cache_hit_rate"] == 0.25
    assert metadata["retrieval_p50_ms"] <= metadata["retrieval_p95_ms"] <= metadata["retrieval_p99_ms"]
    stages = {r.data["stage"] for r in metadata["latency_by_day"].records}
    assert {"retrieval", "embed", "dense"} <= stages
    assert "| day | queries | p95 ms | SLA | cache hits |" in metadata["days"]
    assert "hallucination_risk" in metadata["days"], "the quality-signal trend"
    assert "0.04" in metadata["drift"], "the month's drift reports"
    chart = Path(metadata["chart"])
    assert chart == tmp_path / "reports" / "performance" / f"{month:%Y-%m}.png"
    assert chart.read_bytes()[:8] == PNG_MAGIC

    empty = job.execute_in_process(instance=instance, partition_key="2026-01-01")
    values = empty.asset_materializations_for_node("performance_report")[0].metadata
    assert values["queries"].value == 0 and "no queries logged" in values["note"].value
