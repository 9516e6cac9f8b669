"""Bring a Milvus collection in line with a table of chunks: upsert what is missing, delete what is gone.

Milvus itself is the reference for what is indexed (never a side registry that could drift from it), so a sync
after a crash, a manual delete or a half-finished run converges all the same.
"""

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc

from rag_core.index.manager import MilvusIndexManager
from rag_core.index.version import IndexVersion
from rag_core.ingest.tables import milvus_rows

Vectorize = Callable[[pa.RecordBatch], pa.RecordBatch]


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
    seconds: float


def sync_index(
    manager: MilvusIndexManager,
    alias: str,
    version: IndexVersion,
    batches: Iterable[pa.RecordBatch],
    *,
    vectorize: Vectorize | None = None,
    scope: Literal["corpus", "documents"] = "corpus",
) -> SyncReport:
    """Sync ``alias`` with ``batches`` (chunk rows, with a vector column unless ``vectorize`` adds it).

    A changed ``version`` (model, dimensions, index parameters, chunking) builds a new collection ``alias__vN``
    and moves the alias only once it is complete. ``scope="corpus"`` means the batches are everything that should
    be indexed; ``"documents"`` only replaces the documents present in the batches and leaves the others alone.
    """
    started = time.perf_counter()
    current = manager.resolve(alias)
    if current == alias:
        raise ValueError(f"{alias!r} at {manager.uri} is a plain collection, not an alias this project manages; "
                         "drop or rename it, or set milvus.collection to another name.")
    new_version = current is None or manager.index_version(current) != version
    target = manager.create_version(alias, version) if new_version else current
    existing = {} if new_version else manager.list_chunk_ids(target)
    indexed = pa.array(list(existing), type=pa.string())  # built once: every batch is checked against it
    wanted: set[str] = set()
    seen_documents: set[str] = set()
    upserted = 0
    for batch in batches:
        ids = batch.column("chunk_id")
        wanted.update(ids.to_pylist())
        seen_documents.update(batch.column("doc_id").to_pylist())
        missing = batch.filter(pc.invert(pc.is_in(ids, value_set=indexed)))
        if missing.num_rows:
            upserted += manager.upsert(target, milvus_rows(vectorize(missing) if vectorize else missing))
    stale = [c for c, d in existing.items() if c not in wanted and (scope == "corpus" or d in seen_documents)]
    if scope == "corpus" and existing and not wanted:
        raise ValueError(f"The corpus is empty but {alias!r} holds {len(existing)} chunks; refusing to delete them "
                         "all. Check ingestion.docs_dir, or drop the collection if you really mean it.")
    deleted = manager.delete_chunks(target, stale)
    if new_version:
        manager.promote(alias, target)
    return SyncReport(alias=alias, collection=target, index_version=version.fingerprint, new_version=new_version,
                      upserted=upserted, deleted=deleted, unchanged=len(wanted) - upserted,
                      rows=manager.count(target), seconds=round(time.perf_counter() - started, 3))
