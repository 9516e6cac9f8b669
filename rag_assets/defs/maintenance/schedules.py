"""Schedules whose cron and timezone come from the config (``schedules.*``): built with the resources.

Plain functions, no definitions at module level: ``rag_assets.definitions`` adds what they build.
"""

import dagster as dg

from rag_assets.defs.maintenance.jobs import compaction
from rag_core.config import SchedulesConfig


def compaction_schedule(config: SchedulesConfig) -> dg.ScheduleDefinition:
    # Running by default: it is the guide's weekly operation, cheap, and never changes what queries return.
    return dg.ScheduleDefinition(
        name="compaction_schedule",
        job=compaction,
        cron_schedule=config.compaction_cron,
        execution_timezone=config.timezone,
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Weekly compaction ({config.compaction_cron}, {config.timezone}): merges segments and purges "
        "deleted rows in every complete version.",
    )
