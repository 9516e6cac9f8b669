"""The drift report as a job the weekly schedule (or a person) launches."""

import dagster as dg

from rag_assets.defs.drift.assets import drift_report

drift_report_job = dg.define_asset_job(
    "drift_report_job",
    selection=dg.AssetSelection.assets(drift_report),
    description="Compare queries, results, stored vectors and the model with the last promotion's snapshot.",
)
