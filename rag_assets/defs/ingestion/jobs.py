"""Jobs: the whole ingestion chain (with its checks) as one unit a sensor or a person can launch."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from rag_assets.defs.ingestion.assets import raw_documents

ingestion_job = dg.define_asset_job(
    "ingestion",
    selection=dg.AssetSelection.assets(raw_documents).downstream() - dg.AssetSelection.keys("retrieval_evaluation"),
    description="Load, chunk, embed and sync the raw documents folder into Milvus, and refresh the BM25 index.",
    # One process: the model loads once, and Milvus Lite (a single file) is never opened by two steps at once.
    executor_def=dg.in_process_executor,
)


def partitioned_ingestion_job(
    assets: tuple[dg.AssetsDefinition, ...], partitions: dg.PartitionsDefinition
) -> UnresolvedAssetJobDefinition:
    """One run per partition: load, chunk, embed and sync one bucket of the corpus. The BM25 index is left out: it
    reads every bucket's rows, so it is refreshed once after all partitions' runs (or by the engine on the next
    query, keyed on the data version) rather than N times."""
    return dg.define_asset_job(
        "ingestion",
        selection=dg.AssetSelection.assets(*assets),
        partitions_def=partitions,
        description="Load, chunk, embed and sync one partition's bucket of the raw documents folder into Milvus.",
        executor_def=dg.in_process_executor,
    )
