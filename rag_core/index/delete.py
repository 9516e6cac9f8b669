"""Explicit removal: one document, a list of them, or everything a source owns (``rag delete``)."""

import json
from dataclasses import dataclass

from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import source_filter


@dataclass(frozen=True)
class DeleteReport:
    collection: str
    deleted_chunks: int
    data_version: int


def delete_from_index(
    manager: MilvusIndexManager,
    alias: str,
    *,
    doc_ids: list[str] | None = None,
    source: str | None = None,
    within: str = "",
) -> DeleteReport:
    """Delete the chunks of ``doc_ids`` (within ``source`` when given), or of every document of ``source``; only
    rows passing ``within`` (a tenant-bound writer's filter): the others count as absent."""
    if not doc_ids and source is None:
        raise ValueError("Say what to delete: --doc-id ID (repeatable) and/or --source NAME.")
    collection = manager.resolve(alias)
    if collection is None:
        raise LookupError(f"No index {alias!r} at {manager.uri}; nothing to delete.")
    parts = ([f"doc_id in {json.dumps(doc_ids)}"] if doc_ids else []) + ([source_filter(source)] if source else [])
    if within:
        parts.append(f"({within})")
    deleted = manager.delete_where(collection, " and ".join(parts))
    data_version = manager.bump_data_version(collection) if deleted else manager.state(collection).data_version
    return DeleteReport(collection=collection, deleted_chunks=deleted, data_version=data_version)
