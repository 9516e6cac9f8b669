"""The ingestion chain over ``ingestion.partitions`` static partitions, in place of the unpartitioned one.

The partition count is configuration, so the partitioned chain is built where the config is known
(``rag_assets.definitions.build_definitions``), like the schedules; with the default of 1 the code location keeps
the unpartitioned chain of this folder exactly as it is.
"""

import dagster as dg

from rag_assets.defs.ingestion import assets, checks, jobs, sensors
from rag_assets.defs.ingestion.assets import ingestion_assets, partitions_definition
from rag_assets.defs.ingestion.checks import partitioned_checks
from rag_assets.defs.ingestion.jobs import partitioned_ingestion_job
from rag_assets.defs.ingestion.sensors import ingestion_sensor


def with_partitioned_ingestion(defs: dg.Definitions, partitions: int) -> dg.Definitions:
    """``defs`` with the ingestion chain, its checks, job and sensor split into ``partitions`` (1: unchanged)."""
    if partitions == 1:
        return defs
    partitions_def = partitions_definition(partitions)
    chain = ingestion_assets(partitions_def)
    job = partitioned_ingestion_job(chain, partitions_def)
    replaced = [
        assets.raw_documents,
        assets.chunks,
        assets.embeddings,
        assets.semantic_index,
        checks.chunk_ids_unique,
        checks.no_empty_chunks,
        checks.vectors_have_model_dimension_and_unit_norm,
        checks.milvus_rows_match_embeddings,
        jobs.ingestion_job,
        sensors.raw_documents_sensor,
    ]

    def others(items: object) -> list:
        return [item for item in items or [] if not any(item is old for old in replaced)]

    return dg.Definitions(
        assets=[*others(defs.assets), *chain],
        asset_checks=[*others(defs.asset_checks), *partitioned_checks(*chain[1:])],
        jobs=[*others(defs.jobs), job],
        sensors=[*others(defs.sensors), ingestion_sensor(job, partitions_def)],
        schedules=defs.schedules,
        resources=defs.resources,
        executor=defs.executor,
        loggers=defs.loggers,
        metadata=defs.metadata,
        component_tree=defs.component_tree,
    )
