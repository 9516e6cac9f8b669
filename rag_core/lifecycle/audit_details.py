"""What an audit record says about each action, built from the action's typed report in one place, so the CLI,
the Python API and Dagster record the same fields: ids, counts and versions, never document or query text."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag_core.compliance.events import AuditEventType

if TYPE_CHECKING:  # the ingestion modules load the embedding stack: not for building a dict
    from rag_core.backup.restore import RestoreResult
    from rag_core.backup.snapshot import BackupResult
    from rag_core.index.compaction import CompactionReport
    from rag_core.index.delete import DeleteReport
    from rag_core.index.retention import Promotion
    from rag_core.index.sync import SyncReport
    from rag_core.lifecycle.direct import IngestReport
    from rag_core.lifecycle.reindex import ReindexReport
    from rag_core.quality.drift import DriftReport
    from rag_core.quality.evaluation import EvaluationReport
    from rag_core.retrieval.engine import RetrievalResult

MAX_IDS = 20  # result and document ids kept per record: enough to trace a retrieval, bounded in size


def sync_details(report: "SyncReport") -> dict[str, Any]:
    return {
        "alias": report.alias,
        "collection": report.collection,
        "index_version": report.index_version,
        "new_version": report.new_version,
        "upserted": report.upserted,
        "deleted": report.deleted,
        "unchanged": report.unchanged,
        "rows": report.rows,
        "data_version": report.data_version,
    }


def ingest_events(report: "IngestReport", *, source: str) -> list[tuple[AuditEventType, dict[str, Any]]]:
    """An INGESTION event, and a VERSION_UPDATE too when the ingestion built and promoted a new version."""
    details = {
        "source": source,
        "documents": report.documents,
        "chunks": report.chunks,
        "skipped": len(report.skipped),
        **sync_details(report.sync),
    }
    events = [(AuditEventType.INGESTION, details)]
    if report.sync.new_version:
        events.append(
            (
                AuditEventType.VERSION_UPDATE,
                {
                    "alias": report.sync.alias,
                    "to": report.sync.collection,
                    "index_version": report.sync.index_version,
                    "cause": "ingestion",
                },
            )
        )
    return events


def delete_details(report: "DeleteReport", doc_ids: Sequence[str] | None, source: str | None) -> dict[str, Any]:
    return {
        "collection": report.collection,
        "deleted_chunks": report.deleted_chunks,
        "data_version": report.data_version,
        "doc_ids": list(doc_ids or [])[:MAX_IDS],
        "doc_id_count": len(doc_ids or []),
        "source": source,
    }


def dropped_versions_details(dropped: Sequence[str], *, alias: str) -> dict[str, Any]:
    """Versions whose build never finished, dropped with their rows: never served, so no document leaves the
    index, but rows leave the store."""
    return {"alias": alias, "dropped_versions": list(dropped)}


def retrieval_details(result: "RetrievalResult", *, mode: str, principal: str | None = None) -> dict[str, Any]:
    """The query appears only as its query-log id (whose row holds the salted hash), never as text. The actor is
    the caller; ``principal`` the one an admin queried as (``rag query --as``)."""
    result_ids = [c.doc_id for c in result.results]
    return ({"as": principal} if principal else {}) | {
        "query_id": result.query_id,
        "collection": result.collection,
        "data_version": result.data_version,
        "mode": mode,
        "results": len(result_ids),
        "result_ids": result_ids,  # all of them (serve.max_top_k bounds them): who retrieved X must find each
        "cached": result.cached,
    }


def reindex_details(report: "ReindexReport") -> dict[str, Any]:
    return {
        **sync_details(report.build),
        "gate": "passed" if report.gate else "none",
        "dropped": list(report.promotion.dropped),
    }


def rollback_details(report: "Promotion") -> dict[str, Any]:
    return {"alias": report.alias, "from": report.previous, "to": report.serving}


def drift_details(report: "DriftReport") -> dict[str, Any]:
    return {
        "collection": report.collection,
        "drift_detected": report.drift_detected,
        "drift_magnitude": report.drift_magnitude,
        "sample_size": report.sample_size,
    }


def compaction_events(reports: "Sequence[CompactionReport]") -> list[tuple[AuditEventType, dict[str, Any]]]:
    """One COMPACTION event per version compacted."""
    return [
        (
            AuditEventType.COMPACTION,
            {
                "collection": report.collection,
                "state": report.state,
                "deleted_rows_before": report.before.deleted_rows,
                "deleted_rows_after": report.after.deleted_rows,
            },
        )
        for report in reports
    ]


def evaluation_details(report: "EvaluationReport", *, dataset: str, split: str, mode: str) -> dict[str, Any]:
    """The dataset by its folder's name only: its path may name a user's home folder."""
    return {
        "dataset": dataset,
        "split": split,
        "mode": mode,
        "queries": report.queries,
        "ndcg_at_10": report.ndcg_at_10,
    }


def backup_details(result: "BackupResult") -> dict[str, Any]:
    return {"action": "backup", "alias": result.alias, "versions": result.versions, "rows": result.rows}


def restore_details(result: "RestoreResult") -> dict[str, Any]:
    return {
        "action": "restore",
        "alias": result.alias,
        "versions": result.versions,
        "rows": result.rows,
        "uri": result.uri,
    }
