"""The audit store: append-only, hash-chained records in a real database through SQLAlchemy.

SQLite (a file in WAL mode) by default, PostgreSQL in production. Several processes append at once, so every
append runs in one transaction that first takes the chain head: SQLite's ``BEGIN IMMEDIATE`` (the database write
lock) or PostgreSQL's ``SELECT ... FOR UPDATE`` on the head row. The head row holds the last sequence number and
hash, HMAC-signed under ``$AUDIT_HMAC_KEY``, so cutting records off the tail is detected. Every
``checkpoint_every`` records a signed checkpoint is written too; retention writes one at its cut, from which the
remaining chain verifies.

Reads go through a ``ChainView``: head, checkpoints and records as of one instant. Since an append commits its
record and the head together, a row a view finds beyond the head was put there by hand; reads of the chain stop at
the head and never return it.
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
    Select,
    String,
    Table,
    Text,
    create_engine,
    delete,
    event,
    func,
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
CUT_KEY = "cut_seq"  # the details key of a RETENTION event: the checkpoint its cut left the chain starting at
READ_BATCH = 5000
INIT_ATTEMPTS = 3  # processes starting together (Dagster's webserver and daemon) race to create the tables

metadata = MetaData()
records_table = Table(
    "audit_records",
    metadata,
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
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", Integer, nullable=False),
    Column("record_hash", String(64), nullable=False),
    Column("signature", String(64), nullable=False),
)
checkpoints_table = Table(
    "audit_checkpoints",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("record_hash", String(64), nullable=False),
    Column("time", String(27), nullable=False),
    Column("reason", String(32), nullable=False),
    Column("signature", String(64), nullable=False),
)


class AuditStoreError(RuntimeError):
    """The audit database cannot be opened or written; the message names the URL and what to check."""


class TamperedStoreError(ValueError):
    """The audit database holds what no append writes (a malformed record, no chain head): it was edited directly.
    A read that meets it stops here; ``rag audit verify`` names the damage."""


class MalformedRecordError(TamperedStoreError):
    """A stored record whose fields cannot be read back (details not a JSON object, a time not in the stored form,
    an unknown event type)."""

    def __init__(self, seq: int, problem: str) -> None:
        super().__init__(
            f"audit record {seq} cannot be read: {problem}; the audit database was edited outside the "
            "trail, run `rag audit verify` and restore it from a backup"
        )
        self.seq = seq
        self.problem = problem


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
                raise AuditStoreError(
                    f"cannot open the audit store {redacted_url(url)}: {error}; check compliance.database_url"
                ) from error

    def _initialise(self) -> None:
        """Create what is missing; only a store with no records and no checkpoints gets the genesis head. A head
        row that is gone while records remain (its table dropped or emptied) stays gone: a fresh head would
        restart the chain over the old records, so verification reports it and appends refuse instead."""
        metadata.create_all(self.engine)
        with self._write() as conn:
            if all(
                conn.execute(select(table.c.seq).limit(1)).first() is None
                for table in (head_table, records_table, checkpoints_table)
            ):
                conn.execute(
                    insert(head_table).values(
                        id=1, seq=0, record_hash=GENESIS_HASH, signature=sign(hmac_key(), 0, GENESIS_HASH)
                    )
                )

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        """A transaction holding the chain's write lock from its first statement."""
        with self.engine.connect() as conn:
            with conn.execution_options(audit_write=True).begin():
                yield conn

    def _head_for_update(self, conn: Connection) -> ChainHead:
        query = select(head_table.c.seq, head_table.c.record_hash, head_table.c.signature)
        row = conn.execute(query if self.is_sqlite else query.with_for_update()).first()
        if row is None:
            raise AuditStoreError(
                f"cannot append to the audit store {redacted_url(self.url)}: its chain head is "
                "missing while records remain (table audit_head dropped or emptied); run `rag audit "
                "verify` and restore the audit database from a backup"
            )
        return ChainHead(*row)

    def append(
        self, event_type: AuditEventType, actor: str, outcome: str, details: Mapping[str, Any], now: datetime.datetime
    ) -> AuditRecord:
        """Add one record at the end of the chain (and a checkpoint when one is due), atomically."""
        try:
            with self._write() as conn:
                return self._append(conn, self._head_for_update(conn), event_type, actor, outcome, details, now)
        except IntegrityError as error:  # the next seq is taken: a row was inserted beyond the head by hand
            raise AuditStoreError(
                f"cannot append to the audit store {redacted_url(self.url)}: a record beyond the "
                "chain head holds the next seq (inserted outside the trail); run `rag audit "
                "verify` and restore the audit database from a backup"
            ) from error

    def _append(
        self,
        conn: Connection,
        head: ChainHead,
        event_type: AuditEventType,
        actor: str,
        outcome: str,
        details: Mapping[str, Any],
        now: datetime.datetime,
    ) -> AuditRecord:
        time = format_time(now)
        body = body_hash(actor, outcome, details)
        key = hmac_key()
        seq = head.seq + 1
        digest = record_hash(head.record_hash, seq, time, event_type.value, body)
        conn.execute(
            insert(records_table).values(
                seq=seq,
                time=time,
                event_type=event_type.value,
                actor=actor,
                outcome=outcome,
                details=canonical_json(dict(details)),
                prev_hash=head.record_hash,
                body_hash=body,
                record_hash=digest,
                purged=False,
            )
        )
        conn.execute(update(head_table).values(seq=seq, record_hash=digest, signature=sign(key, seq, digest)))
        if seq % self.checkpoint_every == 0:
            self._checkpoint(conn, seq, digest, time, "periodic", key)
        return AuditRecord(
            seq=seq,
            time=parse_time(time),
            event_type=event_type,
            actor=actor,
            outcome=outcome,
            details=dict(details),
            prev_hash=head.record_hash,
            body_hash=body,
            record_hash=digest,
        )

    @staticmethod
    def _checkpoint(conn: Connection, seq: int, digest: str, time: str, reason: str, key: bytes | None) -> None:
        conn.execute(delete(checkpoints_table).where(checkpoints_table.c.seq == seq))
        conn.execute(
            insert(checkpoints_table).values(
                seq=seq, record_hash=digest, time=time, reason=reason, signature=sign(key, seq, digest)
            )
        )

    @contextmanager
    def snapshot(self) -> Iterator["ChainView"]:
        """A read-only view of the chain as of one instant: SQLite's read transaction in WAL mode, PostgreSQL's
        REPEATABLE READ. Appends committed meanwhile are not in it, and do not wait for it."""
        with self.engine.connect() as conn:
            if not self.is_sqlite:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield ChainView(conn)

    def checkpoints(self) -> list[Checkpoint]:
        with self.snapshot() as view:
            return view.checkpoints()

    def records(
        self,
        *,
        event_type: AuditEventType | None = None,
        start: str | None = None,
        end: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditRecord]:
        """The chain's records up to its head (``ChainView.records``), in one snapshot held until the last is read."""
        with self.snapshot() as view:
            yield from view.records(
                event_type=event_type, start=start, end=end, actor=actor, limit=limit, through_seq=view.end()
            )

    def purge(
        self,
        cutoffs: Mapping[AuditEventType, str],
        *,
        actor: str,
        now: datetime.datetime,
        extra_details: Mapping[str, Any],
    ) -> AuditRecord:
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
                result = conn.execute(
                    update(records_table)
                    .where(
                        records_table.c.event_type == event_type.value,
                        records_table.c.time < cutoff,
                        records_table.c.purged.is_(False),
                    )
                    .values(actor="", outcome="", details="{}", purged=True)
                )
                purged += result.rowcount or 0
            first_live = conn.execute(
                select(records_table.c.seq)
                .where(records_table.c.purged.is_(False))
                .order_by(records_table.c.seq)
                .limit(1)
            ).scalar()
            cut = head.seq if first_live is None else first_live - 1
            removed = 0
            last = conn.execute(select(records_table.c.record_hash).where(records_table.c.seq == cut)).scalar()
            if cut > 0 and last is not None:
                self._checkpoint(conn, cut, last, format_time(now), "retention", key)
                removed = conn.execute(delete(records_table).where(records_table.c.seq <= cut)).rowcount or 0
                conn.execute(delete(checkpoints_table).where(checkpoints_table.c.seq < cut))
            details = {
                **extra_details,
                "purged_records": purged,
                "removed_records": removed,
                CUT_KEY: cut,
                "cutoffs": {t.value: c for t, c in cutoffs.items()},
            }
            return self._append(conn, head, AuditEventType.RETENTION, actor, "success", details, now)


class ChainView:
    """The chain in one snapshot (``AuditStore.snapshot``); ``head`` is None when its row is gone."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        row = conn.execute(select(head_table.c.seq, head_table.c.record_hash, head_table.c.signature)).first()
        self.head = None if row is None else ChainHead(*row)

    def end(self) -> int:
        """The seq the head says the chain ends at; TamperedStoreError when there is no head to say it."""
        if self.head is None:
            raise TamperedStoreError(
                "the audit chain head is missing while records remain (table audit_head dropped "
                "or emptied): run `rag audit verify` and restore the audit database from a "
                "backup"
            )
        return self.head.seq

    def checkpoints(self) -> list[Checkpoint]:
        rows = self.conn.execute(select(checkpoints_table).order_by(checkpoints_table.c.seq)).all()
        return [Checkpoint(r.seq, r.record_hash, r.time, r.reason, r.signature) for r in rows]

    def rows(self, *, through_seq: int | None = None) -> Iterator[Any]:
        """Every stored record row as it is (unparsed, whatever its seq) up to ``through_seq``: what verification
        walks."""
        query = select(records_table)
        return self._paged(query if through_seq is None else query.where(records_table.c.seq <= through_seq))

    def first_seq_beyond(self, seq: int) -> int | None:
        return self.conn.execute(select(func.min(records_table.c.seq)).where(records_table.c.seq > seq)).scalar()

    def records(
        self,
        *,
        through_seq: int,
        event_type: AuditEventType | None = None,
        start: str | None = None,
        end: str | None = None,
        actor: str | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditRecord]:
        """Records 1 to ``through_seq`` in chain order, filtered (times in the stored form, end exclusive); with
        ``limit``, the newest ``limit`` of them. A record that cannot be read raises MalformedRecordError."""
        query = select(records_table).where(records_table.c.seq.between(1, through_seq))
        if event_type is not None:
            query = query.where(records_table.c.event_type == event_type.value)
        if start is not None:
            query = query.where(records_table.c.time >= start)
        if end is not None:
            query = query.where(records_table.c.time < end)
        if actor is not None:
            query = query.where(records_table.c.actor == actor)
        if limit is None:
            rows: Iterator[Any] = self._paged(query)
        else:
            rows = reversed(self.conn.execute(query.order_by(records_table.c.seq.desc()).limit(limit)).all())
        return map(record_from_row, rows)

    def _paged(self, query: Select) -> Iterator[Any]:
        """``query``'s rows in seq order, READ_BATCH at a time (a long chain is never held in memory at once)."""
        after = None
        while True:
            page = query if after is None else query.where(records_table.c.seq > after)
            rows = self.conn.execute(page.order_by(records_table.c.seq).limit(READ_BATCH)).all()
            yield from rows
            if len(rows) < READ_BATCH:
                return
            after = rows[-1].seq


def record_from_row(row: Any) -> AuditRecord:
    """A stored row as a record; MalformedRecordError names the record and the field no append could have
    written."""
    try:
        time = parse_time(row.time)
    except (TypeError, ValueError):
        raise MalformedRecordError(
            row.seq, f"its time {row.time!r} is not a stored audit time (UTC, like 2026-11-01T09:30:00.000000Z)"
        ) from None
    try:
        event_type = AuditEventType(row.event_type)
    except ValueError:
        raise MalformedRecordError(row.seq, f"its event type {row.event_type!r} is not one the trail records") from None
    try:
        details = json.loads(row.details)
    except (TypeError, ValueError) as error:
        raise MalformedRecordError(row.seq, f"its details are not JSON ({error})") from None
    if not isinstance(details, dict):
        raise MalformedRecordError(row.seq, f"its details are JSON but not an object: {row.details[:60]!r}")
    return AuditRecord(
        seq=row.seq,
        time=time,
        event_type=event_type,
        actor=row.actor,
        outcome=row.outcome,
        details=details,
        prev_hash=row.prev_hash,
        body_hash=row.body_hash,
        record_hash=row.record_hash,
        purged=bool(row.purged),
    )


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
