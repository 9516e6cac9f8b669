"""Recording audit events: one ``AuditTrail`` per process and database (who is acting: ``security.actor``).

Every path that acts (CLI, Python API, Dagster runs) calls ``audit_trail(config).record(...)``. Recording is
synchronous and fails closed: an action whose audit record cannot be written raises rather than going unrecorded.
"""

import datetime
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from rag_core.compliance.audit_store import AuditStore
from rag_core.compliance.events import PII_REDACTIONS_KEY, AuditEventType, AuditRecord
from rag_core.config import RAGConfig
from rag_core.security.actor import current_actor
from rag_core.security.pii import redact_details

Clock = Callable[[], datetime.datetime]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class AuditTrail:
    """Appends events to one chained store; the clock is injectable so retention can be tested."""

    def __init__(self, store: AuditStore, *, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock

    def record(
        self,
        event_type: AuditEventType,
        *,
        actor: str | None = None,
        outcome: str = "success",
        details: Mapping[str, Any] | None = None,
    ) -> AuditRecord:
        """Append one event. ``details`` holds ids, counts and versions, never document or query text; any PII a
        detail carries anyway (an id that is an e-mail address, an error message) is redacted and counted under
        ``pii_redactions``."""
        clean, redactions = redact_details(details or {})
        if redactions:
            clean[PII_REDACTIONS_KEY] = redactions
        return self.store.append(AuditEventType(event_type), actor or current_actor(), outcome, clean, self.clock())


_trails: dict[tuple[str, int], AuditTrail] = {}
_trails_lock = threading.Lock()


def absolute_database_url(url: str) -> str:
    """A relative SQLite path (the default) resolved against the working directory now: the trail a process keeps
    for it must not follow the process into another directory."""
    parsed = make_url(url)
    database = parsed.database
    if (
        parsed.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
        and not Path(database).is_absolute()
    ):
        return parsed.set(database=str(Path(database).resolve())).render_as_string(hide_password=False)
    return url


def audit_trail(config: RAGConfig) -> AuditTrail:
    """The process's trail for ``config.compliance.database_url`` (opened once, then reused: cheap to call)."""
    key = (absolute_database_url(config.compliance.database_url), config.compliance.checkpoint_every)
    with _trails_lock:
        trail = _trails.get(key)
        if trail is None:
            trail = _trails[key] = AuditTrail(AuditStore(key[0], checkpoint_every=key[1]))
        return trail
