"""Dagster runs that act on the index leave audit records: a run-status sensor records each finished run of the
ingestion, re-index, compaction, drift and query jobs (its run id, partition, trigger, and the numeric metadata
of what it materialized), so the assets themselves stay free of audit code. Records arrive within the sensor's
interval of the run's end, while the daemon runs."""

from typing import Any

import dagster as dg

from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.security.actor import acting_through

JOB_EVENTS = {
    "ingestion": AuditEventType.INGESTION,
    "reindex": AuditEventType.REINDEX,
    "compaction": AuditEventType.COMPACTION,
    "drift_report_job": AuditEventType.DRIFT,
    "query_job": AuditEventType.RETRIEVAL,
}
OUTCOMES = {dg.DagsterRunStatus.SUCCESS: "success", dg.DagsterRunStatus.FAILURE: "failure"}
# Text metadata that names things (collections, versions, folders) is kept; other text (a query, a Markdown table)
# never reaches the audit record.
ID_KEYS = frozenset({"collection", "alias", "index_version", "serving", "previous", "candidate", "source"})


def run_details(context: dg.RunStatusSensorContext) -> dict[str, Any]:
    """Ids and numbers only (see ``ID_KEYS``)."""
    run = context.dagster_run
    materialized: dict[str, dict[str, Any]] = {}
    for entry in context.instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.asset_materialization
        if materialization is not None:
            materialized[materialization.asset_key.to_user_string()] = {
                k: v.value
                for k, v in materialization.metadata.items()
                if isinstance(v.value, (int, float, bool)) or (k in ID_KEYS and isinstance(v.value, str))
            }
    trigger = run.tags.get("dagster/schedule_name") or run.tags.get("dagster/sensor_name") or "launched"
    return {
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": run.tags.get("dagster/partition"),
        "trigger": trigger,
        "materialized": materialized,
    }


def audit_run_sensors(config: RAGConfig) -> list[dg.SensorDefinition]:
    def record(context: dg.RunStatusSensorContext) -> None:
        event_type = JOB_EVENTS.get(context.dagster_run.job_name)
        if event_type is None:
            return
        details = run_details(context)
        with acting_through("dagster"):
            audit_trail(config).record(event_type, outcome=OUTCOMES[context.dagster_run.status], details=details)
            index = details["materialized"].get("semantic_index", {})
            if index.get("new_version"):  # the ingestion built a new version and promoted it
                audit_trail(config).record(
                    AuditEventType.VERSION_UPDATE,
                    details={
                        "run_id": details["run_id"],
                        "alias": index.get("alias"),
                        "to": index.get("collection"),
                        "index_version": index.get("index_version"),
                        "cause": "ingestion",
                    },
                )

    return [
        dg.run_status_sensor(
            run_status=status,
            name=f"audit_{outcome}_runs",
            default_status=dg.DefaultSensorStatus.RUNNING,
            description=f"Records each {outcome} run of the jobs that act on the index in the audit trail.",
        )(record)
        for status, outcome in OUTCOMES.items()
    ]
