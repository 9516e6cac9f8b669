"""The monthly compliance report and daily retention schedules, cron from ``compliance.*`` and timezone from
``schedules.timezone``; ``rag_assets.definitions`` adds them."""

import dagster as dg

from rag_assets.defs.compliance.jobs import compliance_report_job, retention
from rag_assets.defs.performance.schedules import previous_month
from rag_core.config import RAGConfig


def compliance_report_schedule(config: RAGConfig) -> dg.ScheduleDefinition:
    cron, timezone = config.compliance.compliance_report_cron, config.schedules.timezone

    @dg.schedule(name="compliance_report_schedule", job=compliance_report_job, cron_schedule=cron,
                 execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Monthly compliance report ({cron}, {timezone}) of the calendar month before the run.")
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        month = previous_month(context.scheduled_execution_time.date())
        return dg.RunRequest(run_key=f"compliance-{month}", partition_key=month)

    return _schedule


def retention_schedule(config: RAGConfig) -> dg.ScheduleDefinition:
    # Running by default: retention is a legal duty, and it deletes only what its configured periods make due.
    cron, timezone = config.compliance.retention_cron, config.schedules.timezone
    return dg.ScheduleDefinition(name="retention_schedule", job=retention, cron_schedule=cron,
                                 execution_timezone=timezone, default_status=dg.DefaultScheduleStatus.RUNNING,
                                 description=f"Daily retention ({cron}, {timezone}): audit records and query-log "
                                             "days older than compliance.retention_days.")
