"""The ingestion chain's steps as lazy streams: documents -> chunks -> embeddings.

Each step reuses its previous output wherever its input did not change (same document content, same chunk
text, same model), so a re-run on an unchanged corpus embeds nothing, and an edit re-embeds only what it touched.
"""

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from tqdm.auto import tqdm

from rag_core.ingest.chunking import TokenChunker
from rag_core.types import Document, SkippedInput
from rag_core.ingest.embedder import Embedder
from rag_core.ingest.loaders import iter_inputs
from rag_core.ingest.parquet_store import BatchStream, ParquetTable, RowLookup
from rag_core.ingest.tables import (CHUNKS_SCHEMA, DOCUMENTS_SCHEMA, batch_to_documents, batched, chunks_to_batch,
                             documents_to_batch, embeddings_schema, vectors_of, with_vectors)

CHUNKING_KEY, MODEL_KEY, DIMENSION_KEY = "rag.chunking", "rag.model", "rag.dimension"
PROGRESS_MIN_ROWS = 2000


def _rates(summary: dict, rows: int, tokens: int, seconds: float, unit: str) -> None:
    summary.update({"seconds": round(seconds, 3), f"{unit}_per_s": round(rows / seconds, 1) if seconds else 0.0,
                    "tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0})


def document_stream(path: Path, *, max_file_bytes: int, batch_size: int) -> BatchStream:
    """Documents from the raw folder; every skipped input lands in ``summary['skipped']`` with its reason."""
    stream = BatchStream(schema=DOCUMENTS_SCHEMA, batches=[])
    skipped: list[SkippedInput] = []

    def documents() -> Iterator[Document]:
        for item in iter_inputs(path, max_file_bytes=max_file_bytes):
            if isinstance(item, SkippedInput):
                skipped.append(item)
            else:
                yield item

    def batches() -> Iterator[pa.RecordBatch]:
        started, count = time.perf_counter(), 0
        for group in batched(documents(), batch_size):
            count += len(group)
            yield documents_to_batch(group)
        stream.summary.update({"documents": count, "skipped_inputs": len(skipped),
                               "skipped": [str(s) for s in skipped],
                               "seconds": round(time.perf_counter() - started, 3)})

    stream.batches = batches()
    return stream


def chunk_stream(documents: ParquetTable, chunker: TokenChunker, previous: ParquetTable | None,
                 *, batch_size: int) -> BatchStream:
    """Chunks of every document; unchanged documents keep their previous chunks without re-tokenizing."""
    usable = previous is not None and previous.metadata.get(CHUNKING_KEY) == chunker.signature
    lookup = RowLookup(previous if usable else None, key="doc_hash")
    stream = BatchStream(schema=CHUNKS_SCHEMA.with_metadata({CHUNKING_KEY: chunker.signature}), batches=[])

    def batches() -> Iterator[pa.RecordBatch]:
        started, counts = time.perf_counter(), {"documents": 0, "chunks": 0, "tokens": 0, "rechunked_documents": 0}
        for batch in documents.iter_batches(batch_size):
            docs = batch_to_documents(batch)
            reused = _previous_chunks(lookup, docs)
            reused_docs = set(reused.column("doc_id").to_pylist()) if reused.num_rows else set()
            fresh = [c for d in docs if d.doc_id not in reused_docs for c in chunker.chunk(d)]
            out = pa.concat_tables([reused.select(CHUNKS_SCHEMA.names).cast(CHUNKS_SCHEMA),
                                    pa.Table.from_batches([chunks_to_batch(fresh)])]) if fresh else reused
            counts["documents"] += len(docs)
            counts["rechunked_documents"] += len(docs) - len(reused_docs)
            counts["chunks"] += out.num_rows
            counts["tokens"] += int(pc.sum(out.column("token_count")).as_py() or 0) if out.num_rows else 0
            yield from out.select(CHUNKS_SCHEMA.names).cast(CHUNKS_SCHEMA).to_batches()
        stream.summary.update(counts)
        _rates(stream.summary, counts["chunks"], counts["tokens"], time.perf_counter() - started, "chunks")

    stream.batches = batches()
    return stream


def _previous_chunks(lookup: RowLookup, docs: list[Document]) -> pa.Table:
    """Previous rows of the documents whose (id, content) both match: same content under another id won't do."""
    wanted = {(d.doc_id, d.content_hash) for d in docs if d.content_hash in lookup}
    if not wanted:
        return CHUNKS_SCHEMA.empty_table()
    rows = lookup.take({h for _, h in wanted})
    pairs = zip(rows.column("doc_id").to_pylist(), rows.column("doc_hash").to_pylist())
    return rows.filter(pa.array([pair in wanted for pair in pairs], type=pa.bool_()))


def embedding_stream(chunks: ParquetTable, embedder: Embedder, previous: ParquetTable | None,
                     *, batch_size: int) -> BatchStream:
    """Vectors for every chunk; a chunk whose text was embedded before by the same model keeps its vector."""
    usable = previous is not None and previous.metadata.get(MODEL_KEY) == embedder.model_name
    lookup = RowLookup(previous if usable else None, key="text_hash")
    metadata = {MODEL_KEY: embedder.model_name, DIMENSION_KEY: str(embedder.dimension),
                CHUNKING_KEY: chunks.metadata.get(CHUNKING_KEY, "")}
    stream = BatchStream(schema=embeddings_schema(embedder.dimension).with_metadata(metadata), batches=[])

    def batches() -> Iterator[pa.RecordBatch]:
        started, embed_seconds = time.perf_counter(), 0.0
        counts = {"chunks": 0, "embedded_chunks": 0, "reused_chunks": 0, "embedded_tokens": 0}
        total = chunks.num_rows
        with tqdm(total=total, desc="embedding", unit="chunk", disable=total < PROGRESS_MIN_ROWS) as progress:
            for batch in chunks.iter_batches(batch_size):
                hashes = batch.column("text_hash").to_pylist()
                known = np.array([h in lookup for h in hashes], dtype=bool)
                vectors = np.empty((batch.num_rows, embedder.dimension), dtype=np.float32)
                if known.any():
                    vectors[known] = vectors_of(lookup.take([h for h, k in zip(hashes, known) if k], first_only=True))
                if (~known).any():
                    texts = [t for t, k in zip(batch.column("text").to_pylist(), known) if not k]
                    tick = time.perf_counter()
                    vectors[~known] = embedder.encode_documents(texts)
                    embed_seconds += time.perf_counter() - tick
                    counts["embedded_tokens"] += int(pc.sum(batch.filter(pa.array(~known)).column("token_count")).as_py())
                counts["chunks"] += batch.num_rows
                counts["reused_chunks"] += int(known.sum())
                counts["embedded_chunks"] += int((~known).sum())
                progress.update(batch.num_rows)
                yield with_vectors(batch, vectors)
        stream.summary.update(counts)
        _rates(stream.summary, counts["embedded_chunks"], counts["embedded_tokens"], time.perf_counter() - started,
               "embedded_chunks")
        stream.summary["model_seconds"] = round(embed_seconds, 3)

    stream.batches = batches()
    return stream
