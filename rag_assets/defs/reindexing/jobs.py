"""The re-index job: candidate, blocking gate, alias move, as one run a sensor or a person launches."""

import dagster as dg

from rag_assets.defs.reindexing.assets import reindex_candidate, serving_version

reindex_job = dg.define_asset_job(
    "reindex",
    selection=dg.AssetSelection.assets(reindex_candidate, serving_version),
    description="Rebuild every document into NAME__vN+1, gate it on quality (blocking check quality_gate), then "
    "move the alias; requested by reindex_sensor on drift or changed index settings.",
    # One process: the model loads once, and Milvus Lite (a single file) is never opened by two steps at once.
    executor_def=dg.in_process_executor,
)
