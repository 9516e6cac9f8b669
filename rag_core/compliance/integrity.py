"""Checking the whole chain: every record's fields and hashes, every link, the checkpoints, the signed head, and
that nothing lies outside the chain.

What each tampering breaks: an edited field changes the body or record hash; a field no append writes (details that
are not a JSON object, a malformed time) cannot be read back; a deleted record leaves a gap in the sequence and a
broken link; swapped or inserted records break the links; a cut tail no longer reaches the head row; a record
inserted beyond the head is one no append wrote, since an append moves the head in the same transaction; a chain
that starts after record 1 must start at a checkpoint a RETENTION event cut it at; a forgery that recomputes every
hash is caught by the HMAC on the head and the checkpoints, which cannot be recomputed without ``$AUDIT_HMAC_KEY``.
Records purged by retention keep their hashes and must fall before the cutoff of a later RETENTION event.
"""

import hmac
from dataclasses import dataclass, field

from rag_core.compliance.audit_store import (
    CUT_KEY,
    AuditStore,
    ChainView,
    MalformedRecordError,
    hmac_key,
    record_from_row,
    sign,
)
from rag_core.compliance.events import GENESIS_HASH, AuditEventType, body_hash, record_hash


@dataclass(frozen=True)
class IntegrityReport:
    """The verdict: ``intact``, how much was checked, and the first bad record with why.

    ``good_through`` is the last record before the first bad one: the head's when intact. Reports count only
    records up to it.
    """

    intact: bool
    records_checked: int
    checkpoints_checked: int
    signed: bool  # checkpoints and head carry an HMAC that was checked
    good_through: int
    first_bad_seq: int | None = None
    problem: str = ""
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.intact:
            how = "signed checkpoints verified" if self.signed else "checkpoints UNSIGNED (no AUDIT_HMAC_KEY)"
            return f"audit chain intact: {self.records_checked} records, {self.checkpoints_checked} checkpoints, {how}"
        return f"audit chain BROKEN at record {self.first_bad_seq}: {self.problem}"


def verify_chain(store: AuditStore) -> IntegrityReport:
    """The chain as of one instant (``AuditStore.snapshot``): appends that commit while it runs are not judged."""
    with store.snapshot() as view:
        return verify_view(view)


def verify_view(view: ChainView) -> IntegrityReport:
    key = hmac_key()
    warnings = (
        []
        if key
        else [
            "AUDIT_HMAC_KEY is not set: checkpoints are unsigned, so a forger who recomputes every hash is not detected"
        ]
    )
    head = view.head
    checkpoints = {c.seq: c for c in view.checkpoints()}
    count = 0

    def broken(seq: int, problem: str) -> IntegrityReport:
        good_through = seq - 1 if head is None else min(seq - 1, head.seq)
        return IntegrityReport(False, count, len(checkpoints), key is not None, good_through, seq, problem, warnings)

    for checkpoint in checkpoints.values():
        if key is not None and not hmac.compare_digest(
            checkpoint.signature, sign(key, checkpoint.seq, checkpoint.record_hash)
        ):
            return broken(checkpoint.seq, f"checkpoint at record {checkpoint.seq} has a bad HMAC signature")
    anchor, previous_seq, previous_hash = 0, 0, GENESIS_HASH
    purged: list[tuple[int, AuditEventType, str]] = []
    retention_cutoffs: list[tuple[int, dict[str, str]]] = []
    cuts: set[int] = set()
    for row in view.rows(through_seq=None if head is None else head.seq):
        count += 1
        try:
            record = record_from_row(row)
        except MalformedRecordError as error:
            return broken(error.seq, error.problem)
        if count == 1:
            if record.seq < 1:
                return broken(
                    record.seq,
                    f"record {record.seq} lies before record 1, where every chain starts: no append wrote it",
                )
            anchor = record.seq - 1
            if anchor and anchor not in checkpoints:
                return broken(
                    record.seq,
                    f"the chain starts at record {record.seq} with no checkpoint at {anchor} "
                    "(records before it were removed)",
                )
            previous_hash = checkpoints[anchor].record_hash if anchor else GENESIS_HASH
        elif record.seq != previous_seq + 1:
            return broken(previous_seq + 1, f"record {previous_seq + 1} is missing (next is {record.seq})")
        if record.prev_hash != previous_hash:
            return broken(record.seq, "its prev_hash does not match the previous record's hash")
        if record.record_hash != record_hash(
            record.prev_hash, record.seq, row.time, record.event_type.value, record.body_hash
        ):
            return broken(record.seq, "its record hash does not match its content (seq, time, type)")
        if record.purged:
            purged.append((record.seq, record.event_type, row.time))
        elif record.body_hash != body_hash(record.actor, record.outcome, record.details):
            return broken(record.seq, "its body hash does not match its actor, outcome or details")
        if record.event_type is AuditEventType.RETENTION and not record.purged:
            retention_cutoffs.append((record.seq, dict(record.details.get("cutoffs", {}))))
            cuts.add(record.details.get(CUT_KEY))
        checkpoint = checkpoints.get(record.seq)
        if checkpoint is not None and checkpoint.record_hash != record.record_hash:
            return broken(record.seq, f"checkpoint at record {record.seq} does not match its hash")
        previous_seq, previous_hash = record.seq, record.record_hash
    for seq, event_type, time in purged:
        if not any(later > seq and time < cutoffs.get(event_type.value, "") for later, cutoffs in retention_cutoffs):
            return broken(seq, "it was purged but no later RETENTION event's cutoff covers it")
    # A RETENTION event purged in turn no longer says where it cut: its stub vouches for the anchor instead.
    if anchor and anchor not in cuts and not any(t is AuditEventType.RETENTION for _, t, _ in purged):
        return broken(
            anchor + 1,
            f"the chain starts after the checkpoint at record {anchor}, but no RETENTION event "
            f"cut it there: records 1 to {anchor} were removed outside retention",
        )
    if head is None:
        return broken(
            max(previous_seq, 1),
            "the chain head is missing (table audit_head dropped or emptied): nothing vouches for where the chain ends",
        )
    if previous_seq != head.seq:
        return broken(
            previous_seq + 1,
            f"the chain ends at record {previous_seq} but the head says it ends at record "
            f"{head.seq} (records after {previous_seq} were cut off)",
        )
    if head.record_hash != previous_hash:
        return broken(
            head.seq,
            f"the chain head says the chain ends at record {head.seq}, but its hash is not "
            f"record {head.seq}'s (the head was rewritten)",
        )
    if key is not None and not hmac.compare_digest(head.signature, sign(key, head.seq, head.record_hash)):
        return broken(
            head.seq, "the chain head's HMAC signature is wrong (rewritten without the key, or signed with another key)"
        )
    beyond = view.first_seq_beyond(head.seq)
    if beyond is not None:
        return broken(
            beyond,
            f"record {beyond} lies beyond the chain head (record {head.seq}): no append wrote it, "
            "since an append moves the head in the same transaction",
        )
    for seq in checkpoints:
        if seq > head.seq:
            return broken(seq, f"a checkpoint at record {seq} lies beyond the chain head (record {head.seq})")
    return IntegrityReport(True, count, len(checkpoints), key is not None, head.seq, None, "", warnings)
