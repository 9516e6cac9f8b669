"""The guide's weekly compaction: merge small segments and purge deleted rows in every complete version.

A version that is not served still answers a rollback, so it is compacted too; an incomplete build is left alone.
Milvus Lite lists no segments and purges deleted rows by itself: there, the report says so instead of a merge.
"""

import time
from dataclasses import dataclass

from rag_core.index.manager import MilvusIndexManager, StorageStats

SETTLE_S = 10.0  # a finished job's new segments take a moment to show in the segment list
# A server leaves segments that its own automatic compaction holds out of a manual job's plan, so a job can finish
# with their deleted rows still there (seen in full test runs); a next job takes them. Bounded: rows the server will
# not purge (too few per segment) must not keep the weekly job spinning until its wait runs out.
ATTEMPTS = 3


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
    note = "Milvus Lite: no segments to merge; deleted rows are purged as they are deleted" \
        if manager.capabilities.is_lite else ""
    return CompactionReport(collection=collection, state=result.state, before=before, after=after,
                            seconds=round(time.perf_counter() - started, 3), note=note)
