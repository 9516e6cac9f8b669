"""Batch runs report to the Prometheus Pushgateway (``observability.pushgateway_url``): a run-status sensor pushes
each finished run of the ingestion, re-index, compaction, drift and retention jobs, its outcome, duration and the
numbers its assets and ops recorded, so the jobs themselves carry no metrics code and a push can never fail a run.
Like the audit sensors, pushes happen within the sensor's interval of the run's end, while the daemon runs."""

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from rag_assets.defs.compliance.sensors import OUTCOMES, run_details
from rag_core.config import RAGConfig
from rag_core.index.manager import VERSION_SEPARATOR
from rag_core.index.retention import version_number
from rag_core.observability.pushgateway import BatchRunMetrics, push_batch_metrics

Numbers = Mapping[str, Mapping[str, Any]]  # step or asset -> numeric (and id) metadata, as run_details keeps it
INGESTION_ASSETS = ("raw_documents", "chunks", "embeddings", "semantic_index")


@dataclass(frozen=True)
class Gauges:
    """A job's own gauges: unlabelled, and per collection (gauge name -> alias -> value)."""

    values: dict[str, float] = field(default_factory=dict)
    per_collection: dict[str, dict[str, float]] = field(default_factory=dict)


def _index(collection: str | None, rows: float | None) -> dict[str, dict[str, float]]:
    """Rows and version number of the version ``collection`` (``ALIAS__vN``), labelled with its alias."""
    if not collection or rows is None or VERSION_SEPARATOR not in collection:
        return {}
    alias = collection.rsplit(VERSION_SEPARATOR, 1)[0]
    return {"rag_index_rows": {alias: rows}, "rag_index_version": {alias: version_number(collection)}}


def _ingestion(numbers: Numbers) -> Gauges:
    documents, chunks, index = (numbers.get(k, {}) for k in ("raw_documents", "chunks", "semantic_index"))
    seconds = [numbers[k]["seconds"] for k in INGESTION_ASSETS if "seconds" in numbers.get(k, {})]
    values = {
        "rag_ingestion_documents": documents.get("documents"),
        "rag_ingestion_failed_documents": documents.get("skipped_inputs"),
        "rag_ingestion_chunks": chunks.get("chunks"),
        "rag_ingestion_tokens": chunks.get("tokens"),
        "rag_ingestion_seconds": sum(seconds) if seconds else None,
    }
    present = {k: v for k, v in values.items() if v is not None}  # a failed run pushes what its assets got to
    return Gauges(present, _index(index.get("collection"), index.get("rows")))


def _reindex(numbers: Numbers) -> Gauges:
    if "serving_version" not in numbers:  # the gate refused the candidate: the alias did not move
        return Gauges()
    candidate = numbers.get("reindex_candidate", {})
    return Gauges(per_collection=_index(candidate.get("candidate"), candidate.get("rows")))


def _drift(numbers: Numbers) -> Gauges:
    report = numbers.get("drift_report", {})
    if "drift_magnitude" not in report:
        return Gauges()
    alias = report["collection"].rsplit(VERSION_SEPARATOR, 1)[0]
    per_collection = {
        "rag_drift_magnitude": {alias: report["drift_magnitude"]},
        "rag_drift_detected": {alias: float(report["drift_detected"])},
    }
    if "probe_set_ndcg" in report:  # no probe set scored: no value, rather than a misleading 0
        per_collection["rag_drift_probe_ndcg"] = {alias: report["probe_set_ndcg"]}
    return Gauges(per_collection=per_collection)


def _compaction(numbers: Numbers) -> Gauges:
    compacted = numbers.get("compact_index", {})
    if "deleted_rows_before" not in compacted:
        return Gauges()
    purged = max(compacted["deleted_rows_before"] - compacted["deleted_rows_after"], 0)
    return Gauges({"rag_compaction_purged_rows": purged})


def _retention(numbers: Numbers) -> Gauges:
    retained = numbers.get("enforce_retention", {})
    if "purged_records" not in retained:
        return Gauges()
    return Gauges({"rag_retention_deleted_records": retained["purged_records"] + retained["removed_records"]})


# The jobs whose runs are pushed, and how each one's numbers become gauges.
JOB_GAUGES: dict[str, Callable[[Numbers], Gauges]] = {
    "ingestion": _ingestion,
    "reindex": _reindex,
    "compaction": _compaction,
    "drift_report_job": _drift,
    "retention": _retention,
}


def _op_outputs(context: dg.RunStatusSensorContext) -> dict[str, dict[str, Any]]:
    """The numeric output metadata of plain ops (compaction, retention), which materialize no asset."""
    outputs: dict[str, dict[str, Any]] = {}
    for entry in context.instance.all_logs(context.dagster_run.run_id, of_type=dg.DagsterEventType.STEP_OUTPUT):
        data = entry.dagster_event.step_output_data
        outputs.setdefault(entry.step_key, {}).update(
            {k: v.value for k, v in data.metadata.items() if isinstance(v.value, (int, float, bool))}
        )
    return outputs


def batch_run_metrics(context: dg.RunStatusSensorContext) -> BatchRunMetrics | None:
    """The finished run's metrics, or None for a job that is not batch work (the query job, the reports)."""
    run = context.dagster_run
    gauges = JOB_GAUGES.get(run.job_name)
    if gauges is None:
        return None
    record = context.instance.get_run_record_by_id(run.run_id)
    finished = record.end_time or record.update_timestamp.timestamp()
    own = gauges({**_op_outputs(context), **run_details(context)["materialized"]})
    return BatchRunMetrics(
        job=run.job_name,
        success=run.status == dg.DagsterRunStatus.SUCCESS,
        started_at=record.start_time or finished,
        finished_at=finished,
        values=own.values,
        per_collection=own.per_collection,
    )


def pushgateway_sensors(config: RAGConfig) -> list[dg.SensorDefinition]:
    def push(context: dg.RunStatusSensorContext) -> None:
        if not config.observability.pushgateway_url:
            return
        metrics = batch_run_metrics(context)
        if metrics is not None and push_batch_metrics(config.observability, metrics):
            context.log.info(f"pushed the {metrics.job} run's metrics to {config.observability.pushgateway_url}")

    return [
        dg.run_status_sensor(
            run_status=status,
            name=f"push_{outcome}_run_metrics",
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Pushes the outcome and numbers of each {outcome} run of the "
            "ingestion, re-index, compaction, drift and retention jobs to the "
            "Prometheus Pushgateway (observability.pushgateway_url; nothing when "
            "unset).",
        )(push)
        for status, outcome in OUTCOMES.items()
    ]
