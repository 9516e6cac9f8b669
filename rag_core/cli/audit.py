"""``rag audit verify|query|report|retention``: the audit trail from a shell (exit 1 when the chain is broken)."""

import argparse
import json
import sys

from rag_core.compliance.timespec import month_range
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.lifecycle.context import RagContext


def run_audit(args: argparse.Namespace, context: RagContext) -> int:
    compliance = ComplianceManager(context=context)
    return {"verify": _verify, "query": _query, "report": _report, "retention": _retention}[args.audit_command](
        args, compliance
    )


def _verify(args: argparse.Namespace, compliance: ComplianceManager) -> int:
    """Exit 0: intact; 1: broken (the first bad record is named)."""
    report = compliance.verify_integrity()
    if args.json:
        print(
            json.dumps(
                {
                    "intact": report.intact,
                    "records_checked": report.records_checked,
                    "checkpoints_checked": report.checkpoints_checked,
                    "signed": report.signed,
                    "good_through": report.good_through,
                    "first_bad_seq": report.first_bad_seq,
                    "problem": report.problem,
                    "warnings": report.warnings,
                }
            )
        )
    else:
        for warning in report.warnings:
            print(f"warning: {warning}", file=sys.stderr)
        print(report.summary(), file=sys.stdout if report.intact else sys.stderr)
    return 0 if report.intact else 1


def _query(args: argparse.Namespace, compliance: ComplianceManager) -> int:
    records = compliance.query_audit_logs(
        event_type=args.type,
        start_time=args.start,
        end_time=args.end,
        actor=args.actor,
        limit=args.limit,
        document=args.document,
    )
    if args.json:
        print(json.dumps([r.as_dict() for r in records]))
        return 0
    for record in records:
        details = "(purged by retention)" if record.purged else json.dumps(dict(record.details), sort_keys=True)
        print(
            f"{record.seq:>7} {record.time.isoformat()} {record.event_type.value:<14} {record.outcome:<8} "
            f"{record.actor} {details}"
        )
    print(f"{len(records)} records", file=sys.stderr)
    return 0


def _report(args: argparse.Namespace, compliance: ComplianceManager) -> int:
    first, last = month_range(args.month)
    report = compliance.generate_compliance_report(first, last)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.markdown(), end="")
    return 0 if report.integrity.get("intact") else 1


def _retention(args: argparse.Namespace, compliance: ComplianceManager) -> int:
    result = compliance.enforce_retention_policy()
    print(
        f"retention: {result.purged_records} audit records purged, {result.removed_records} removed behind the "
        f"checkpoint at the cut, {len(result.query_log_days_deleted)} query-log days deleted"
    )
    return 0


def add_audit_parser(audit: argparse.ArgumentParser, *, parents: list[argparse.ArgumentParser]) -> None:
    """``parents``: the options every command accepts (--config), so they work after the action too."""
    actions = audit.add_subparsers(dest="audit_command", required=True)
    verify = actions.add_parser("verify", help="check the whole hash chain (exit 1 when broken)", parents=parents)
    verify.add_argument("--json", action="store_true")
    query = actions.add_parser(
        "query", help="list audit records by type, time and actor, oldest first, up to the chain head", parents=parents
    )
    query.add_argument("--type", help="an event type, e.g. retrieval, version_update, erasure")
    query.add_argument("--start", help="ISO date or datetime (inclusive)")
    query.add_argument("--end", help="ISO date (inclusive: the whole day) or datetime (exclusive)")
    query.add_argument("--actor")
    query.add_argument("--document", metavar="ID", help="only records naming this document id (e.g. who retrieved it)")
    query.add_argument("--limit", type=int, help="only the newest N matching records (still listed oldest first)")
    query.add_argument("--json", action="store_true")
    report = actions.add_parser(
        "report", help="the compliance report of one month (exit 1 if the chain is broken)", parents=parents
    )
    report.add_argument("--month", required=True, help="YYYY-MM")
    report.add_argument("--json", action="store_true")
    actions.add_parser(
        "retention", help="delete what the retention periods make due (audit store, query log)", parents=parents
    )
