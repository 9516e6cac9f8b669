"""Jobs: the whole ingestion chain (with its checks) as one unit a sensor or a person can launch."""

import dagster as dg

from rag_assets.defs.ingestion.assets import raw_documents

ingestion_job = dg.define_asset_job(
    "ingestion",
    selection=dg.AssetSelection.assets(raw_documents).downstream() - dg.AssetSelection.keys("retrieval_evaluation"),
    description="Load, chunk, embed and sync the raw documents folder into Milvus, and refresh the BM25 index.",
    # One process: the model loads once, and Milvus Lite (a single file) is never opened by two steps at once.
    executor_def=dg.in_process_executor,
)
