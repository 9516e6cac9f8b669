"""The monthly compliance report and daily retention schedules, cron from ``compliance.*`` and timezone from
``schedules.timezone``; ``rag_assets.definitions`` adds them."""

import dagster as dg

from rag_assets.defs.compliance.jobs import compliance_report_job, retention
from rag_assets.defs.performance.schedules import month_before_schedule
from rag_core.config import RAGConfig


def compliance_report_schedule(config: RAGConfig) -> dg.ScheduleDefinition:
    cron, timezone = config.compliance.compliance_report_cron, config.schedules.timezone
    return month_before_schedule(
        "compliance_report_schedule",
        compliance_report_job.name,
        cron,
        timezone,
        description=f"Monthly compliance report ({cron}, {timezone}) of the calendar month before the run.",
    )


def retention_schedule(config: RAGConfig) -> dg.ScheduleDefinition:
    # Running by default: retention is a legal duty, and it deletes only what its configured periods make due.
    cron, timezone = config.compliance.retention_cron, config.schedules.timezone
    return dg.ScheduleDefinition(
        name="retention_schedule",
        job=retention,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Daily retention ({cron}, {timezone}): audit records and query-log "
        "days older than compliance.retention_days.",
    )
