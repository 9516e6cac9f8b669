"""The weekly drift schedule, its cron and timezone from ``schedules.*``; ``rag_assets.definitions`` adds it."""

import dagster as dg

from rag_assets.defs.drift.jobs import drift_report_job
from rag_core.config import SchedulesConfig


def drift_schedule(config: SchedulesConfig) -> dg.ScheduleDefinition:
    # Running by default: the guide's weekly check; it only reads the index and the query log. What it may trigger
    # (a re-index) waits for reindex_sensor, which is stopped by default.
    return dg.ScheduleDefinition(
        name="drift_report_schedule",
        job=drift_report_job,
        cron_schedule=config.drift_cron,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Weekly drift report ({config.drift_cron}, {config.timezone}): query, result, corpus and "
        "model drift against the snapshot of the last promotion.",
    )
