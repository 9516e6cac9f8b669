"""Jobs: the whole ingestion chain (with its checks) as one unit a sensor or a person can launch."""

import dagster as dg

from rag_assets.assets import raw_documents

ingestion_job = dg.define_asset_job(
    "ingestion",
    selection=dg.AssetSelection.assets(raw_documents).downstream(),
    description="Load, chunk, embed and sync the raw documents folder into Milvus.",
)
