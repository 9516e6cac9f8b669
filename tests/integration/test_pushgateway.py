"""Batch runs push their outcome to a real Pushgateway: real Dagster runs of the five batch jobs, pushed by the
run-status sensor, read back from the Pushgateway's /metrics and through a Prometheus that scrapes it; a failed
run keeps the last success's timestamp; an unreachable or hanging Pushgateway never fails anything."""

import logging
import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from rag_assets.definitions import build_definitions
from rag_core.config import RAGConfig
from rag_core.observability.pushgateway import BatchRunMetrics, push_batch_metrics
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.prometheus_server import (
    PrometheusServer,
    Pushgateway,
    free_port,
    running_prometheus,
    running_pushgateway,
    scrape_config,
)

BATCH_JOBS = ("ingestion", "drift_report_job", "compaction", "retention", "reindex")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def pushgateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Pushgateway]:
    with running_pushgateway(tmp_path_factory.mktemp("pushgateway")) as gateway:
        yield gateway


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory, pushgateway: Pushgateway) -> Iterator[PrometheusServer]:
    target = pushgateway.url.removeprefix("http://")
    config = scrape_config(
        [{"job_name": "pushgateway", "honor_labels": True, "static_configs": [{"targets": [target]}]}]
    )
    with running_prometheus(tmp_path_factory.mktemp("prometheus"), config) as server:
        yield server


def run_and_push(definitions: dg.Definitions, instance: dg.DagsterInstance, job: str) -> dg.ExecuteInProcessResult:
    """Run ``job`` for real, then evaluate the push sensor for its outcome as the daemon would."""
    result = definitions.resolve_job_def(job).execute_in_process(instance=instance, raise_on_error=False)
    outcome = "success" if result.success else "failure"
    event = result.get_run_success_event() if result.success else result.get_run_failure_event()
    sensor = next(s for s in definitions.sensors if s.name == f"push_{outcome}_run_metrics")
    sensor(
        dg.build_run_status_sensor_context(
            sensor_name=sensor.name,
            dagster_instance=instance,
            dagster_run=instance.get_run_by_id(result.run_id),
            dagster_event=event,
        )
    )
    return result


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def sample(found: Samples, name: str, **labels: str) -> float:
    key = (name, frozenset(labels.items()))
    assert key in found, f"{name}{labels} was not pushed; pushed: {sorted(n for n, _ in found if n.startswith('rag_'))}"
    return found[key]


def materialized(result: dg.ExecuteInProcessResult, asset: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in materialization.metadata.items()}


@pytest.mark.slow
def test_batch_runs_push_their_outcome_and_numbers(
    tmp_path: Path, pushgateway: Pushgateway, prometheus: PrometheusServer
) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), observability={"pushgateway_url": pushgateway.url})
    write_corpus(Path(config.ingestion.docs_dir))
    assert not [n for n, _ in samples(pushgateway.metrics()) if n.startswith("rag_")], "a fresh Pushgateway is empty"
    definitions, instance = build_definitions(config), dg.DagsterInstance.ephemeral()
    runs = {job: run_and_push(definitions, instance, job) for job in BATCH_JOBS}
    assert all(run.success for run in runs.values())

    pushed = samples(pushgateway.metrics())
    for job, run in runs.items():
        record = instance.get_run_record_by_id(run.run_id)
        assert sample(pushed, "rag_batch_success", job=f"rag_{job}", instance="") == 1
        assert sample(pushed, "rag_batch_duration_seconds", job=f"rag_{job}", instance="") == pytest.approx(
            record.end_time - record.start_time
        )
        assert sample(
            pushed, "rag_batch_last_success_timestamp_seconds", job=f"rag_{job}", instance=""
        ) == pytest.approx(record.end_time)
    ingestion = {"job": "rag_ingestion", "instance": ""}
    documents, chunks = materialized(runs["ingestion"], "raw_documents"), materialized(runs["ingestion"], "chunks")
    assert sample(pushed, "rag_ingestion_documents", **ingestion) == documents["documents"] == 5
    assert sample(pushed, "rag_ingestion_failed_documents", **ingestion) == 0
    assert sample(pushed, "rag_ingestion_chunks", **ingestion) == chunks["chunks"] > 5
    assert sample(pushed, "rag_ingestion_tokens", **ingestion) == chunks["tokens"]
    assert sample(pushed, "rag_ingestion_seconds", **ingestion) > 0
    rows = materialized(runs["ingestion"], "semantic_index")["rows"]
    assert sample(pushed, "rag_index_rows", collection="semantic_index", **ingestion) == rows
    assert sample(pushed, "rag_index_version", collection="semantic_index", **ingestion) == 1
    reindex = {"job": "rag_reindex", "instance": "", "collection": "semantic_index"}
    assert sample(pushed, "rag_index_version", **reindex) == 2 and sample(pushed, "rag_index_rows", **reindex) == rows
    drift = materialized(runs["drift_report_job"], "drift_report")
    drift_labels = {"job": "rag_drift_report_job", "instance": "", "collection": "semantic_index"}
    assert sample(pushed, "rag_drift_magnitude", **drift_labels) == pytest.approx(drift["drift_magnitude"])
    assert sample(pushed, "rag_drift_detected", **drift_labels) == float(drift["drift_detected"])
    assert sample(pushed, "rag_compaction_purged_rows", job="rag_compaction", instance="") == 0
    assert sample(pushed, "rag_retention_deleted_records", job="rag_retention", instance="") == 0

    # Prometheus scrapes the Pushgateway with honor_labels: each run keeps its own job label.
    outcomes = prometheus.wait_for("rag_batch_success", lambda r: len(r) == len(BATCH_JOBS))
    assert {r["metric"]["job"]: float(r["value"][1]) for r in outcomes} == {f"rag_{job}": 1.0 for job in BATCH_JOBS}
    scraped = prometheus.wait_for('rag_ingestion_chunks{job="rag_ingestion"}', lambda r: len(r) == 1)
    assert float(scraped[0]["value"][1]) == chunks["chunks"]

    # A failed run says so, and keeps the last success's timestamp (pushadd replaces only what it pushes).
    shutil.rmtree(config.ingestion.docs_dir)
    failed = run_and_push(definitions, instance, "ingestion")
    assert not failed.success
    after = samples(pushgateway.metrics())
    assert sample(after, "rag_batch_success", **ingestion) == 0
    assert sample(after, "rag_batch_last_success_timestamp_seconds", **ingestion) == pytest.approx(
        instance.get_run_record_by_id(runs["ingestion"].run_id).end_time
    )
    assert sample(after, "rag_batch_last_run_timestamp_seconds", **ingestion) == pytest.approx(
        instance.get_run_record_by_id(failed.run_id).end_time
    )


def _hanging_listener() -> socket.socket:
    """Accepts TCP connections (into the backlog) and never answers: a Pushgateway that hangs."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    return listener


@pytest.mark.parametrize("gateway", ["refused", "hanging", "malformed"])
def test_an_unreachable_pushgateway_fails_nothing(
    gateway: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    listener = _hanging_listener()
    url = {
        "refused": f"http://127.0.0.1:{free_port()}",
        "hanging": f"http://127.0.0.1:{listener.getsockname()[1]}",
        "malformed": "pushgateway:9091",
    }[gateway]
    config = make_config(
        tmp_path, str(tmp_path / "milvus.db"), observability={"pushgateway_url": url, "push_timeout_s": 0.5}
    )
    definitions, instance = build_definitions(config), dg.DagsterInstance.ephemeral()
    with caplog.at_level(logging.WARNING, logger="rag_core.observability.pushgateway"), listener:
        started = time.monotonic()
        result = run_and_push(definitions, instance, "retention")
        elapsed = time.monotonic() - started
    assert result.success and instance.get_run_by_id(result.run_id).status == dg.DagsterRunStatus.SUCCESS
    assert elapsed < 10, f"a {gateway} Pushgateway held the sensor for {elapsed:.1f} s"
    (warning,) = [r.getMessage() for r in caplog.records if "Pushgateway" in r.getMessage()]
    port = url.rsplit(":", 1)[1]  # the host may be masked by the PII log filter, the port is not
    assert "retention run" in warning and port in warning and "RAG__OBSERVABILITY__PUSHGATEWAY_URL" in warning


def test_nothing_is_pushed_without_a_pushgateway_url(tmp_path: Path) -> None:
    config: RAGConfig = make_config(tmp_path, str(tmp_path / "milvus.db"))
    assert not push_batch_metrics(
        config.observability, BatchRunMetrics(job="retention", success=True, started_at=1.0, finished_at=2.0)
    )


def test_a_misspelt_metric_fails_loudly() -> None:
    with pytest.raises(ValueError, match="rag_ingestion_document.*BATCH_GAUGES"):
        BatchRunMetrics(
            job="ingestion", success=True, started_at=1.0, finished_at=2.0, values={"rag_ingestion_document": 5}
        ).registry()
