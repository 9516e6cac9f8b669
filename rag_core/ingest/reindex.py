"""A full rebuild of an alias into a new version, from what the version it serves holds.

Every source's documents are rejoined from their chunks in Milvus (so nothing outside Milvus is needed: not the
original files, not an API caller's batches), chunked and embedded with the current settings into
``alias__vN+1``. The alias moves only once the new version is complete; an interrupted rebuild is continued by
the next ``rag reindex``.
"""

import time
from collections import defaultdict
from collections.abc import Iterator

from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import SyncReport, finish_version, legacy_source, sync_into
from rag_core.ingest.chunking import TokenChunker
from rag_core.ingest.direct import vectorizer
from rag_core.ingest.embedder import Embedder, shared_embedder
from rag_core.ingest.stages import chunk_batches
from rag_core.retrieval.client_index import documents_from_chunks
from rag_core.types import Chunk, Document

ROW_FIELDS = ["chunk_id", "doc_id", "source", "position", "text", "metadata"]


def reindex(config: RAGConfig, *, collection: str | None = None, embedder: Embedder | None = None,
            manager: MilvusIndexManager | None = None) -> SyncReport:
    started = time.perf_counter()
    alias = collection or config.milvus.collection
    embedder = embedder or shared_embedder(config.embedding)
    manager = manager or MilvusIndexManager(config.milvus, config.index)
    current = manager.resolve(alias)
    if current is None:
        raise LookupError(f"No index {alias!r} at {manager.uri} to rebuild; ingest documents first (rag ingest).")
    chunker = TokenChunker(embedder.tokenizer, config.chunking.chunk_size, config.chunking.chunk_overlap,
                           embedder.max_seq_length)
    version = manager.version_for(embedder.model_name, embedder.dimension, chunker.signature)
    target = manager.resumable_version(alias, version) or manager.create_version(alias, version)
    changes = sync_into(manager, target, chunk_batches(stored_documents(manager, current), chunker,
                                                       config.ingestion.record_batch_size), vectorizer(embedder))
    finish_version(manager, alias, target, changes.wanted)
    return SyncReport(alias=alias, collection=target, index_version=version.fingerprint, new_version=True,
                      upserted=changes.upserted, deleted=changes.deleted,
                      unchanged=len(changes.wanted) - changes.upserted, rows=manager.count(target),
                      data_version=manager.state(target).data_version, seconds=round(time.perf_counter() - started, 3))


def stored_documents(manager: MilvusIndexManager, collection: str) -> Iterator[Document]:
    """Every document in ``collection``, its text rejoined from its chunks, with its source and title.

    Chunks come back in primary-key order, not by document, so the rows' text is held until all are read.
    """
    by_source: dict[str, list[Chunk]] = defaultdict(list)
    titles: dict[tuple[str, str], str] = {}
    version = manager.state(collection).version
    fields = ROW_FIELDS if version and version.schema >= 2 else [f for f in ROW_FIELDS if f != "source"]
    for batch in manager.iter_rows(collection, fields):
        for row in batch:
            source = row["source"] if "source" in row else legacy_source(row["doc_id"], row.get("metadata") or {})
            by_source[source].append(Chunk(chunk_id=row["chunk_id"], doc_id=row["doc_id"],
                                           position=row["position"], text=row["text"], source=source))
            titles[(source, row["doc_id"])] = (row.get("metadata") or {}).get("title", "")
    for source, chunks in by_source.items():
        for _, doc_id, text in zip(*documents_from_chunks(chunks)):
            yield Document(doc_id=doc_id, text=text, title=titles[(source, doc_id)], source=source)
