"""Checking the whole chain: every record's hashes, every link, the checkpoints, the signed head.

What each tampering breaks: an edited field changes the body or record hash; a deleted record leaves a gap in
the sequence and a broken link; swapped records break the links; a cut tail no longer reaches the head row; a
forgery that recomputes every hash is caught by the HMAC on the head and the checkpoints, which cannot be
recomputed without ``$AUDIT_HMAC_KEY``. Records purged by retention keep their hashes and must fall before the
cutoff of a later RETENTION event.
"""

import hmac
from dataclasses import dataclass, field

from rag_core.compliance.audit_store import AuditStore, hmac_key, sign
from rag_core.compliance.events import GENESIS_HASH, AuditEventType, body_hash, format_time, record_hash


@dataclass(frozen=True)
class IntegrityReport:
    """The verdict: ``intact``, how much was checked, and the first bad record with why."""

    intact: bool
    records_checked: int
    checkpoints_checked: int
    signed: bool  # checkpoints and head carry an HMAC that was checked
    first_bad_seq: int | None = None
    problem: str = ""
    warnings: list[str] = field(default_factory=list)

    def summary(self) -> str:
        if self.intact:
            how = "signed checkpoints verified" if self.signed else "checkpoints UNSIGNED (no AUDIT_HMAC_KEY)"
            return f"audit chain intact: {self.records_checked} records, {self.checkpoints_checked} checkpoints, {how}"
        return f"audit chain BROKEN at record {self.first_bad_seq}: {self.problem}"


def verify_chain(store: AuditStore) -> IntegrityReport:
    key = hmac_key()
    warnings = [] if key else ["AUDIT_HMAC_KEY is not set: checkpoints are unsigned, so a forger who recomputes "
                               "every hash is not detected"]
    head = store.head()
    checkpoints = {c.seq: c for c in store.checkpoints()}
    count = 0

    def broken(seq: int | None, problem: str) -> IntegrityReport:
        return IntegrityReport(False, count, len(checkpoints), key is not None, seq, problem, warnings)

    checkpoints = {seq: c for seq, c in checkpoints.items() if seq <= head.seq}
    for checkpoint in checkpoints.values():
        if key is not None and not hmac.compare_digest(checkpoint.signature, sign(key, checkpoint.seq,
                                                                                   checkpoint.record_hash)):
            return broken(checkpoint.seq, f"checkpoint at record {checkpoint.seq} has a bad HMAC signature")
    previous_seq, previous_hash = None, None
    purged: list[tuple[int, AuditEventType, str]] = []
    retention_cutoffs: list[tuple[int, dict[str, str]]] = []
    for record in store.records(through_seq=head.seq):  # later appends are not yet what the head vouches for
        count += 1
        if previous_seq is None:
            anchor = checkpoints.get(record.seq - 1)
            if record.seq == 1:
                expected = GENESIS_HASH
            elif anchor is not None:
                expected = anchor.record_hash
            else:
                return broken(record.seq, f"the chain starts at record {record.seq} with no checkpoint at "
                                          f"{record.seq - 1} (records before it were removed)")
        else:
            if record.seq != previous_seq + 1:
                return broken(previous_seq + 1, f"record {previous_seq + 1} is missing (next is {record.seq})")
            expected = previous_hash
        if record.prev_hash != expected:
            return broken(record.seq, "its prev_hash does not match the previous record's hash")
        time = format_time(record.time)
        if record.record_hash != record_hash(record.prev_hash, record.seq, time, record.event_type.value,
                                             record.body_hash):
            return broken(record.seq, "its record hash does not match its content (seq, time, type)")
        if record.purged:
            purged.append((record.seq, record.event_type, time))
        elif record.body_hash != body_hash(record.actor, record.outcome, record.details):
            return broken(record.seq, "its body hash does not match its actor, outcome or details")
        if record.event_type is AuditEventType.RETENTION and not record.purged:
            retention_cutoffs.append((record.seq, dict(record.details.get("cutoffs", {}))))
        checkpoint = checkpoints.get(record.seq)
        if checkpoint is not None and checkpoint.record_hash != record.record_hash:
            return broken(record.seq, f"checkpoint at record {record.seq} does not match its hash")
        previous_seq, previous_hash = record.seq, record.record_hash
    for seq, event_type, time in purged:
        if not any(later > seq and time < cutoffs.get(event_type.value, "") for later, cutoffs in retention_cutoffs):
            return broken(seq, "it was purged but no later RETENTION event's cutoff covers it")
    last_seq = previous_seq if previous_seq is not None else max(checkpoints, default=0)
    last_hash = previous_hash if previous_hash is not None else (checkpoints[last_seq].record_hash if last_seq
                                                                 else GENESIS_HASH)
    if head.seq != last_seq or head.record_hash != last_hash:
        return broken(min(head.seq, last_seq) + 1 if head.seq != last_seq else last_seq,
                      f"the chain ends at record {last_seq} but the head says {head.seq} (records cut or added)")
    if key is not None and not hmac.compare_digest(head.signature, sign(key, head.seq, head.record_hash)):
        return broken(head.seq, "the chain head's HMAC signature is wrong (rewritten without the key, or signed "
                                "with another key)")
    return IntegrityReport(True, count, len(checkpoints), key is not None, None, "", warnings)
