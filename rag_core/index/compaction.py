"""The guide's weekly compaction: merge small segments and purge deleted rows in every complete version; and the
purge an erasure needs, on either kind of store.

A version that is not served still answers a rollback, so it is compacted too; an incomplete build is left alone.

Milvus Lite 3.x deletes by writing a tombstone: the row's text and vector stay in its segment's Parquet file until
Lite's own compaction merges that file, which it does only once a partition has piled up several files (a small
collection may never get there). Its manual compaction does nothing and it counts no deleted rows, so ``rag
compact`` says just that there. An erasure cannot wait for it: ``erase_rows`` rebuilds the version instead.
"""

import time
from dataclasses import dataclass

from rag_core.index.manager import VERSION_SEPARATOR, MilvusIndexManager, StorageStats
from rag_core.index.version import DATA_VERSION_KEY

SETTLE_S = 10.0  # a finished job's new segments take a moment to show in the segment list
# A server leaves segments that its own automatic compaction holds out of a manual job's plan, so a job can finish
# with their deleted rows still there (seen in full test runs); a next job takes them. Bounded: rows the server will
# not purge (too few per segment) must not keep the weekly job spinning until its wait runs out.
ATTEMPTS = 3
LITE_NOTE = (
    "Milvus Lite: no manual compaction, and no count of deleted rows; their text and vectors stay in its "
    "files until its own compaction merges them (`rag erase` rebuilds the versions it erases from)"
)
REBUILD_SUFFIX = "_rebuilding"  # a copy's name is no version name (alias__vN): no listing of versions shows it


@dataclass(frozen=True)
class CompactionReport:
    collection: str
    state: str
    before: StorageStats
    after: StorageStats
    seconds: float
    note: str = ""


def compact_versions(manager: MilvusIndexManager, alias: str, *, wait_s: float = 300.0) -> list[CompactionReport]:
    complete = [v for v in manager.versions(alias) if manager.state(v).complete]
    if not complete:
        raise LookupError(f"No complete version of {alias!r} at {manager.uri} to compact; ingest documents first.")
    return [_compact(manager, collection, wait_s) for collection in complete]


def _compact(manager: MilvusIndexManager, collection: str, wait_s: float) -> CompactionReport:
    started, deadline = time.perf_counter(), time.monotonic() + wait_s
    if not manager.capabilities.is_lite:
        manager.wait_for_index(collection, wait_s=wait_s)
    before = manager.storage_stats(collection)
    for _ in range(ATTEMPTS):
        result = manager.compact(collection, wait_s=max(deadline - time.monotonic(), 0.0))
        after = manager.storage_stats(collection)
        settled = time.monotonic() + SETTLE_S
        while after.deleted_rows and result.state == "Completed" and time.monotonic() < settled:
            time.sleep(0.5)
            after = manager.storage_stats(collection)
        if not after.deleted_rows or result.state != "Completed" or time.monotonic() >= deadline:
            break
    return CompactionReport(
        collection=collection,
        state=result.state,
        before=before,
        after=after,
        seconds=round(time.perf_counter() - started, 3),
        note=LITE_NOTE if manager.capabilities.is_lite else "",
    )


def erase_rows(
    manager: MilvusIndexManager, alias: str, collection: str, expression: str, *, wait_s: float = 300.0
) -> tuple[int, CompactionReport | None]:
    """Remove the rows matching ``expression`` from ``collection`` (a version of ``alias``), from its storage too and
    not only from results; returns how many there were and how storage was purged (None: there were none).

    A server deletes them, records a new data version, flushes and compacts: a compaction leaves rows deleted from a
    segment still growing where they are (seen on 2.3.5: 8 stored rows for 7 live after three jobs), so the
    deletion is sealed first. Milvus Lite would keep them in its files (see the module docstring), so the version
    is rebuilt without them instead: a rebuild stopped half-way leaves the version whole, document and all, and the
    next erasure does it again.
    """
    if not manager.capabilities.is_lite:
        deleted = manager.delete_where(collection, expression)
        if not deleted:
            return 0, None
        manager.bump_data_version(collection)
        manager.flush(collection)
        return deleted, _compact(manager, collection, wait_s)
    deleted = manager.count(collection, filter=expression)
    if not deleted:
        return 0, None
    started = time.perf_counter()
    before = manager.storage_stats(collection)
    rebuild(manager, alias, collection, keep=f"not ({expression})")
    return deleted, CompactionReport(
        collection=collection,
        state="Rebuilt",
        before=before,
        after=manager.storage_stats(collection),
        seconds=round(time.perf_counter() - started, 3),
        note="Milvus Lite: rebuilt without them; the old files are removed",
    )


def rebuild(manager: MilvusIndexManager, alias: str, collection: str, *, keep: str = "") -> None:
    """Replace ``collection`` by a copy of its rows (those matching ``keep``), vectors and all, and remove its files.

    The copy has the same schema, index and properties, its data version one higher (every reader's cache and
    client-side index let go of the old one). It is counted before anything is swapped; then the alias, when it
    serves ``collection``, moves to the copy, so readers see no gap; the original is dropped (its folder removed)
    and the copy renamed to its name, which on Milvus Lite takes the alias along.
    """
    staging = f"{collection}{REBUILD_SUFFIX}"
    if manager.resolve(staging):  # an earlier rebuild stopped before its swap; the original is intact
        manager.drop_version(staging)
    state = manager.state(collection)
    if state.version is None:
        raise ValueError(f"{collection} records no index version (not made by this project); cannot rebuild it.")
    properties = manager.properties(collection) | {DATA_VERSION_KEY: str(state.data_version + 1)}
    manager.create_collection(staging, state.version, properties)
    manager.consistent_export(collection, lambda: _copy(manager, collection, staging, keep))
    manager.flush(staging)
    if (copied := manager.count(staging)) != (kept := manager.count(collection, filter=keep)):
        manager.drop_version(staging)
        raise RuntimeError(
            f"Rebuilding {collection} copied {copied} of the {kept} rows to keep, so it was left as it "
            "was. Is something writing to it? Run the command again once that is done."
        )
    if manager.resolve(alias) == collection:
        manager.promote(alias, staging)
    manager.drop_version(collection)
    manager.rename_collection(staging, collection)


def finish_interrupted_rebuilds(manager: MilvusIndexManager, alias: str) -> list[str]:
    """Give back their names to copies whose rebuild stopped between dropping the original and the rename (a copy
    is complete by then: it was counted first); returns the versions named back."""
    prefix = f"{alias}{VERSION_SEPARATOR}"
    restored = []
    for name in manager.client.list_collections():
        original = name.removesuffix(REBUILD_SUFFIX)
        if original != name and original.startswith(prefix) and manager.resolve(original) is None:
            manager.rename_collection(name, original)
            restored.append(original)
    return restored


def _copy(manager: MilvusIndexManager, source: str, target: str, keep: str) -> None:
    """Upserts, so that ``consistent_export`` can run it again over what an earlier pass already copied."""
    # The BM25 sparse field is computed again from the text as rows go in.
    for batch in manager.iter_rows(source, [*manager.row_fields(source), "vector"], filter=keep):
        manager.upsert(target, batch)
