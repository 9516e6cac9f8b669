"""The monthly compliance report as a monthly-partitioned asset (JSON + Markdown under
``compliance.reports_dir``), backfillable per month from the UI."""

import datetime
from pathlib import Path

import dagster as dg

from rag_assets.defs.performance.assets import MONTHS
from rag_assets.resources import SettingsResource
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.security.actor import acting_through


@dg.asset(
    name="compliance_report",
    group_name="compliance",
    partitions_def=MONTHS,
    kinds={"json"},
    description="One calendar month of the audit trail: events by type and actor, index changes, retrievals, "
    "erasures, retention runs, PII redactions, and the whole chain's integrity.",
)
def compliance_report_asset(context: dg.AssetExecutionContext, settings: SettingsResource) -> dg.MaterializeResult:
    config = settings.rag_config()
    window = context.partition_time_window
    first, last = window.start.date(), (window.end - datetime.timedelta(days=1)).date()
    with acting_through("dagster"):
        report = ComplianceManager(config).generate_compliance_report(first, last)
    json_path, md_path = report.write(Path(config.compliance.reports_dir), f"{first:%Y-%m}")
    if not report.integrity["intact"]:
        context.log.error(
            f"audit chain broken at record {report.integrity['first_bad_seq']}: {report.integrity['problem']}"
        )
    return dg.MaterializeResult(
        metadata={
            "month": f"{first:%Y-%m}",
            "total_events": report.total_events,
            "version_updates": report.version_updates,
            "retrievals": report.retrievals,
            "erasures": report.erasures,
            "retention_actions": report.retention_actions,
            "pii_redactions": report.pii_redactions,
            "denied": report.denied,
            "chain_intact": bool(report.integrity["intact"]),
            "report": dg.MetadataValue.md(report.markdown()),
            "json": dg.MetadataValue.path(str(json_path)),
            "markdown": dg.MetadataValue.path(str(md_path)),
        }
    )
