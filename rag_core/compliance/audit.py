"""Recording audit events: one ``AuditTrail`` per process and database, and who is acting.

Every path that acts (CLI, Python API, Dagster runs) calls ``audit_trail(config).record(...)``. Recording is
synchronous and fails closed: an action whose audit record cannot be written raises rather than going unrecorded.
"""

import contextvars
import datetime
import getpass
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

from rag_core.compliance.audit_store import AuditStore
from rag_core.compliance.events import PII_REDACTIONS_KEY, AuditEventType, AuditRecord
from rag_core.config import RAGConfig
from rag_core.security.pii import redact_details

ACTOR_VARIABLE = "RAG_ACTOR"
Clock = Callable[[], datetime.datetime]

# Set by whoever knows better than the OS user: the CLI and Dagster name their channel, RBAC the identity.
acting_identity: contextvars.ContextVar[str] = contextvars.ContextVar("acting_identity", default="")
acting_channel: contextvars.ContextVar[str] = contextvars.ContextVar("acting_channel", default="api")


@contextmanager
def acting_through(channel: str) -> Iterator[None]:
    """Records made inside name ``channel`` (``user@dagster``); the caller's channel is back afterwards, so a Dagster
    run executed in-process never relabels what its host process records next."""
    reset = acting_channel.set(channel)
    try:
        yield
    finally:
        acting_channel.reset(reset)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def current_actor() -> str:
    """The identity acting: $RAG_ACTOR, else the RBAC identity, else the OS user, with the channel (cli, dagster,
    api) it acts through, e.g. ``alice@cli``."""
    explicit = os.environ.get(ACTOR_VARIABLE, "") or acting_identity.get()
    if explicit:
        return explicit
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        user = f"uid{os.getuid()}"
    return f"{user}@{acting_channel.get()}"


class AuditTrail:
    """Appends events to one chained store; the clock is injectable so retention can be tested."""

    def __init__(self, store: AuditStore, *, clock: Clock = utc_now) -> None:
        self.store = store
        self.clock = clock

    def record(self, event_type: AuditEventType, *, actor: str | None = None, outcome: str = "success",
               details: Mapping[str, Any] | None = None) -> AuditRecord:
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
    if parsed.get_backend_name() == "sqlite" and database and database != ":memory:" and \
            not database.startswith("file:") and not Path(database).is_absolute():
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
