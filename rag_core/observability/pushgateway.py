"""Batch runs (the Dagster ingestion, re-index, compaction, drift and retention jobs) report their outcome to a
Prometheus Pushgateway, because a run ends before any scrape could reach it; ``rag serve`` is scraped instead.

Each push builds a fresh ``CollectorRegistry`` (nothing leaks from one run into the next) and sends it under the
grouping key ``job=rag_<dagster job name>`` with ``pushadd_to_gateway`` (HTTP POST): it replaces the metrics this
push names and keeps the others in the group, so ``rag_batch_last_success_timestamp_seconds`` (pushed only on
success) survives a failed run and ``time() - rag_batch_last_success_timestamp_seconds`` stays the age of the last
good run. Metrics never fail a run: an unreachable, slow or refusing Pushgateway is logged and the push dropped.
"""

import http.client
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Gauge, pushadd_to_gateway

from rag_core.config import ObservabilityConfig

logger = logging.getLogger(__name__)

# Every gauge a batch run may push, with its help text: one spelling for all jobs (the Pushgateway refuses a
# metric family whose type differs between groups), and a misspelt name fails loudly in tests instead of
# silently creating a new series.
BATCH_GAUGES = {
    "rag_batch_success": "1 when the run succeeded, 0 when it failed.",
    "rag_batch_duration_seconds": "Wall time of the run, start to end.",
    "rag_batch_last_run_timestamp_seconds": "When the run ended (Unix time).",
    "rag_batch_last_success_timestamp_seconds": "When the last successful run ended (Unix time).",
    "rag_ingestion_documents": "Documents read by the ingestion run.",
    "rag_ingestion_failed_documents": "Inputs the ingestion run skipped (unreadable, too large, empty).",
    "rag_ingestion_chunks": "Chunks the ingestion run produced.",
    "rag_ingestion_tokens": "Tokens in those chunks.",
    "rag_ingestion_seconds": "Time spent loading, chunking, embedding and syncing.",
    "rag_index_rows": "Rows in the collection the alias serves after the run.",
    "rag_index_version": "The version number the alias serves after the run.",
    "rag_drift_magnitude": "The drift report's magnitude (the guide alerts above 0.15).",
    "rag_drift_detected": "1 when the drift report detected drift, else 0.",
    "rag_drift_probe_ndcg": "The serving version's probe-set nDCG@10 at the last drift report (absent: none scored).",
    "rag_compaction_purged_rows": "Deleted rows compaction purged, over every version.",
    "rag_retention_deleted_records": "Audit records retention purged or removed.",
}
COLLECTION_LABEL = "collection"


@dataclass(frozen=True)
class BatchRunMetrics:
    """What one finished run reports: outcome and timing, plus the gauges of its job.

    ``values`` are unlabelled gauges; ``per_collection`` maps a gauge name to its value per collection (the alias).
    """

    job: str  # the Dagster job name
    success: bool
    started_at: float  # Unix seconds
    finished_at: float
    values: Mapping[str, float] = field(default_factory=dict)
    per_collection: Mapping[str, Mapping[str, float]] = field(default_factory=dict)

    @property
    def grouping_job(self) -> str:
        return f"rag_{self.job}"

    def registry(self) -> CollectorRegistry:
        """The run's metrics in a registry of their own."""
        registry = CollectorRegistry()
        outcome = {
            "rag_batch_success": float(self.success),
            "rag_batch_duration_seconds": max(self.finished_at - self.started_at, 0.0),
            "rag_batch_last_run_timestamp_seconds": self.finished_at,
        }
        if self.success:
            outcome["rag_batch_last_success_timestamp_seconds"] = self.finished_at
        for name, value in {**outcome, **self.values}.items():
            _gauge(name, registry).set(value)
        for name, by_collection in self.per_collection.items():
            gauge = _gauge(name, registry, (COLLECTION_LABEL,))
            for collection, value in by_collection.items():
                gauge.labels(collection).set(value)
        return registry


def _gauge(name: str, registry: CollectorRegistry, labels: tuple[str, ...] = ()) -> Gauge:
    if name not in BATCH_GAUGES:
        raise ValueError(f"{name!r} is not a batch metric; add it to BATCH_GAUGES in {__name__} with its help text")
    return Gauge(name, BATCH_GAUGES[name], labels, registry=registry)


def push_batch_metrics(config: ObservabilityConfig, run: BatchRunMetrics) -> bool:
    """Push ``run`` to ``config.pushgateway_url``; False when none is set or the push failed (logged, never raised)."""
    if not config.pushgateway_url:
        return False
    try:
        pushadd_to_gateway(
            config.pushgateway_url, job=run.grouping_job, registry=run.registry(), timeout=config.push_timeout_s
        )
    except (OSError, ValueError, http.client.HTTPException) as error:
        logger.warning(
            "Could not push the metrics of the %s run to the Pushgateway at %s (%s: %s); dropped them. "
            "Check observability.pushgateway_url (RAG__OBSERVABILITY__PUSHGATEWAY_URL).",
            run.job,
            config.pushgateway_url,
            type(error).__name__,
            error,
        )
        return False
    return True
