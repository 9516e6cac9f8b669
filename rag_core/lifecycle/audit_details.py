"""What an audit record says about each action, built from the action's typed report in one place, so the CLI,
the Python API and Dagster record the same fields: ids, counts and versions, never document or query text."""

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from rag_core.compliance.events import AuditEventType

if TYPE_CHECKING:  # the ingestion modules load the embedding stack: not for building a dict
    from rag_core.index.delete import DeleteReport
    from rag_core.index.sync import SyncReport
    from rag_core.lifecycle.direct import IngestReport

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


def retrieval_details(
    *, query_id: str, collection: str, data_version: int, mode: str, result_ids: Sequence[str], cached: bool
) -> dict[str, Any]:
    """The query appears only as its query-log id (whose row holds the salted hash), never as text."""
    return {
        "query_id": query_id,
        "collection": collection,
        "data_version": data_version,
        "mode": mode,
        "results": len(result_ids),
        "result_ids": list(result_ids)[:MAX_IDS],
        "cached": cached,
    }
