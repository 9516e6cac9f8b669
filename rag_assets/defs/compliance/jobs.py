"""The compliance report job (per month partition) and the retention job the daily schedule runs."""

import dagster as dg

from rag_assets.defs.compliance.assets import compliance_report_asset
from rag_assets.resources import SettingsResource
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.security.actor import acting_through

compliance_report_job = dg.define_asset_job(
    "compliance_report_job",
    selection=dg.AssetSelection.assets(compliance_report_asset),
    description="The audit trail of one calendar month: counts, index changes and the chain's integrity.",
)


@dg.op(
    description="Delete what the retention periods make due from the audit store and the query log, and "
    "record a RETENTION event."
)
def enforce_retention(context: dg.OpExecutionContext, settings: SettingsResource) -> dg.Output[None]:
    with acting_through("dagster"):
        result = ComplianceManager(settings.rag_config()).enforce_retention_policy()
    context.log.info(
        f"retention: {result.purged_records} audit records purged, {result.removed_records} removed, "
        f"{len(result.query_log_days_deleted)} query-log days deleted"
    )
    return dg.Output(
        None,
        metadata={
            "purged_records": result.purged_records,
            "removed_records": result.removed_records,
            "query_log_days_deleted": len(result.query_log_days_deleted),
            "retention_event_seq": result.event.seq,
        },
    )


@dg.job(
    description="Retention: purge audit records and query-log days older than their periods "
    "(compliance.retention_days); scheduled daily by retention_schedule."
)
def retention() -> None:
    enforce_retention()
