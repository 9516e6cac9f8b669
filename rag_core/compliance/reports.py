"""The compliance report of a period: what happened (counts by type), what changed in the index, and whether the
record can be trusted (the chain's integrity), as a typed result with JSON and Markdown forms."""

import datetime
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag_core.compliance.audit_store import AuditStore
from rag_core.compliance.events import PII_REDACTIONS_KEY, AuditEventType, format_time
from rag_core.compliance.integrity import verify_view

CHANGE_TYPES = (AuditEventType.VERSION_UPDATE, AuditEventType.REINDEX, AuditEventType.ROLLBACK)


@dataclass(frozen=True)
class ComplianceReport:
    """Readable as attributes or, as the guide does, by key (``report['total_events']``)."""

    start: str  # inclusive instant (ISO)
    end: str  # exclusive instant (ISO)
    total_events: int
    events_by_type: dict[str, int]
    version_updates: int  # VERSION_UPDATE + REINDEX + ROLLBACK events: what changed in the serving index
    retrievals: int
    erasures: int
    retention_actions: int
    denied: int  # events with outcome "denied" (RBAC refusals)
    failures: int  # events with outcome "failure"
    actors: dict[str, int]
    pii_redactions: int  # sum of the details key "pii_redactions" over the period's events
    integrity: dict[str, Any] = field(default_factory=dict)  # the whole chain's verdict, from the counts' snapshot

    def __getitem__(self, key: str) -> Any:
        return asdict(self)[key]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def markdown(self) -> str:
        verdict = (
            "intact"
            if self.integrity.get("intact")
            else f"BROKEN at record {self.integrity.get('first_bad_seq')}: {self.integrity.get('problem')}; the "
            f"counts stop at record {self.integrity.get('counted_through')}"
        )
        lines = [
            f"# Compliance report {self.start[:10]} to {self.end[:10]} (end exclusive)",
            "",
            f"- Audit chain: {verdict}",
            f"- Events: {self.total_events}",
            f"- Index changes (version updates, re-indexes, rollbacks): {self.version_updates}",
            f"- Retrievals: {self.retrievals}",
            f"- Erasures: {self.erasures}",
            f"- Retention runs: {self.retention_actions}",
            f"- PII redactions: {self.pii_redactions}",
            f"- Denied: {self.denied}, failed: {self.failures}",
            "",
            "| Event type | Count |",
            "|---|---:|",
        ]
        lines += [f"| {name} | {count} |" for name, count in sorted(self.events_by_type.items())]
        lines += ["", "| Actor | Events |", "|---|---:|"]
        lines += [f"| {name} | {count} |" for name, count in sorted(self.actors.items())]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / f"{name}.json", folder / f"{name}.md"
        json_path.write_text(json.dumps(self.as_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
        md_path.write_text(self.markdown(), encoding="utf-8")
        return json_path, md_path


def build_report(store: AuditStore, start: datetime.datetime, end: datetime.datetime) -> ComplianceReport:
    """Verify the chain and count the period's events in one snapshot, so that the verdict is about the records
    counted. Only verified records count: up to the head when the chain is intact; when it is broken, the records
    before the first bad one (a row beyond the head or a forged one is never counted, and the report says BROKEN)."""
    by_type: Counter[str] = Counter()
    outcomes: Counter[str] = Counter()
    actors: Counter[str] = Counter()
    redactions = 0
    with store.snapshot() as view:
        integrity = verify_view(view)
        for record in view.records(start=format_time(start), end=format_time(end), through_seq=integrity.good_through):
            by_type[record.event_type.value] += 1
            if record.purged:
                continue
            outcomes[record.outcome] += 1
            actors[record.actor] += 1
            redactions += int(record.details.get(PII_REDACTIONS_KEY, 0) or 0)
    return ComplianceReport(
        start=start.isoformat(),
        end=end.isoformat(),
        total_events=sum(by_type.values()),
        events_by_type=dict(sorted(by_type.items())),
        version_updates=sum(by_type[t.value] for t in CHANGE_TYPES),
        retrievals=by_type[AuditEventType.RETRIEVAL.value],
        erasures=by_type[AuditEventType.ERASURE.value],
        retention_actions=by_type[AuditEventType.RETENTION.value],
        denied=outcomes["denied"],
        failures=outcomes["failure"],
        actors=dict(sorted(actors.items())),
        pii_redactions=redactions,
        integrity={
            "intact": integrity.intact,
            "first_bad_seq": integrity.first_bad_seq,
            "problem": integrity.problem,
            "signed": integrity.signed,
            "records_checked": integrity.records_checked,
            "counted_through": integrity.good_through,
        },
    )
