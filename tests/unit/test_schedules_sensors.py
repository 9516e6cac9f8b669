"""Every schedule and sensor is visible with a description, its cron and timezone come from ``schedules.*``, it
asks for the runs it should, and those runs do what they say: the reindex job gates the alias move."""

import datetime
from pathlib import Path

import dagster as dg
import pytest

from rag_assets.definitions import build_definitions, build_resources
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.dagster_runs import _messages
from tests.unit.test_quality_gate import write_gate_dataset

RUNNING = {
    "compaction_schedule",
    "drift_report_schedule",
    "performance_report_schedule",
    "raw_documents_sensor",
    "compliance_report_schedule",
    "retention_schedule",
    "audit_success_runs",
    "audit_failure_runs",
    "push_success_run_metrics",
    "push_failure_run_metrics",
}


@pytest.fixture
def served(tmp_path: Path, embedder) -> RAGConfig:
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        quality={"drift_dir": str(tmp_path / "drift"), "reports_dir": str(tmp_path / "reports")},
        quality_gate={"dataset": str(write_gate_dataset(tmp_path / "gate"))},
    )
    ingest(config, RETRIEVAL_DOCS, embedder)
    return config


def test_every_schedule_and_sensor_is_described_configurable_and_stopped_unless_expected() -> None:
    config = RAGConfig.model_validate(
        {
            "schedules": {
                "timezone": "Europe/Berlin",
                "drift_cron": "30 6 * * 2",
                "performance_cron": "0 7 2 * *",
                "reindex_sensor_interval_s": 600,
            }
        }
    )
    definitions = build_definitions(config)
    dg.Definitions.validate_loadable(definitions)
    schedules = {s.name: s for s in definitions.schedules}
    sensors = {s.name: s for s in definitions.sensors}
    assert set(schedules) == {
        "compaction_schedule",
        "drift_report_schedule",
        "performance_report_schedule",
        "compliance_report_schedule",
        "retention_schedule",
    }
    assert set(sensors) == {
        "raw_documents_sensor",
        "reindex_sensor",
        "audit_success_runs",
        "audit_failure_runs",
        "push_success_run_metrics",
        "push_failure_run_metrics",
    }
    for name, definition in {**schedules, **sensors}.items():
        assert len(definition.description or "") > 40, name
        running = definition.default_status.value == "RUNNING"
        assert running == (name in RUNNING), name
    assert (
        schedules["drift_report_schedule"].cron_schedule,
        schedules["drift_report_schedule"].execution_timezone,
    ) == ("30 6 * * 2", "Europe/Berlin")
    assert schedules["performance_report_schedule"].cron_schedule == "0 7 2 * *"
    assert schedules["compaction_schedule"].execution_timezone == "Europe/Berlin"
    assert sensors["reindex_sensor"].minimum_interval_seconds == 600
    assert definitions.resolve_job_def("reindex") is not None


def test_the_schedules_ask_for_their_jobs_and_the_monthly_one_for_the_month_before() -> None:
    definitions = build_definitions(RAGConfig())
    schedules = {s.name: s for s in definitions.schedules}
    at = datetime.datetime(2026, 3, 1, 5, 0, tzinfo=datetime.UTC)
    with dg.build_schedule_context(
        scheduled_execution_time=at, repository_def=definitions.get_repository_def()
    ) as context:
        monthly = schedules["performance_report_schedule"].evaluate_tick(context).run_requests
        weekly = schedules["drift_report_schedule"].evaluate_tick(context).run_requests
    assert [r.partition_key for r in monthly] == ["2026-02-01"]
    assert schedules["performance_report_schedule"].job_name == "performance_report_job"
    assert len(weekly) == 1 and schedules["drift_report_schedule"].job_name == "drift_report_job"


def evaluate_sensor(config: RAGConfig, instance: dg.DagsterInstance) -> dg.SensorResult:
    sensor = build_definitions(config).resolve_sensor_def("reindex_sensor")
    with dg.build_sensor_context(instance=instance, resources=build_resources(config)) as context:
        return sensor(context)


def test_the_reindex_sensor_asks_on_changed_settings_and_on_detected_drift(served: RAGConfig) -> None:
    instance = dg.DagsterInstance.ephemeral()
    assert not evaluate_sensor(served, instance).run_requests

    changed = served.model_copy(update={"chunking": served.chunking.model_copy(update={"chunk_size": 100})})
    requests = evaluate_sensor(changed, instance).run_requests
    assert len(requests) == 1 and requests[0].run_key.startswith("settings-")
    assert requests[0].tags["reindex/reason"] == "settings"

    instance.report_runless_asset_event(dg.AssetMaterialization("drift_report", metadata={"drift_detected": False}))
    assert not evaluate_sensor(served, instance).run_requests
    instance.report_runless_asset_event(dg.AssetMaterialization("drift_report", metadata={"drift_detected": True}))
    requests = evaluate_sensor(served, instance).run_requests
    assert len(requests) == 1 and requests[0].run_key.startswith("drift-")


def run_job(config: RAGConfig, name: str, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return build_definitions(config).resolve_job_def(name).execute_in_process(instance=instance, raise_on_error=False)


def test_the_reindex_job_promotes_a_candidate_that_passes_the_gate_then_the_drift_job_reports(
    served: RAGConfig,
) -> None:
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(served, "reindex", instance)
    assert result.success
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "quality_gate" and check.passed and check.metadata["metric"].value == "ndcg@10"
    assert MilvusIndexManager(served.milvus, served.index).resolve("semantic_index") == "semantic_index__v2"
    serving = result.asset_materializations_for_node("serving_version")[0].metadata
    assert serving["serving"].value == "semantic_index__v2" and serving["previous"].value == "semantic_index__v1"

    drift = run_job(served, "drift_report_job", instance)  # against the snapshot the promotion took
    assert drift.success
    metadata = drift.asset_materializations_for_node("drift_report")[0].metadata
    assert metadata["drift_detected"].value is False and 0 <= metadata["drift_magnitude"].value <= 1
    signals = {k for k in metadata if k.startswith("signal_")}
    assert signals >= {"signal_result_overlap", "signal_model_canary", "signal_corpus_mean"}
    assert all(isinstance(metadata[k].value, float) for k in metadata if k.startswith("signal_"))
    assert not evaluate_sensor(served, instance).run_requests


def test_a_failed_gate_fails_the_reindex_run_and_leaves_the_alias(served: RAGConfig, perturbed_model: str) -> None:  # noqa: F811
    worse = served.model_copy(update={"embedding": served.embedding.model_copy(update={"model": perturbed_model})})
    result = run_job(worse, "reindex", dg.DagsterInstance.ephemeral())
    assert not result.success
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    values = check.metadata
    assert values["candidate_value"].value < values["serving_value"].value - served.quality_gate.max_ndcg_drop
    assert f"{values['candidate_value'].value:.4f}" in check.description
    assert f"{values['serving_value'].value:.4f}" in check.description
    failures = [_messages(e.step_failure_data.error) for e in result.all_events if e.is_step_failure]
    assert any("quality_gate" in message for message in failures)
    assert not result.asset_materializations_for_node("serving_version")
    manager = MilvusIndexManager(served.milvus, served.index)
    assert manager.resolve("semantic_index") == "semantic_index__v1" and manager.state("semantic_index__v2").complete
