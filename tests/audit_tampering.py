"""Tampering with an audit store the way an attacker with database access (but not $AUDIT_HMAC_KEY) could: the
tests and benchmarks/audit_tamper.py apply these and expect ``verify_chain`` to name the damage."""

import json
import random
from collections.abc import Callable

from sqlalchemy import delete, select, update

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
        column, value = rng.choice([
            ("actor", row.actor + "x"), ("outcome", "failure" if row.outcome != "failure" else "success"),
            ("details", canonical_json({**json.loads(row.details), "tampered": True})),
            ("event_type", rng.choice([t.value for t in AuditEventType if t.value != row.event_type])),
            ("time", "2001-01-01T00:00:00.000000Z")])
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
            conn.execute(update(records_table).where(records_table.c.seq == seq)
                         .values({c: getattr(rows[other], c) for c in CONTENT}))
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
        rows = conn.execute(select(records_table).where(records_table.c.seq >= start)
                            .order_by(records_table.c.seq)).all()
        previous = rows[0].prev_hash
        for row in rows:
            details = canonical_json({"forged": True}) if row.seq == start else row.details
            body = body_hash(row.actor, row.outcome, json.loads(details))
            digest = record_hash(previous, row.seq, row.time, row.event_type, body)
            conn.execute(update(records_table).where(records_table.c.seq == row.seq).values(
                details=details, prev_hash=previous, body_hash=body, record_hash=digest))
            conn.execute(update(checkpoints_table).where(checkpoints_table.c.seq == row.seq)
                         .values(record_hash=digest))
            previous = digest
        conn.execute(update(head_table).values(record_hash=previous))
    return start


TAMPERINGS: dict[str, Callable[[AuditStore, random.Random], int]] = {
    "edited_field": edit_field, "deleted_record": delete_record, "swapped_records": swap_records,
    "truncated_tail": truncate_tail, "recomputed_hash_forgery": forge_rehash,
}
