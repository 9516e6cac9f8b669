"""Starts an ingestion run when files in the raw documents folder are added, changed or removed."""

import dagster as dg
from dagster._core.definitions.unresolved_asset_job_definition import UnresolvedAssetJobDefinition

from rag_assets.defs.ingestion.jobs import ingestion_job
from rag_assets.resources import CorpusResource
from rag_core.ingest.loaders import corpus_fingerprint


def ingestion_sensor(
    job: UnresolvedAssetJobDefinition, partitions: dg.PartitionsDefinition | None = None
) -> dg.SensorDefinition:
    """The sensor for ``job``; over ``partitions`` it requests one run per partition (each syncs its bucket, and one
    whose bucket did not change embeds nothing)."""

    @dg.sensor(
        job=job,
        name="raw_documents_sensor",
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Fingerprints the corpus folder (paths, sizes, mtimes) and requests a run when it changes.",
    )
    def sensor(context: dg.SensorEvaluationContext, corpus: CorpusResource) -> dg.SensorResult:
        if not corpus.path.exists():
            return dg.SensorResult(skip_reason=f"The corpus folder {corpus.path.resolve()} does not exist.")
        fingerprint = corpus_fingerprint(corpus.path)
        if fingerprint == context.cursor:
            return dg.SensorResult(skip_reason="No file was added, changed or removed.")
        keys = partitions.get_partition_keys() if partitions else [None]
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=f"{fingerprint}:{key}" if key else fingerprint, partition_key=key) for key in keys
            ],
            cursor=fingerprint,
        )

    return sensor


raw_documents_sensor = ingestion_sensor(ingestion_job)
