"""The ingestion chain's steps as lazy streams: documents -> chunks -> embeddings.

Each step reuses its previous output wherever its input did not change (same document content, same chunk
text, same model), so a re-run on an unchanged corpus embeds nothing, and an edit re-embeds only what it touched.
"""

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rag_core.config import AccessConfig
from rag_core.ingest.chunking import TokenChunker
from rag_core.ingest.loaders import iter_inputs
from rag_core.ingest.parquet_store import BatchStream, ParquetTable, RowLookup
from rag_core.models.embedder import Embedder
from rag_core.observability.progress import QUIET, ProgressBar, ProgressReporter
from rag_core.security.labels import AccessLabels, LabelError, labelled
from rag_core.tables import (
    CHUNKS_SCHEMA,
    DOCUMENTS_SCHEMA,
    batch_to_documents,
    batched,
    chunks_to_batch,
    documents_to_batch,
    embeddings_schema,
    vectors_of,
    with_vectors,
)
from rag_core.types import Chunk, Document, SkippedInput

CHUNKING_KEY, MODEL_KEY, DIMENSION_KEY = "rag.chunking", "rag.model", "rag.dimension"
# Inputs that exist but could not be read, relative to the corpus folder: their documents are kept.
SKIPPED_INPUTS_KEY = "rag.skipped_inputs"
CORPUS_DOCUMENTS_KEY = "rag.corpus_documents"  # documents read in the whole folder, every partition's bucket
PROGRESS_MIN_ROWS = 2000  # embedding fewer chunks is quick: no progress shown
LARGE_DOCUMENT_CHARS = 1 << 20  # documents this long get progress and log lines of their own
# A large document's chunks go on in batches of at most this many, so its progress moves every few seconds: a batch
# of 512 took 8 s to embed and write at int8 on 2 cores, 40 s or more on a machine shared with other jobs, and a
# log line can only say what the last batch back has done.
LARGE_DOCUMENT_BATCH = 64
log = logging.getLogger(__name__)


def _rates(summary: dict, rows: int, tokens: int, seconds: float, unit: str) -> None:
    summary.update(
        {
            "seconds": round(seconds, 3),
            f"{unit}_per_s": round(rows / seconds, 1) if seconds else 0.0,
            "tokens_per_s": round(tokens / seconds, 1) if seconds else 0.0,
        }
    )


def skipped_documents(trailer: Callable[[], dict[str, str]]) -> Callable[[str], bool]:
    """Whether a document id (a path under the corpus folder) is one of, or inside one of, the inputs skipped this
    time.

    A pruning sync keeps such documents as they were indexed: a file that turned unreadable or invalid is reported
    and left alone until it is fixed or removed, never deleted as if it were gone. ``trailer`` gives the documents
    table's trailer (``document_stream``'s), read on first use: a stream's is complete only once it was read.
    Skipped inputs are recorded as paths relative to the corpus folder, like document ids, and compared as text:
    resolving them would follow links (a link to the folder itself would then hold every document, and a link
    loop cannot be resolved at all).
    """
    skipped: list[str] = []

    def keep(doc_id: str) -> bool:
        if not skipped:
            skipped.extend(json.loads(trailer().get(SKIPPED_INPUTS_KEY, "[]")))
        return any(doc_id == s or doc_id.startswith(f"{s}/") for s in skipped)

    return keep


def _relative_input(source: str, root: Path) -> str:
    """A skipped input's path as a document id would name it: relative to the corpus folder (the file's own folder
    when one file is ingested), without following links."""
    base = root if root.is_dir() else root.parent
    return Path(os.path.relpath(source, base)).as_posix()


def document_stream(
    path: Path,
    *,
    max_file_bytes: int,
    batch_size: int,
    source: str,
    access: AccessConfig,
    labels: AccessLabels = AccessLabels(),
    writer_tenant: str | None = None,
    owns: Callable[[str], bool] | None = None,
) -> BatchStream:
    """Documents under ``path``, owned by ``source``, each with its access labels resolved (its sidecar's, else
    ``labels``, else the defaults; ``writer_tenant``: the one tenant the writer may write into); every skipped input
    lands in ``summary['skipped']``.

    ``owns(doc_id)``: only those documents (one bucket of a partitioned corpus, ``rag_core.ingest.partitioning``).
    """
    stream = BatchStream(schema=DOCUMENTS_SCHEMA, batches=[])
    skipped: list[SkippedInput] = []
    read = [0]

    def documents() -> Iterator[Document]:
        for item in iter_inputs(path, max_file_bytes=max_file_bytes):
            if isinstance(item, SkippedInput):
                skipped.append(item)
                continue
            read[0] += 1
            if owns is None or owns(item.doc_id):
                try:
                    yield replace(labelled(item, labels, access, tenant=writer_tenant), source=source)
                except LabelError as error:
                    skipped.append(SkippedInput(item.source, str(error)))

    def batches() -> Iterator[pa.RecordBatch]:
        started, count = time.perf_counter(), 0
        for group in batched(documents(), batch_size):
            count += len(group)
            yield documents_to_batch(group)
        stream.summary.update(
            {
                "documents": count,
                "skipped_inputs": len(skipped),
                "skipped": [str(s) for s in skipped],
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
        stream.trailer[SKIPPED_INPUTS_KEY] = json.dumps(sorted({_relative_input(s.source, path) for s in skipped}))
        stream.trailer[CORPUS_DOCUMENTS_KEY] = str(read[0])

    stream.batches = batches()
    return stream


def chunk_batches(
    documents: Iterable[Document],
    chunker: TokenChunker,
    batch_size: int,
    *,
    counts: dict[str, int] | None = None,
    progress: ProgressReporter = QUIET,
) -> Iterator[pa.RecordBatch]:
    """Chunks of ``documents`` in batches of at most ``batch_size`` rows, made as they are pulled.

    Batches stream across documents and within them: a huge document spans many batches and is tokenized window
    by window, so memory follows the batch size, not the document. ``counts`` (when given) gets ``documents``,
    ``chunks`` and ``tokens`` added as batches are yielded. A document of ``LARGE_DOCUMENT_CHARS`` or more logs
    its start, every tenth of it, and its end, and shows its own bar through ``progress`` (in a log, at most a line
    per interval), since an ingest's document count stands still through it for minutes; its chunks go in batches
    of at most ``LARGE_DOCUMENT_BATCH``, so that bar moves every few seconds. The bar moves when the
    consumer comes back for the next batch, having embedded and written this one (ingest and re-index do), so its
    chunks count as indexed and the characters read by then (at most a window ahead of them) give the ETA.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    counts = {} if counts is None else counts
    for key in ("documents", "chunks", "tokens"):
        counts.setdefault(key, 0)
    pending: list[Chunk] = []

    def flush() -> pa.RecordBatch:
        batch = chunks_to_batch(pending)
        counts["chunks"] += len(pending)
        counts["tokens"] += sum(c.token_count for c in pending)
        pending.clear()
        return batch

    for document in documents:
        with _LargeDocumentProgress(document, progress) as large:
            size = batch_size if large is None else min(batch_size, LARGE_DOCUMENT_BATCH)
            for chunk in chunker.iter_chunks(document, progress=large):
                pending.append(chunk)
                if len(pending) >= size:
                    if large is not None:
                        large.hand_on(pending)
                    yield flush()
                    if large is not None:
                        large.indexed()
        counts["documents"] += 1
    if pending:
        yield flush()


class _LargeDocumentProgress:
    """Progress through one large document: a bar of the characters read with the chunks indexed so far, tokens/s
    and the time left (through the caller's reporter), moved as batches come back from the consumer; and a log
    line at the first window the chunker reads, at every further tenth, and at the end."""

    def __init__(self, document: Document, reporter: ProgressReporter) -> None:
        self.doc_id = document.doc_id
        self.size = len(document.title) + len(document.text)
        self.reporter = reporter
        self.bar: ProgressBar | None = None
        self.next_log = 0.0  # fraction done at which the next log line is due
        self.started = time.perf_counter()
        self.read = 0  # characters the chunker has read, as it counts them (with a title it puts first)
        self.chunks = self.tokens = 0  # of this document, embedded and written
        self.handed: list[Chunk] = []  # of this document, in the batch the consumer is working on

    def __enter__(self) -> "_LargeDocumentProgress | None":
        if self.size < LARGE_DOCUMENT_CHARS:
            return None
        log.info("Chunking %s (%.1f M characters) window by window", self.doc_id, self.size / 1e6)
        return self

    def hand_on(self, batch: list[Chunk]) -> None:
        """Note this document's chunks in a batch about to be handed on (it may start with the previous one's)."""
        self.handed = [c for c in batch if c.doc_id == self.doc_id]

    def indexed(self) -> None:
        """The consumer is back for more: the batch handed on is embedded and written."""
        self.chunks += len(self.handed)
        self.tokens += sum(c.token_count for c in self.handed)
        self.handed = []
        if self.bar is not None:
            seconds = time.perf_counter() - self.started
            self.bar.note(f"{self.chunks} chunks indexed, {self.tokens / seconds if seconds else 0:.0f} tokens/s")
            self.bar.advance_to(self.read)

    def __call__(self, done: int, total: int) -> None:
        """Heard from the chunker after every window it reads; its total counts a title it puts first."""
        if self.bar is None:
            self.bar = self.reporter.bar(f"document {self.doc_id}", "characters", total=total, eta=True)
        self.read = done
        fraction = done / max(total, 1)
        if fraction >= self.next_log:
            log.info(
                "Chunking %s: %.1f of %.1f M characters read (%d %%)",
                self.doc_id,
                done / 1e6,
                total / 1e6,
                int(100 * fraction),
            )
            self.next_log = fraction + 0.1

    def __exit__(self, *exc_info: object) -> None:
        if self.bar is not None:
            self.bar.advance_to(self.read)  # all read; its last chunks are indexed with the next batch
            self.bar.close()
            if exc_info[0] is None:
                log.info("Chunked %s in %.1f s", self.doc_id, time.perf_counter() - self.started)


def chunk_stream(
    documents: ParquetTable, chunker: TokenChunker, previous: ParquetTable | None, *, batch_size: int
) -> BatchStream:
    """Chunks of every document; unchanged documents keep their previous chunks without re-tokenizing.

    Re-chunked documents stream through ``chunk_batches``: no batch holds more than ``batch_size`` chunks,
    however large a document is.
    """
    usable = previous is not None and previous.metadata.get(CHUNKING_KEY) == chunker.signature
    lookup = RowLookup(previous if usable else None, key="doc_hash")
    stream = BatchStream(schema=CHUNKS_SCHEMA.with_metadata({CHUNKING_KEY: chunker.signature}), batches=[])

    def batches() -> Iterator[pa.RecordBatch]:
        started, counts = time.perf_counter(), {"documents": 0, "chunks": 0, "tokens": 0, "rechunked_documents": 0}
        fresh_counts = {"documents": 0, "chunks": 0, "tokens": 0}
        for batch in documents.iter_batches(batch_size):
            docs = batch_to_documents(batch)
            reused = _previous_chunks(lookup, docs)
            reused_docs = set(reused.column("doc_id").to_pylist()) if reused.num_rows else set()
            counts["documents"] += len(docs)
            counts["rechunked_documents"] += len(docs) - len(reused_docs)
            if reused.num_rows:
                counts["chunks"] += reused.num_rows
                counts["tokens"] += int(pc.sum(reused.column("token_count")).as_py() or 0)
                yield from reused.select(CHUNKS_SCHEMA.names).cast(CHUNKS_SCHEMA).to_batches(max_chunksize=batch_size)
            del batch, reused  # the documents' Arrow copy is not needed while they are chunked
            fresh = (d for d in docs if d.doc_id not in reused_docs)
            yield from chunk_batches(fresh, chunker, batch_size, counts=fresh_counts)
        counts["chunks"] += fresh_counts["chunks"]
        counts["tokens"] += fresh_counts["tokens"]
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


def embedding_stream(
    chunks: ParquetTable, embedder: Embedder, previous: ParquetTable | None, *, batch_size: int
) -> BatchStream:
    """Vectors for every chunk; a chunk whose text was embedded before by the same model keeps its vector."""
    usable = previous is not None and previous.metadata.get(MODEL_KEY) == embedder.model_name
    lookup = RowLookup(previous if usable else None, key="text_hash")
    metadata = {
        MODEL_KEY: embedder.model_name,
        DIMENSION_KEY: str(embedder.dimension),
        CHUNKING_KEY: chunks.metadata.get(CHUNKING_KEY, ""),
    }
    stream = BatchStream(schema=embeddings_schema(embedder.dimension).with_metadata(metadata), batches=[])

    def batches() -> Iterator[pa.RecordBatch]:
        started, embed_seconds = time.perf_counter(), 0.0
        counts = {"chunks": 0, "embedded_chunks": 0, "reused_chunks": 0, "embedded_tokens": 0}
        total = chunks.num_rows
        # A Dagster run writes stderr to its compute log: whole lines there, not a bar redrawn in place.
        with ProgressReporter(enabled=total >= PROGRESS_MIN_ROWS).bar("embedding", "chunks", total) as progress:
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
                    new_tokens = batch.filter(pa.array(~known)).column("token_count")
                    counts["embedded_tokens"] += int(pc.sum(new_tokens).as_py())
                counts["chunks"] += batch.num_rows
                counts["reused_chunks"] += int(known.sum())
                counts["embedded_chunks"] += int((~known).sum())
                progress.advance(batch.num_rows)
                yield with_vectors(batch, vectors)
        stream.summary.update(counts)
        _rates(
            stream.summary,
            counts["embedded_chunks"],
            counts["embedded_tokens"],
            time.perf_counter() - started,
            "embedded_chunks",
        )
        stream.summary["model_seconds"] = round(embed_seconds, 3)

    stream.batches = batches()
    return stream
