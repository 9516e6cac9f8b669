"""Ingestion straight into Milvus, without Dagster: the ``rag ingest`` command and the Python API.

Unlike the asset chain, which mirrors a whole corpus folder, this adds or replaces only the documents it is given:
chunks already in Milvus are not embedded again, and stale chunks of re-ingested documents are deleted.
"""

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from rag_core.ingest.chunking import TokenChunker
from rag_core.config import RAGConfig
from rag_core.types import Document
from rag_core.ingest.embedder import Embedder, shared_embedder
from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import SyncReport, sync_index
from rag_core.ingest.stages import document_stream
from rag_core.ingest.tables import batch_to_documents, batched, chunks_to_batch, with_vectors


@dataclass(frozen=True)
class IngestReport:
    documents: int
    chunks: int
    skipped: list[str]
    sync: SyncReport
    seconds: float


def ingest_path(path: Path, config: RAGConfig, *, collection: str | None = None, embedder: Embedder | None = None,
                manager: MilvusIndexManager | None = None) -> IngestReport:
    """Every readable document under ``path``; bad files are reported in ``skipped`` and left out."""
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; give a file or a folder of documents.")
    stream = document_stream(path, max_file_bytes=config.ingestion.max_file_bytes,
                             batch_size=config.ingestion.record_batch_size)
    documents = (d for batch in stream.batches for d in batch_to_documents(batch))
    report = ingest_documents(documents, config, collection=collection, embedder=embedder, manager=manager)
    return IngestReport(documents=report.documents, chunks=report.chunks, skipped=stream.summary.get("skipped", []),
                        sync=report.sync, seconds=report.seconds)


def ingest_documents(documents: Iterable[Document], config: RAGConfig, *, collection: str | None = None,
                     embedder: Embedder | None = None, manager: MilvusIndexManager | None = None) -> IngestReport:
    started = time.perf_counter()
    embedder = embedder or shared_embedder(config.embedding)
    manager = manager or MilvusIndexManager(config.milvus, config.index)
    chunker = TokenChunker(embedder.tokenizer, config.chunking.chunk_size, config.chunking.chunk_overlap,
                           embedder.max_seq_length)
    counts = {"documents": 0, "chunks": 0}

    def chunk_batches() -> Iterator[pa.RecordBatch]:
        for group in batched(documents, config.ingestion.record_batch_size):
            chunks = chunks_to_batch([c for d in group for c in chunker.chunk(d)])
            counts["documents"] += len(group)
            counts["chunks"] += chunks.num_rows
            yield chunks

    version = manager.version_for(embedder.model_name, embedder.dimension, chunker.signature)
    report = sync_index(manager, collection or config.milvus.collection, version, chunk_batches(),
                        vectorize=lambda b: with_vectors(b, embedder.encode_documents(b.column("text").to_pylist())),
                        scope="documents")
    return IngestReport(documents=counts["documents"], chunks=counts["chunks"], skipped=[], sync=report,
                        seconds=round(time.perf_counter() - started, 3))
