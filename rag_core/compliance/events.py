"""What an audit record says: the event types and the record itself, with the canonical form its hash covers.

A record holds identifiers, counts and versions only, never document text or raw query text (retrievals carry the
query log's query id and salted hash). Its hash is split in two so that retention can drop a record's body (actor,
outcome, details) and keep a verifiable stub: ``record_hash = SHA-256(prev_hash | seq | time | type | body_hash)``
and ``body_hash = SHA-256(canonical body)``.
"""

import datetime
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

GENESIS_HASH = "0" * 64  # the prev_hash of the first record ever written
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # fixed width, so that string order is time order in every database


class AuditEventType(str, Enum):
    """Every kind of action the trail records (values are the lower-case names, as stored)."""

    RETRIEVAL = "retrieval"
    INGESTION = "ingestion"
    DELETION = "deletion"
    VERSION_UPDATE = "version_update"
    ROLLBACK = "rollback"
    REINDEX = "reindex"
    DRIFT = "drift"
    COMPACTION = "compaction"
    RETENTION = "retention"
    ERASURE = "erasure"
    ACCESS = "access"
    CONFIG_CHANGE = "config_change"
    EVALUATION = "evaluation"


PII_REDACTIONS_KEY = "pii_redactions"  # details key: how many PII strings were redacted while recording this event


def format_time(moment: datetime.datetime) -> str:
    """The stored form of a time: UTC, microseconds, fixed width."""
    if moment.tzinfo is None:
        raise ValueError(f"audit times must be timezone-aware, got naive {moment.isoformat()}")
    return moment.astimezone(datetime.UTC).strftime(TIME_FORMAT)


def parse_time(text: str) -> datetime.datetime:
    return datetime.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=datetime.UTC)


def canonical_json(value: Any) -> str:
    """One spelling per value (sorted keys, no spaces), so the same record always hashes the same."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def body_hash(actor: str, outcome: str, details: Mapping[str, Any]) -> str:
    return hashlib.sha256(canonical_json([actor, outcome, dict(details)]).encode("utf-8")).hexdigest()


def record_hash(prev_hash: str, seq: int, time: str, event_type: str, body: str) -> str:
    return hashlib.sha256(f"{prev_hash}|{seq}|{time}|{event_type}|{body}".encode()).hexdigest()


@dataclass(frozen=True)
class AuditRecord:
    """One event in the chain; ``purged`` records lost their body to retention and keep only the hashed stub."""

    seq: int
    time: datetime.datetime
    event_type: AuditEventType
    actor: str
    outcome: str
    details: Mapping[str, Any] = field(default_factory=dict)
    prev_hash: str = GENESIS_HASH
    body_hash: str = ""
    record_hash: str = ""
    purged: bool = False

    def as_dict(self) -> dict[str, Any]:
        """The JSON form `rag audit query --json` prints."""
        return {
            "seq": self.seq,
            "time": self.time.isoformat(),
            "event_type": self.event_type.value,
            "actor": self.actor,
            "outcome": self.outcome,
            "details": dict(self.details),
            "prev_hash": self.prev_hash,
            "record_hash": self.record_hash,
            "purged": self.purged,
        }
