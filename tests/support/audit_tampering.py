"""Tampering with an audit store the way an attacker with database access (but not $AUDIT_HMAC_KEY) could: the
tests and benchmarks/audit_tamper.py apply these and expect ``verify_chain``, run on the store opened afresh (as the
next ``rag audit verify`` does), to name the damage. Each returns a seq: the record it touched."""

import json
import random
from collections.abc import Callable

from sqlalchemy import Connection, Row, delete, insert, select, update

from rag_core.compliance.audit_store import AuditStore, checkpoints_table, head_table, records_table
from rag_core.compliance.events import AuditEventType, body_hash, canonical_json, record_hash

CONTENT = ("time", "event_type", "actor", "outcome", "details", "prev_hash", "body_hash", "record_hash", "purged")


def _seqs(store: AuditStore) -> list[int]:
    with store.engine.connect() as conn:
        return list(conn.execute(select(records_table.c.seq).order_by(records_table.c.seq)).scalars())


def edit_field(store: AuditStore, rng: random.Random) -> int:
    """Change one field of one record to a different value, leaving its hashes alone; returns the record's seq."""
    seq = rng.choice(_seqs(store))
    with store.engine.begin() as conn:
        row = conn.execute(select(records_table).where(records_table.c.seq == seq)).one()
        column, value = rng.choice(
            [
                ("actor", row.actor + "x"),
                ("outcome", "failure" if row.outcome != "failure" else "success"),
                ("details", canonical_json({**json.loads(row.details), "tampered": True})),
                ("event_type", rng.choice([t.value for t in AuditEventType if t.value != row.event_type])),
                ("time", "2001-01-01T00:00:00.000000Z"),
            ]
        )
        conn.execute(update(records_table).where(records_table.c.seq == seq).values({column: value}))
    return seq


def delete_record(store: AuditStore, rng: random.Random) -> int:
    seq = rng.choice(_seqs(store))
    with store.engine.begin() as conn:
        conn.execute(delete(records_table).where(records_table.c.seq == seq))
    return seq


def swap_records(store: AuditStore, rng: random.Random) -> int:
    """Exchange the whole content of two records (each keeps its seq)."""
    first, second = sorted(rng.sample(_seqs(store), 2))
    with store.engine.begin() as conn:
        rows = {r.seq: r for r in conn.execute(select(records_table).where(records_table.c.seq.in_([first, second])))}
        for seq, other in ((first, second), (second, first)):
            conn.execute(
                update(records_table)
                .where(records_table.c.seq == seq)
                .values({c: getattr(rows[other], c) for c in CONTENT})
            )
    return first


def truncate_tail(store: AuditStore, rng: random.Random) -> int:
    seqs = _seqs(store)
    cut = seqs[-rng.randint(1, min(20, len(seqs)))]
    with store.engine.begin() as conn:
        conn.execute(delete(records_table).where(records_table.c.seq >= cut))
    return cut


def forge_rehash(store: AuditStore, rng: random.Random) -> int:
    """Edit one record's details, then recompute every hash after it, the head and the checkpoints, as a forger
    without the HMAC key can (the signatures stay as they were)."""
    seqs = _seqs(store)
    start = rng.choice(seqs)
    with store.engine.begin() as conn:
        rows = conn.execute(
            select(records_table).where(records_table.c.seq >= start).order_by(records_table.c.seq)
        ).all()
        previous = rows[0].prev_hash
        for row in rows:
            details = canonical_json({"forged": True}) if row.seq == start else row.details
            body = body_hash(row.actor, row.outcome, json.loads(details))
            digest = record_hash(previous, row.seq, row.time, row.event_type, body)
            conn.execute(
                update(records_table)
                .where(records_table.c.seq == row.seq)
                .values(details=details, prev_hash=previous, body_hash=body, record_hash=digest)
            )
            conn.execute(update(checkpoints_table).where(checkpoints_table.c.seq == row.seq).values(record_hash=digest))
            previous = digest
        conn.execute(update(head_table).values(record_hash=previous))
    return start


def _head(conn: Connection) -> Row:
    return conn.execute(select(head_table)).one()


def insert_beyond_head(store: AuditStore, rng: random.Random) -> int:
    """Add a well-formed ERASURE record by ``mallory@cli`` past the chain head, as a forger without the key must
    (moving the head would need a new signature): right after the head, linked to it, or far beyond it."""
    with store.engine.begin() as conn:
        head = _head(conn)
        seq = rng.choice([head.seq + 1, 9_999_999])
        time = conn.execute(select(records_table.c.time).where(records_table.c.seq == head.seq)).scalar_one()
        _insert_forged(conn, seq, time, head.record_hash)
    return seq


def insert_in_middle(store: AuditStore, rng: random.Random) -> int:
    """Insert a well-formed record between two others, renumbering every later record one up and moving the head's
    seq with them. Verification names the inserted record when it displaced a checkpointed one, else the record
    after it, the first whose link no longer holds: a forgery linked to its predecessor looks like a record."""
    seqs = _seqs(store)
    seq = rng.choice(seqs[1:-1])
    with store.engine.begin() as conn:
        for later in reversed([s for s in seqs if s >= seq]):  # one by one, top down: seq is the primary key
            conn.execute(update(records_table).where(records_table.c.seq == later).values(seq=later + 1))
        previous = conn.execute(select(records_table).where(records_table.c.seq == seq - 1)).one()
        _insert_forged(conn, seq, previous.time, previous.record_hash)
        conn.execute(update(head_table).values(seq=_head(conn).seq + 1))
    return seq


def _insert_forged(conn: Connection, seq: int, time: str, prev_hash: str) -> None:
    details = {"doc_id": "evidence", "deleted_chunks": 3}
    body = body_hash("mallory@cli", "success", details)
    conn.execute(
        insert(records_table).values(
            seq=seq,
            time=time,
            event_type=AuditEventType.ERASURE.value,
            actor="mallory@cli",
            outcome="success",
            details=canonical_json(details),
            prev_hash=prev_hash,
            body_hash=body,
            record_hash=record_hash(prev_hash, seq, time, AuditEventType.ERASURE.value, body),
            purged=False,
        )
    )


def malform_details(store: AuditStore, rng: random.Random) -> int:
    """Overwrite one record's details with text that is not a JSON object."""
    seq = rng.choice(_seqs(store))
    with store.engine.begin() as conn:
        conn.execute(
            update(records_table)
            .where(records_table.c.seq == seq)
            .values(details=rng.choice(["", "not json", "{'doc': 1}", "[1, 2]"]))
        )
    return seq


def malform_time(store: AuditStore, rng: random.Random) -> int:
    """Overwrite one record's time with text that is not the stored time format."""
    seq = rng.choice(_seqs(store))
    with store.engine.begin() as conn:
        conn.execute(
            update(records_table)
            .where(records_table.c.seq == seq)
            .values(time=rng.choice(["yesterday", "2026-11-01 00:00:00", "2026-13-45T99:99:99.000000Z"]))
        )
    return seq


def drop_records_table(store: AuditStore, rng: random.Random) -> int:
    """Drop the audit records table (the next process to open the store creates it again, empty); returns 1."""
    with store.engine.begin() as conn:
        records_table.drop(conn)
    return 1


def drop_head_table(store: AuditStore, rng: random.Random) -> int:
    """Drop the chain head table (the next process to open the store creates it again); returns the last seq."""
    last = _seqs(store)[-1]
    with store.engine.begin() as conn:
        head_table.drop(conn)
    return last


TAMPERINGS: dict[str, Callable[[AuditStore, random.Random], int]] = {
    "edited_field": edit_field,
    "deleted_record": delete_record,
    "swapped_records": swap_records,
    "truncated_tail": truncate_tail,
    "recomputed_hash_forgery": forge_rehash,
    "inserted_beyond_head": insert_beyond_head,
    "inserted_in_middle": insert_in_middle,
    "malformed_details": malform_details,
    "malformed_time": malform_time,
    "dropped_records_table": drop_records_table,
    "dropped_head_table": drop_head_table,
}
# Kinds whose returned seq is the first bad record verification must name.
NAMED_EXACTLY = ("edited_field", "deleted_record", "inserted_beyond_head", "malformed_details", "malformed_time")
