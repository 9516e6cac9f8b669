"""The monthly performance report as a job a schedule (or a person, per month partition) launches."""

import dagster as dg

from rag_assets.defs.performance.assets import performance_report_asset

performance_report_job = dg.define_asset_job(
    "performance_report_job",
    selection=dg.AssetSelection.assets(performance_report_asset),
    description="Latency, SLA, cache and quality trends of one calendar month of the query log.",
)
