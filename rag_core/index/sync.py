"""Bring one source's rows in a Milvus collection in line with a table of chunks: upsert what is missing, delete
what is gone, and never let readers see a partial version.

Milvus itself is the reference for what is indexed (never a side registry that could drift from it), so a sync
after a crash, a manual delete or a half-finished run converges all the same. Every sync that changes rows
records a new data version, which readers' caches and client-side indexes are keyed on.
"""

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from rag_core.index.manager import IndexedChunk, MilvusIndexManager
from rag_core.index.version import IndexVersion
from rag_core.tables import milvus_rows
from rag_core.types import API_SOURCE

Vectorize = Callable[[pa.RecordBatch], pa.RecordBatch]


class VersionChangeError(ValueError):
    """The index settings changed, and this sync cannot build the whole new version by itself."""


@dataclass(frozen=True)
class SyncReport:
    alias: str
    collection: str
    index_version: str
    new_version: bool
    upserted: int
    deleted: int
    unchanged: int
    rows: int
    data_version: int
    seconds: float


@dataclass(frozen=True)
class SyncChanges:
    upserted: int
    deleted: int
    wanted: set[str]
    pending: bool = False  # rows were written (by this sync, or one that died) and await a data version


def source_filter(source: str) -> str:
    return f"source == {json.dumps(source)}"


def sync_index(
    manager: MilvusIndexManager,
    alias: str,
    version: IndexVersion,
    batches: Iterable[pa.RecordBatch],
    *,
    source: str,
    prune: bool,
    vectorize: Vectorize | None = None,
    keep: Callable[[str], bool] | None = None,
    promote: Callable[[str], object] | None = None,
    owns: Callable[[str], bool] | None = None,
    tenant: str | None = None,
) -> SyncReport:
    """Sync ``source``'s documents in ``alias`` with ``batches`` (chunk rows, with vectors unless ``vectorize``).

    ``prune=True``: the batches are everything ``source`` holds, and its documents missing from them are deleted
    (a mirrored folder); ``False``: only the documents in the batches are added or replaced. Other sources are
    never touched, nor are documents for which ``keep(doc_id)`` is true once the batches are read (inputs that
    could not be read this time). A changed ``version`` (model, dimensions, index parameters, chunking) builds
    ``alias__vN`` and moves the alias once it is complete, which needs the whole corpus: otherwise
    ``VersionChangeError``. ``promote(collection)`` serves the completed version (``rag_core.lifecycle.promotion``:
    with retention and a drift snapshot); without it the alias is simply moved.

    ``owns(doc_id)`` confines the sync to one bucket of a partitioned corpus (``rag_core.ingest.partitioning``):
    rows of other documents are neither compared nor deleted, the data version is bumped so that runs racing on
    it never write the same number, and a new version is left for ``finish_when_whole`` to serve once every
    bucket is in it. An empty bucket is then legitimate (its last document was removed): the caller refuses an
    empty corpus.

    ``tenant``: a writer bound to one tenant; the source's rows of other tenants are neither compared nor deleted,
    and a new version (which needs every tenant's documents) is refused.
    """
    started = time.perf_counter()
    current = manager.resolve(alias)
    if current == alias:
        raise ValueError(
            f"{alias!r} at {manager.uri} is a plain collection, not an alias this project manages; "
            "drop or rename it, or set milvus.collection to another name."
        )
    new_version = current is None or manager.state(current).version != version
    if new_version and current is not None:
        if tenant is not None:
            raise VersionChangeError(
                f"The index settings changed since {current} was built, and a new version needs every tenant's "
                f"documents, while this writer writes for tenant {tenant!r} only. An admin of every tenant runs "
                "`rag reindex`; then ingest again."
            )
        _refuse_partial_version(manager, alias, current, source, prune)
    target = (
        (manager.resumable_version(alias, version) or manager.create_version(alias, version))
        if new_version
        else current
    )
    if tenant is not None and not manager.labelled(target):
        raise VersionChangeError(
            f"{target} was built before access labels: a writer of tenant {tenant!r} cannot tell its rows from "
            "another tenant's there. An admin of every tenant runs `rag reindex` (labels every row), then ingest again."
        )
    # A version being built holds exactly this sync's documents, even when it continues an interrupted build
    # whose corpus has changed since.
    changes = _apply(
        manager,
        target,
        batches,
        source=source,
        prune=prune or new_version,
        vectorize=vectorize,
        keep=keep,
        owns=owns,
        tenant=tenant,
    )
    data_version = _publish(manager, target, changes, concurrent=owns is not None)
    if new_version and owns is None:
        finish_version(manager, alias, target, changes.wanted, promote=promote)
    return SyncReport(
        alias=alias,
        collection=target,
        index_version=version.fingerprint,
        new_version=new_version,
        upserted=changes.upserted,
        deleted=changes.deleted,
        unchanged=len(changes.wanted) - changes.upserted,
        rows=manager.count(target),
        data_version=data_version,
        seconds=round(time.perf_counter() - started, 3),
    )


def _refuse_partial_version(manager: MilvusIndexManager, alias: str, current: str, source: str, prune: bool) -> None:
    version = manager.state(current).version
    if version is not None and version.schema >= 2:
        others = manager.count(current, filter=f"not ({source_filter(source)})")
    else:  # rows written before they carried their source: told apart by the file path they kept
        others = sum(
            legacy_source(row["doc_id"], row["metadata"] or {}) != source
            for batch in manager.iter_rows(current, ["doc_id", "metadata"])
            for row in batch
        )
    if prune and others == 0:
        return  # this source is the whole corpus: the new version is built from all of it
    held = f"{others} rows of other sources" if others else "documents this ingest was not given"
    raise VersionChangeError(
        f"The index settings changed since {current} was built (model, dimensions, index parameters or chunking), "
        f"and {current} also holds {held}: a new version built from this ingest alone would lose them. Run "
        f"`rag reindex` to rebuild every document into a new version of {alias!r}, or restore the previous settings."
    )


def legacy_source(doc_id: str, metadata: dict) -> str:
    """The owner of a row written before rows carried their source: the folder its file path (kept in the
    metadata) was read under, resolved from the working directory, or the API's source for a row with no file."""
    path = metadata.get("source", "")
    if not path or not path.endswith(doc_id):
        return API_SOURCE
    return str(Path(path[: len(path) - len(doc_id)] or ".").resolve())


def _apply(
    manager: MilvusIndexManager,
    target: str,
    batches: Iterable[pa.RecordBatch],
    *,
    source: str | None,
    prune: bool,
    vectorize: Vectorize | None,
    keep: Callable[[str], bool] | None = None,
    owns: Callable[[str], bool] | None = None,
    tenant: str | None = None,
) -> SyncChanges:
    rows = manager.indexed_chunks(target, source=source, tenant=tenant)
    if owns is not None:
        rows = {chunk_id: row for chunk_id, row in rows.items() if owns(row.doc_id)}
    existing = {chunk_id: row.doc_id for chunk_id, row in rows.items()}
    indexed = pa.array(list(existing), type=pa.string())  # built once: every batch is checked against it
    labelled = manager.labelled(target)
    wanted: set[str] = set()
    seen_documents: set[str] = set()
    upserted = 0
    pending = manager.state(target).sync_pending

    def begin_writes() -> None:
        nonlocal pending
        if not pending:
            manager.begin_writes(target)
            pending = True

    for batch in batches:
        ids = batch.column("chunk_id")
        wanted.update(ids.to_pylist())
        seen_documents.update(batch.column("doc_id").to_pylist())
        held = pc.is_in(ids, value_set=indexed)
        missing = batch.filter(pc.invert(held))
        if missing.num_rows:
            begin_writes()
            upserted += manager.upsert(target, milvus_rows(vectorize(missing) if vectorize else missing))
        relabelled = _relabelled(batch.filter(held), rows) if labelled else {}
        if relabelled:
            begin_writes()
            upserted += manager.relabel(target, relabelled)
    if prune and existing and not wanted and owns is None:
        raise ValueError(
            f"The corpus of source {source!r} is empty but {target} holds {len(existing)} of its "
            "chunks; refusing to delete them all. Check the folder (ingestion.docs_dir), or delete "
            f"them explicitly with `rag delete --source {source}`."
        )
    kept = keep or (lambda doc_id: False)
    stale = [c for c, d in existing.items() if c not in wanted and (prune or d in seen_documents) and not kept(d)]
    if stale:
        begin_writes()
    deleted = manager.delete_chunks(target, stale)
    return SyncChanges(upserted=upserted, deleted=deleted, wanted=wanted, pending=pending)


def _relabelled(batch: pa.RecordBatch, rows: dict[str, IndexedChunk]) -> dict[str, tuple[tuple[str, ...], str]]:
    """The chunks of ``batch`` already indexed whose document's labels changed since: their new labels."""
    columns = batch.select(["chunk_id", "groups", "tenant"]).to_pydict()
    wanted = {
        chunk_id: (tuple(sorted(groups or ())), tenant or "")
        for chunk_id, groups, tenant in zip(columns["chunk_id"], columns["groups"], columns["tenant"])
    }
    return {chunk_id: labels for chunk_id, labels in wanted.items() if rows[chunk_id].labels != labels}


def _publish(manager: MilvusIndexManager, target: str, changes: SyncChanges, *, concurrent: bool = False) -> int:
    """Make a sync's writes visible: flush (searches then run on sealed segments) and record a new data version.
    Also after a sync that wrote nothing, when an earlier one died between its writes and its data version."""
    if not changes.pending:  # set before any write, so also when this sync wrote
        return manager.state(target).data_version
    manager.flush(target)
    return manager.bump_data_version(target, concurrent=concurrent)


def finish_version(
    manager: MilvusIndexManager,
    alias: str,
    target: str,
    wanted: set[str],
    *,
    promote: Callable[[str], object] | None = None,
) -> None:
    """Mark a newly built version complete and serve it, only when it holds exactly the chunks synced into it."""
    complete_version(manager, alias, target, wanted)
    if promote is None:
        manager.promote(alias, target)
    else:
        promote(target)


def complete_version(manager: MilvusIndexManager, alias: str, target: str, wanted: set[str]) -> None:
    """Mark a newly built version complete, only when it holds exactly the chunks synced into it; the alias is not
    moved (a re-index gates that on the candidate's quality)."""
    held = set(manager.list_chunk_ids(target))
    if held != wanted:
        raise RuntimeError(
            f"{target} holds {len(held)} chunks but {len(wanted)} were synced into it "
            f"({len(wanted - held)} missing, {len(held - wanted)} unexpected); it stays incomplete "
            f"and {alias!r} keeps serving its current version. Run the same command again."
        )
    manager.mark_complete(target)


def sync_into(
    manager: MilvusIndexManager, target: str, batches: Iterable[pa.RecordBatch], vectorize: Vectorize
) -> SyncChanges:
    """Fill a version being rebuilt with rows of every source (each batch row carries its own)."""
    changes = _apply(manager, target, batches, source=None, prune=False, vectorize=vectorize)
    _publish(manager, target, changes)
    return changes
