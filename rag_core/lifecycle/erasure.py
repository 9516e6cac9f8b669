"""The right to erasure: one document removed from everywhere the project keeps it, and the erasure recorded.

Everywhere means: every kept Milvus version of the alias (a rollback must not bring it back), with its rows gone
from storage too (a server deletes and compacts; Milvus Lite, which would keep them in its files, has each such
version rebuilt without them: ``rag_core.index.compaction.erase_rows``); the Parquet asset tables
(``ingestion.storage_dir``); the client-side index of the alias and of each version (deleted, and rebuilt from
Milvus on next use, as the data version bump makes every reader do); the drift snapshots of the alias and its
versions (the probe queries made from the document, their embeddings, its id in the probes' results); the probe
sets' probes derived from it (``rag_core.quality.probes``: their queries are its words); every query
cache (keyed on the data version, so unreachable at once; the given engine's is cleared); and the query log's result
lists. The audit record names the document and counts what went, never its content.

A document whose source file still exists would come back with the next ingestion of its folder (``rag ingest``,
the Dagster sensor): the report says so and a warning is logged; delete or move the file.
"""

import json
import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import AuditEventType
from rag_core.index.compaction import erase_rows, finish_interrupted_rebuilds
from rag_core.ingest.parquet_store import BatchStream, ParquetStore
from rag_core.lifecycle.context import RagContext
from rag_core.quality.drift_queries import PROBE_FIELDS, probe_text
from rag_core.types import API_SOURCE

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ErasureReport:
    doc_id: str
    milvus_chunks: Mapping[str, int]  # collection version -> chunks deleted from it
    asset_rows: Mapping[str, int]  # asset table -> rows removed
    purged: Mapping[str, str]  # collection version -> how its deleted rows left storage ("Rebuilt", "Completed")
    query_log_rows: int  # query-log records whose result lists named one of its chunks
    client_index_cleared: bool
    drift_snapshots: int = 0  # drift snapshots that held something of it
    probe_sets: int = 0  # probe sets with a probe derived from it
    source_file: str | None = None  # the file it was ingested from, when that file still exists
    chunk_ids: frozenset[str] = field(default_factory=frozenset, repr=False)

    @property
    def found(self) -> bool:
        return bool(sum(self.milvus_chunks.values()) or sum(self.asset_rows.values()))


def erase_document(
    context: RagContext, doc_id: str, *, alias: str | None = None, engine: object | None = None
) -> ErasureReport:
    """Erase ``doc_id`` everywhere (see the module docstring) and record an ERASURE event.

    The record names the current actor (``current_actor``: the RBAC identity inside ``acting_as``).
    The context's engines, and ``engine`` (another ``RetrievalEngine`` of this process, when there is one), get
    their caches cleared and their state invalidated, so their very next query cannot see the document.
    """
    # These load the embedding stack: only when erasing.
    from rag_core.quality.drift_snapshot import erase_from_snapshot, snapshot_path
    from rag_core.quality.probes import erase_from_probe_sets
    from rag_core.retrieval.engine import client_index_dir

    if not doc_id.strip():
        raise ValueError("Say which document to erase: --doc-id ID (the id `rag query` shows).")
    config, manager = context.config, context.manager
    alias = context.alias(alias)
    finish_interrupted_rebuilds(manager, alias)
    expression = f"doc_id == {json.dumps(doc_id)}"
    chunk_ids: set[str] = set()
    sources: set[str] = set()
    probe_texts: set[str] = set()
    deleted: dict[str, int] = {}
    purged: dict[str, str] = {}
    versions = manager.versions(alias) or ([alias] if manager.resolve(alias) == alias else [])
    for collection in versions:
        for batch in manager.iter_rows(collection, ["chunk_id", "source", *PROBE_FIELDS], filter=expression):
            chunk_ids.update(row["chunk_id"] for row in batch)
            sources.update(row["source"] for row in batch)
            probe_texts.update(probe_text(row) for row in batch)
        deleted[collection], result = erase_rows(manager, alias, collection, expression)
        if result is not None:
            purged[collection] = result.state
            if result.after.deleted_rows:
                log.warning(
                    "%s still stores %d deleted rows after compaction (%s); run `rag compact` later to purge them.",
                    collection,
                    result.after.deleted_rows,
                    result.state,
                )
    asset_rows = _erase_from_assets(ParquetStore(config.ingestion.storage_dir), doc_id, chunk_ids, sources)
    folders = [client_index_dir(config, name) for name in {alias, *versions}]
    cleared = any(folder.is_dir() for folder in folders)
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    snapshots = sum(
        erase_from_snapshot(snapshot_path(config, name), doc_id, probe_texts) for name in {alias, *versions}
    )
    probe_sets = erase_from_probe_sets(config, doc_id)
    query_log_rows = erase_from_query_log(Path(config.quality.query_log_dir), chunk_ids)
    context.invalidate(clear_caches=True)
    if engine is not None:
        engine.cache.clear()
        engine.invalidate()
    source_file = _existing_source(doc_id, sources, Path(config.ingestion.docs_dir))
    if source_file:
        log.warning(
            "Erased document %s still has its source file %s: the next ingestion of that folder would "
            "index it again; delete or move the file.",
            doc_id,
            source_file,
        )
    report = ErasureReport(
        doc_id=doc_id,
        milvus_chunks=deleted,
        asset_rows=asset_rows,
        purged=purged,
        query_log_rows=query_log_rows,
        client_index_cleared=cleared,
        drift_snapshots=snapshots,
        probe_sets=probe_sets,
        source_file=source_file,
        chunk_ids=frozenset(chunk_ids),
    )
    audit_trail(config).record(
        AuditEventType.ERASURE,
        outcome="success" if report.found else "not_found",
        details={
            "doc_id": doc_id,
            "alias": alias,
            "milvus_chunks": dict(deleted),
            "purged": purged,
            "asset_rows": asset_rows,
            "query_log_rows": query_log_rows,
            "drift_snapshots": snapshots,
            "probe_sets": probe_sets,
            "chunks": len(chunk_ids),
            "source_file_exists": bool(source_file),
        },
    )
    return report


def _erase_from_assets(store: ParquetStore, doc_id: str, chunk_ids: set[str], sources: set[str]) -> dict[str, int]:
    """Rewrite every asset table holding the document without its rows (schema, metadata and trailer kept)."""
    removed: dict[str, int] = {}
    for path in sorted(store.base_dir.glob("*.parquet")) if store.base_dir.is_dir() else []:
        table = store.get(path.stem)
        if table is None or "doc_id" not in table.file.schema_arrow.names:
            continue
        ids = table.read_column("doc_id")
        hits = pc.sum(pc.equal(ids, doc_id)).as_py() or 0
        if not hits:
            continue
        if "chunk_id" in table.file.schema_arrow.names:
            chunk_ids.update(pc.filter(table.read_column("chunk_id"), pc.equal(ids, doc_id)).to_pylist())
        if "source" in table.file.schema_arrow.names:
            sources.update(s for s in pc.filter(table.read_column("source"), pc.equal(ids, doc_id)).to_pylist() if s)
        kept = (batch.filter(pc.not_equal(batch.column("doc_id"), doc_id)) for batch in table.iter_batches(4096))
        store.write(path.stem, BatchStream(schema=table.file.schema_arrow, batches=kept, trailer=table.trailer))
        removed[path.stem] = hits
    return removed


def erase_from_query_log(folder: Path, chunk_ids: set[str]) -> int:
    """Drop ``chunk_ids`` (and their scores) from every logged result list; returns the records changed.

    Files are rewritten under a temporary name and renamed, as the log's writer does, so a reader never sees half.
    """
    changed = 0
    for path in sorted(folder.glob("date=*/*.parquet")) if chunk_ids else []:
        table = pq.read_table(path)
        rows = table.select(["result_ids", "result_scores"]).to_pylist()
        if not any(i in chunk_ids for row in rows for i in row["result_ids"] or []):
            continue
        ids, scores = [], []
        for row in rows:
            pairs = [(i, s) for i, s in zip(row["result_ids"] or [], row["result_scores"] or []) if i not in chunk_ids]
            changed += len(pairs) != len(row["result_ids"] or [])
            ids.append([i for i, _ in pairs])
            scores.append([s for _, s in pairs])
        schema = table.schema
        table = table.set_column(
            schema.get_field_index("result_ids"),
            schema.field("result_ids"),
            pa.array(ids, schema.field("result_ids").type),
        )
        table = table.set_column(
            schema.get_field_index("result_scores"),
            schema.field("result_scores"),
            pa.array(scores, schema.field("result_scores").type),
        )
        temporary = path.with_name(f".{path.name}.tmp")
        pq.write_table(table, temporary, compression="zstd")
        temporary.replace(path)
    return changed


def _existing_source(doc_id: str, sources: set[str], docs_dir: Path) -> str | None:
    """The file the document was read from, if it is still there (API documents have none)."""
    candidates = [Path(s) / doc_id for s in sources if s and s != API_SOURCE] + [docs_dir / doc_id]
    return next((str(p) for p in candidates if p.is_file()), None)
