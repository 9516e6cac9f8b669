"""The monthly performance schedule, its cron and timezone from ``schedules.*``; ``rag_assets.definitions`` adds it."""

import datetime

import dagster as dg

from rag_assets.defs.performance.jobs import performance_report_job
from rag_core.config import SchedulesConfig


def performance_schedule(config: SchedulesConfig) -> dg.ScheduleDefinition:
    # Running by default: the guide's monthly operation; it only reads the query log and writes a report.
    return month_before_schedule(
        "performance_report_schedule",
        performance_report_job.name,
        config.performance_cron,
        config.timezone,
        description=f"Monthly performance report ({config.performance_cron}, {config.timezone}) of the calendar "
        "month before the run.",
    )


def month_before_schedule(name: str, job: str, cron: str, timezone: str, *, description: str) -> dg.ScheduleDefinition:
    """A running schedule that asks a monthly-partitioned job for the calendar month before each tick (a report
    of a whole month, made once the month is over); the run key makes a tick ask only once."""

    @dg.schedule(
        name=name,
        job_name=job,
        cron_schedule=cron,
        execution_timezone=timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=description,
    )
    def _schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        month = previous_month(context.scheduled_execution_time.date())
        return dg.RunRequest(run_key=f"{name}-{month}", partition_key=month)

    return _schedule


def previous_month(day: datetime.date) -> str:
    """The partition key (its first day) of the month before ``day``'s."""
    last_of_previous = day.replace(day=1) - datetime.timedelta(days=1)
    return last_of_previous.replace(day=1).isoformat()
