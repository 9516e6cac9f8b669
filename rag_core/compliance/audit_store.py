"""The audit store: append-only, hash-chained records in a real database through SQLAlchemy.

SQLite (a file in WAL mode) by default, PostgreSQL in production. Several processes append at once, so every
append runs in one transaction that first takes the chain head: SQLite's ``BEGIN IMMEDIATE`` (the database write
lock) or PostgreSQL's ``SELECT ... FOR UPDATE`` on the head row. The head row holds the last sequence number and
hash, HMAC-signed under ``$AUDIT_HMAC_KEY``, so cutting records off the tail is detected. Every
``checkpoint_every`` records a signed checkpoint is written too; retention writes one at its cut, from which the
remaining chain verifies.
"""

import datetime
import hashlib
import hmac
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Engine,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError, ProgrammingError

from rag_core.compliance.events import (
    GENESIS_HASH,
    AuditEventType,
    AuditRecord,
    body_hash,
    canonical_json,
    format_time,
    parse_time,
    record_hash,
)

HMAC_KEY_VARIABLE = "AUDIT_HMAC_KEY"
READ_BATCH = 5000
INIT_ATTEMPTS = 3  # processes starting together (Dagster's webserver and daemon) race to create the tables

metadata = MetaData()
records_table = Table(
    "audit_records", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("time", String(27), nullable=False, index=True),
    Column("event_type", String(32), nullable=False, index=True),
    Column("actor", String(256), nullable=False),
    Column("outcome", String(32), nullable=False),
    Column("details", Text, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("record_hash", String(64), nullable=False),
    Column("purged", Boolean, nullable=False, default=False),
)
head_table = Table(
    "audit_head", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("record_hash", String(64), nullable=False),
    Column("signature", String(64), nullable=False),
)
checkpoints_table = Table(
    "audit_checkpoints", metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("record_hash", String(64), nullable=False),
    Column("time", String(27), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("signature", String(64), nullable=False),
)


class AuditStoreError(RuntimeError):
    """The audit database cannot be opened or written; the message names the URL and what to check."""


def hmac_key() -> bytes | None:
    value = os.environ.get(HMAC_KEY_VARIABLE, "")
    return value.encode("utf-8") if value else None


def sign(key: bytes | None, seq: int, digest: str) -> str:
    """HMAC-SHA256 of a (seq, hash) pair; "" without a key (an unsigned checkpoint)."""
    if key is None:
        return ""
    return hmac.new(key, f"{seq}:{digest}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class ChainHead:
    seq: int
    record_hash: str
    signature: str


@dataclass(frozen=True)
class Checkpoint:
    seq: int
    record_hash: str
    time: str
    reason: str
    signature: str


def redacted_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


class AuditStore:
    """One database's chain. Thread-safe through SQLAlchemy's pool; process-safe through the head lock."""

    def __init__(self, url: str, *, checkpoint_every: int = 100) -> None:
        self.url = url
        self.checkpoint_every = checkpoint_every
        self.engine = _engine(url)
        self.is_sqlite = self.engine.dialect.name == "sqlite"
        for attempt in range(INIT_ATTEMPTS):
            try:
                self._initialise()
                return
            except (IntegrityError, ProgrammingError):
                if attempt + 1 == INIT_ATTEMPTS:  # another process creating the same tables or head row at once
                    raise
            except Exception as error:  # noqa: BLE001 - any driver error: name the database, keep the cause
                raise AuditStoreError(f"cannot open the audit store {redacted_url(url)}: {error}; check "
                                      "compliance.database_url") from error

    def _initialise(self) -> None:
        metadata.create_all(self.engine)
        with self._write() as conn:
            if conn.execute(select(head_table.c.seq)).first() is None:
                conn.execute(insert(head_table).values(id=1, seq=0, record_hash=GENESIS_HASH,
                                                       signature=sign(hmac_key(), 0, GENESIS_HASH)))

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction holding the chain's write lock from its first statement."""
        with self.engine.connect() as conn:
            with conn.execution_options(audit_write=True).begin():
                yield conn

    def _head_for_update(self, conn: Connection) -> ChainHead:
        query = select(head_table.c.seq, head_table.c.record_hash, head_table.c.signature)
        row = conn.execute(query if self.is_sqlite else query.with_for_update()).one()
        return ChainHead(*row)

    def append(self, event_type: AuditEventType, actor: str, outcome: str, details: Mapping[str, Any],
               now: datetime.datetime) -> AuditRecord:
        """Add one record at the end of the chain (and a checkpoint when one is due), atomically."""
        with self._write() as conn:
            return self._append(conn, self._head_for_update(conn), event_type, actor, outcome, details, now)

    def _append(self, conn: Connection, head: ChainHead, event_type: AuditEventType, actor: str, outcome: str,
                details: Mapping[str, Any], now: datetime.datetime) -> AuditRecord:
        time = format_time(now)
        body = body_hash(actor, outcome, details)
        key = hmac_key()
        seq = head.seq + 1
        digest = record_hash(head.record_hash, seq, time, event_type.value, body)
        conn.execute(insert(records_table).values(
            seq=seq, time=time, event_type=event_type.value, actor=actor, outcome=outcome,
            details=canonical_json(dict(details)), prev_hash=head.record_hash, body_hash=body,
            record_hash=digest, purged=False))
        conn.execute(update(head_table).values(seq=seq, record_hash=digest, signature=sign(key, seq, digest)))
        if seq % self.checkpoint_every == 0:
            self._checkpoint(conn, seq, digest, time, "periodic", key)
        return AuditRecord(seq=seq, time=parse_time(time), event_type=event_type, actor=actor, outcome=outcome,
                           details=dict(details), prev_hash=head.record_hash, body_hash=body, record_hash=digest)

    @staticmethod
    def _checkpoint(conn: Connection, seq: int, digest: str, time: str, reason: str, key: bytes | None) -> None:
        conn.execute(delete(checkpoints_table).where(checkpoints_table.c.seq == seq))
        conn.execute(insert(checkpoints_table).values(seq=seq, record_hash=digest, time=time, reason=reason,
                                                      signature=sign(key, seq, digest)))

    def head(self) -> ChainHead:
        with self.engine.connect() as conn:
            return ChainHead(*conn.execute(select(head_table.c.seq, head_table.c.record_hash,
                                                  head_table.c.signature)).one())

    def checkpoints(self) -> list[Checkpoint]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(checkpoints_table).order_by(checkpoints_table.c.seq)).all()
        return [Checkpoint(r.seq, r.record_hash, r.time, r.reason, r.signature) for r in rows]

    def records(self, *, event_type: AuditEventType | None = None, start: str | None = None, end: str | None = None,
                actor: str | None = None, limit: int | None = None,
                through_seq: int | None = None) -> Iterator[AuditRecord]:
        """Records in chain order, filtered (times in the stored form; end exclusive; up to ``through_seq``), read
        in batches."""
        after, returned = 0, 0
        while limit is None or returned < limit:
            query = select(records_table).where(records_table.c.seq > after).order_by(records_table.c.seq)
            if event_type is not None:
                query = query.where(records_table.c.event_type == event_type.value)
            if start is not None:
                query = query.where(records_table.c.time >= start)
            if end is not None:
                query = query.where(records_table.c.time < end)
            if actor is not None:
                query = query.where(records_table.c.actor == actor)
            if through_seq is not None:
                query = query.where(records_table.c.seq <= through_seq)
            batch = READ_BATCH if limit is None else min(READ_BATCH, limit - returned)
            with self.engine.connect() as conn:
                rows = conn.execute(query.limit(batch)).all()
            for row in rows:
                yield _record(row)
            returned += len(rows)
            if len(rows) < batch:
                return
            after = rows[-1].seq

    def purge(self, cutoffs: Mapping[AuditEventType, str], *, actor: str, now: datetime.datetime,
              extra_details: Mapping[str, Any]) -> AuditRecord:
        """Drop the body of every record older than its type's cutoff, remove the purged prefix of the chain and
        record the RETENTION event that authorises it, in one transaction.

        The removed prefix ends in a signed "retention" checkpoint that the first remaining record links to, so
        what is left still verifies; a purged record left in the middle keeps its hashes (a verifiable stub).
        """
        key = hmac_key()
        purged = 0
        with self._write() as conn:
            head = self._head_for_update(conn)
            for event_type, cutoff in cutoffs.items():
                result = conn.execute(update(records_table).where(
                    records_table.c.event_type == event_type.value, records_table.c.time < cutoff,
                    records_table.c.purged.is_(False),
                ).values(actor="", outcome="", details="{}", purged=True))
                purged += result.rowcount or 0
            first_live = conn.execute(select(records_table.c.seq).where(records_table.c.purged.is_(False))
                                      .order_by(records_table.c.seq).limit(1)).scalar()
            cut = head.seq if first_live is None else first_live - 1
            removed = 0
            last = conn.execute(select(records_table.c.record_hash).where(records_table.c.seq == cut)).scalar()
            if cut > 0 and last is not None:
                self._checkpoint(conn, cut, last, format_time(now), "retention", key)
                removed = conn.execute(delete(records_table).where(records_table.c.seq <= cut)).rowcount or 0
                conn.execute(delete(checkpoints_table).where(checkpoints_table.c.seq < cut))
            details = {**extra_details, "purged_records": purged, "removed_records": removed, "cut_seq": cut,
                       "cutoffs": {t.value: c for t, c in cutoffs.items()}}
            return self._append(conn, head, AuditEventType.RETENTION, actor, "success", details, now)


def _record(row: Any) -> AuditRecord:
    return AuditRecord(seq=row.seq, time=parse_time(row.time), event_type=AuditEventType(row.event_type),
                       actor=row.actor, outcome=row.outcome, details=json.loads(row.details),
                       prev_hash=row.prev_hash, body_hash=row.body_hash, record_hash=row.record_hash,
                       purged=bool(row.purged))


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _wal(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN itself (below), pysqlite must not
        dbapi_connection.execute("PRAGMA journal_mode=WAL")
        dbapi_connection.execute("PRAGMA busy_timeout=60000")

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("audit_write") else "BEGIN")

    return engine
