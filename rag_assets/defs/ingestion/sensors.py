"""Starts an ingestion run when files in the raw documents folder are added, changed or removed."""

import dagster as dg

from rag_assets.defs.ingestion.jobs import ingestion_job
from rag_assets.resources import CorpusResource
from rag_core.ingest.loaders import corpus_fingerprint


@dg.sensor(job=ingestion_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Fingerprints the corpus folder (paths, sizes, mtimes) and requests a run when it changes.")
def raw_documents_sensor(context: dg.SensorEvaluationContext, corpus: CorpusResource) -> dg.SensorResult:
    if not corpus.path.exists():
        return dg.SensorResult(skip_reason=f"The corpus folder {corpus.path.resolve()} does not exist.")
    fingerprint = corpus_fingerprint(corpus.path)
    if fingerprint == context.cursor:
        return dg.SensorResult(skip_reason="No file was added, changed or removed.")
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=fingerprint)], cursor=fingerprint)
