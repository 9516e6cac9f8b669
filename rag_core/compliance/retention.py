"""Retention: what is due for deletion from the audit store and the query log, by type and age.

Audit records older than their type's period lose their body (the hashed stub stays, so the chain verifies); the
purged prefix of the chain is removed behind a signed checkpoint. Query-log day partitions older than the
``query_log`` period are deleted whole. One RETENTION event records the cutoffs and counts.
"""

import datetime
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from rag_core.compliance.audit import AuditTrail
from rag_core.compliance.events import AuditEventType, AuditRecord, format_time
from rag_core.config import RAGConfig
from rag_core.security.actor import current_actor

log = logging.getLogger(__name__)
QUERY_LOG_KEY = "query_log"


@dataclass(frozen=True)
class RetentionResult:
    purged_records: int  # audit records whose body was dropped
    removed_records: int  # audit records removed behind the retention checkpoint
    query_log_days_deleted: list[str]
    cutoffs: dict[str, str]  # per event type (and query_log): everything before this instant was due
    event: AuditRecord  # the RETENTION event written


def retention_days(config: RAGConfig, name: str) -> int:
    return config.compliance.retention_days.get(name, config.compliance.default_retention_days)


def enforce_retention(config: RAGConfig, trail: AuditTrail, *, actor: str | None = None) -> RetentionResult:
    now = trail.clock()
    cutoffs = {t: format_time(now - datetime.timedelta(days=retention_days(config, t.value))) for t in AuditEventType}
    log_cutoff = (now - datetime.timedelta(days=retention_days(config, QUERY_LOG_KEY))).date()
    deleted_days = _delete_query_log_days(Path(config.quality.query_log_dir), log_cutoff)
    event = trail.store.purge(
        cutoffs,
        actor=actor or current_actor(),
        now=now,
        extra_details={"query_log_days_deleted": len(deleted_days), "query_log_cutoff": log_cutoff.isoformat()},
    )
    return RetentionResult(
        event.details["purged_records"],
        event.details["removed_records"],
        deleted_days,
        {**{t.value: c for t, c in cutoffs.items()}, QUERY_LOG_KEY: log_cutoff.isoformat()},
        event,
    )


def _delete_query_log_days(folder: Path, cutoff: datetime.date) -> list[str]:
    """Delete the ``date=YYYY-MM-DD`` partitions of days strictly before ``cutoff``."""
    deleted = []
    for partition in sorted(folder.glob("date=*")):
        try:
            day = datetime.date.fromisoformat(partition.name.removeprefix("date="))
        except ValueError:
            log.warning("Retention skips %s: not a date=YYYY-MM-DD partition", partition)
            continue
        if day < cutoff:
            shutil.rmtree(partition)
            deleted.append(day.isoformat())
    return deleted
