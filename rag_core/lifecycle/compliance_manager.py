"""The compliance entry point of the guide: audit queries, reports, integrity and retention in one object."""

import datetime
from pathlib import Path

from rag_core.compliance.access import requires
from rag_core.compliance.audit import AuditTrail, audit_trail
from rag_core.compliance.events import AuditEventType, AuditRecord, format_time
from rag_core.compliance.integrity import IntegrityReport, verify_chain
from rag_core.compliance.reports import ComplianceReport, build_report
from rag_core.compliance.retention import RetentionResult, enforce_retention
from rag_core.compliance.timespec import check_order, parse_bound
from rag_core.config import RAGConfig, load_config
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.erasure import ErasureReport, erase_document
from rag_core.security.rbac import Permission

TimeBound = str | datetime.date | datetime.datetime | None


class ComplianceManager:
    """``ComplianceManager()`` reads ``config.yaml`` like the rest of the engine; ``token`` is the caller's API
    token, which RBAC turns into an identity and its permissions."""

    def __init__(
        self,
        config: RAGConfig | str | Path | None = None,
        *,
        token: str | None = None,
        trail: AuditTrail | None = None,
        context: RagContext | None = None,
    ) -> None:
        self.config = context.config if context else config if isinstance(config, RAGConfig) else load_config(config)
        self.token = token
        self.trail = trail or audit_trail(self.config)
        self.context = context or RagContext(self.config)

    @requires(Permission.READ_AUDIT, "query the audit logs")
    def query_audit_logs(
        self,
        event_type: AuditEventType | str | None = None,
        start_time: TimeBound = None,
        end_time: TimeBound = None,
        actor: str | None = None,
        limit: int | None = None,
        document: str | None = None,
    ) -> list[AuditRecord]:
        """Matching records of the chain, oldest first; with ``limit``, the newest ``limit`` of them (still oldest
        first). Dates mean whole days (``end_time="2024-01-31"`` includes the 31st). ``document``: only records
        naming that document id among their results or documents (who retrieved it, and when).

        Only records up to the chain head are listed: an append moves the head with its record, so a row beyond it
        was put there by hand and is not part of the trail (``verify_integrity`` names it). Listing does not verify;
        a record whose fields cannot be read raises MalformedRecordError naming it."""
        start = parse_bound(start_time, "start_time")
        end = parse_bound(end_time, "end_time", end=True)
        check_order(start, end, "start_time", "end_time")
        if limit is not None and limit < 1:
            raise ValueError(f"limit={limit} must be at least 1 (or None for all)")
        kind = None if event_type is None else _event_type(event_type)
        records = self.trail.store.records(
            event_type=kind,
            start=None if start is None else format_time(start),
            end=None if end is None else format_time(end),
            actor=actor,
            limit=None if document is not None else limit,
        )
        if document is None:
            return list(records)
        naming = [r for r in records if document in _document_ids(r)]
        return naming[-limit:] if limit is not None else naming

    @requires(Permission.GENERATE_REPORTS, "generate a compliance report")
    def generate_compliance_report(self, start_date: TimeBound, end_date: TimeBound) -> ComplianceReport:
        start = parse_bound(start_date, "start_date")
        end = parse_bound(end_date, "end_date", end=True)
        if start is None or end is None:
            raise ValueError("generate_compliance_report needs both start_date and end_date (ISO dates)")
        check_order(start, end, "start_date", "end_date")
        return build_report(self.trail.store, start, end)

    @requires(Permission.READ_AUDIT, "verify the audit trail")
    def verify_integrity(self) -> IntegrityReport:
        return verify_chain(self.trail.store)

    @requires(Permission.ENFORCE_RETENTION, "enforce the retention policy")
    def enforce_retention_policy(self) -> RetentionResult:
        return enforce_retention(self.config, self.trail)

    def _enforce_retention_policy(self) -> RetentionResult:
        """The guide's name for ``enforce_retention_policy``."""
        return self.enforce_retention_policy()

    @requires(Permission.ERASE, "erase a document")
    def erase_document(
        self, doc_id: str, *, collection: str | None = None, engine: object | None = None
    ) -> ErasureReport:
        """Remove ``doc_id`` from every version, table, index, cache and query-log result list (right to erasure;
        ``rag_core.lifecycle.erasure``)."""
        return erase_document(self.context, doc_id, alias=collection, engine=engine)


def _event_type(value: AuditEventType | str) -> AuditEventType:
    try:
        return AuditEventType(value.lower() if isinstance(value, str) else value)
    except ValueError:
        known = ", ".join(t.value for t in AuditEventType)
        raise ValueError(f"unknown audit event type {value!r}; use one of: {known}") from None


def _document_ids(record: AuditRecord) -> list[str]:
    """The document ids a record names: a retrieval's results, a deletion's documents."""
    details = dict(record.details or {})
    return [str(i) for key in ("result_ids", "doc_ids") for i in (details.get(key) or [])]
