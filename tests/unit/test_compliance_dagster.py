"""Dagster: the monthly compliance_report asset and its schedule, the daily retention job, and the sensors that
record the runs of the jobs that act on the index."""

import datetime
import json
from pathlib import Path

import dagster as dg

from rag_assets.definitions import build_definitions
from rag_assets.defs.compliance.sensors import JOB_EVENTS
from rag_core import AuditEventType, ComplianceManager
from rag_core.compliance.audit import audit_trail
from tests.support.configs import make_config
from tests.support.corpus import write_corpus


def test_monthly_report_retention_and_run_audit(tmp_path: Path) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    trail = audit_trail(config)
    trail.record(AuditEventType.VERSION_UPDATE, actor="svc", details={"alias": "a", "to": "a_v2"})
    trail.record(AuditEventType.RETRIEVAL, actor="svc", details={"query_id": "q1", "pii_redactions": 2})
    month = datetime.datetime.now(datetime.UTC).date().replace(day=1)
    definitions = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()

    report_run = definitions.resolve_job_def("compliance_report_job").execute_in_process(
        instance=instance, partition_key=month.isoformat()
    )
    metadata = {
        k: v.value for k, v in report_run.asset_materializations_for_node("compliance_report")[0].metadata.items()
    }
    assert metadata["total_events"] == 2 and metadata["version_updates"] == 1 and metadata["pii_redactions"] == 2
    assert metadata["chain_intact"] is True
    written = json.loads(Path(metadata["json"]).read_text())
    assert Path(metadata["json"]) == Path(config.compliance.reports_dir) / f"{month:%Y-%m}.json"
    assert written["retrievals"] == 1 and Path(metadata["markdown"]).read_text().startswith("# Compliance report")

    schedule = next(s for s in definitions.schedules if s.name == "compliance_report_schedule")
    tick = datetime.datetime(2026, 12, 1, 6, tzinfo=datetime.UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=tick, repository_def=definitions.get_repository_def()
    ) as context:
        assert [r.partition_key for r in schedule.evaluate_tick(context).run_requests] == ["2026-11-01"]

    assert definitions.resolve_job_def("retention").execute_in_process(instance=instance).success
    retention = ComplianceManager(config).query_audit_logs(event_type=AuditEventType.RETENTION)
    assert len(retention) == 1 and retention[0].actor.endswith("@dagster")

    compaction = definitions.resolve_job_def("compaction").execute_in_process(instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(compaction.run_id)
    outcome = "success" if compaction.success else "failure"
    event = compaction.get_run_success_event() if compaction.success else compaction.get_run_failure_event()
    sensor = next(s for s in definitions.sensors if s.name == f"audit_{outcome}_runs")
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name, dagster_instance=instance, dagster_run=run, dagster_event=event
        )
    )
    recorded = ComplianceManager(config).query_audit_logs(event_type=AuditEventType.COMPACTION)
    assert len(recorded) == 1 and recorded[0].outcome == outcome
    assert recorded[0].details["run_id"] == compaction.run_id and recorded[0].details["job"] == "compaction"
    assert ComplianceManager(config).verify_integrity().intact
    jobs = {job.name for job in definitions.get_repository_def().get_all_jobs()}
    assert set(JOB_EVENTS) <= jobs, "every audited job name is a real job"


def test_a_dagster_ingestion_that_promotes_is_audited_as_ingestion_and_version_update(tmp_path: Path) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    write_corpus(Path(config.ingestion.docs_dir))
    definitions = build_definitions(config)
    instance = dg.DagsterInstance.ephemeral()
    result = definitions.resolve_job_def("ingestion").execute_in_process(instance=instance)
    assert result.success
    sensor = next(s for s in definitions.sensors if s.name == "audit_success_runs")
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            dagster_event=result.get_run_success_event(),
        )
    )
    ingestion, promotion = ComplianceManager(config).query_audit_logs()
    assert ingestion.event_type is AuditEventType.INGESTION and ingestion.actor.endswith("@dagster")
    index = ingestion.details["materialized"]["semantic_index"]
    assert index["upserted"] > 0 and index["collection"].startswith("semantic_index")
    assert promotion.event_type is AuditEventType.VERSION_UPDATE and promotion.details["to"] == index["collection"]
