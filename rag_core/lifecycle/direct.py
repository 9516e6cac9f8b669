"""Ingestion straight into Milvus, without Dagster: the ``rag ingest`` command and the Python API.

Each call syncs one source: a folder (named by its canonical path; a file belongs to its folder's source) or
an API caller (``source=``). It adds or replaces the documents it is given, and with ``prune`` also deletes the
source's documents that are gone; other sources are never touched. Chunks already in Milvus are not embedded
again.
"""

import os
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from rag_core.config import RAGConfig
from rag_core.index.sync import SyncReport, sync_index
from rag_core.ingest.chunking import TokenChunker
from rag_core.ingest.stages import chunk_batches, document_stream, skipped_documents
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.promotion import promoter
from rag_core.models.embedder import Embedder
from rag_core.observability.progress import QUIET, ProgressReporter
from rag_core.security.labels import AccessLabels, LabelError, labelled
from rag_core.security.principals import bound_tenant, writable_filter
from rag_core.security.rbac import Identity
from rag_core.tables import batch_to_documents, with_vectors
from rag_core.types import API_SOURCE, Document


@dataclass(frozen=True)
class IngestReport:
    documents: int
    chunks: int
    skipped: list[str]
    sync: SyncReport
    seconds: float


def folder_source(path: Path) -> str:
    """The source a path belongs to: a folder's canonical path; for a file, its folder's. ``realpath`` leaves a
    link loop unresolved where ``Path.resolve`` raises."""
    resolved = Path(os.path.realpath(path))
    return str(resolved if resolved.is_dir() else resolved.parent)


def ingest_path(
    path: Path,
    context: RagContext,
    *,
    collection: str | None = None,
    prune: bool = False,
    groups: Sequence[str] | None = None,
    tenant: str | None = None,
    writer: Identity | None = None,
    progress: ProgressReporter = QUIET,
) -> IngestReport:
    """Every readable document under ``path``; bad files are reported in ``skipped`` and left out. ``groups`` and
    ``tenant`` label its documents that have no sidecar of their own (``rag_core.security.labels``); ``writer``: see
    ``ingest_documents``.

    With ``prune`` the documents under ``path`` become everything its source holds: for a file, every other
    document of its folder's source is deleted (what evaluation wants for a corpus file; ``rag ingest`` refuses it).
    """
    config = context.config
    source = folder_source(path)
    stream = document_stream(
        path,
        max_file_bytes=config.ingestion.max_file_bytes,
        batch_size=config.ingestion.record_batch_size,
        source=source,
        access=config.access,
        labels=source_labels(config, groups, tenant),
        writer_tenant=bound_tenant(writer),
    )
    documents = (d for batch in stream.batches for d in batch_to_documents(batch))
    report = ingest_documents(
        documents,
        context,
        source=source,
        prune=prune,
        collection=collection,
        keep=skipped_documents(lambda: stream.trailer),
        writer=writer,
        progress=progress,
    )
    return replace(report, skipped=stream.summary.get("skipped", []))


def ingest_documents(
    documents: Iterable[Document],
    context: RagContext,
    *,
    source: str = API_SOURCE,
    prune: bool = False,
    collection: str | None = None,
    keep: Callable[[str], bool] | None = None,
    groups: Sequence[str] | None = None,
    tenant: str | None = None,
    writer: Identity | None = None,
    progress: ProgressReporter = QUIET,
) -> IngestReport:
    """Add or replace ``documents`` as the source ``source`` (with ``prune``: exactly the source's documents).
    ``groups`` and ``tenant`` label the documents that carry none of their own; a document whose own labels are
    refused is reported in ``skipped`` and left as it was (``rag_core.security.labels``). ``writer``: the principal
    writing; one bound to a tenant writes only into it and never touches another tenant's rows of the source.

    ``progress`` counts documents as they are taken to be chunked and embedded; their number is not known before
    the stream is read, so it shows a count and a rate, not a percentage. A large document also shows its own
    progress (``chunk_batches``)."""
    started = time.perf_counter()
    config, embedder, manager = context.config, context.embedder, context.manager
    chunker = TokenChunker.configured(config.chunking, embedder)
    counts = {"documents": 0, "chunks": 0}
    version = manager.version_for(embedder.model_name, embedder.dimension, chunker.signature)
    alias = context.alias(collection)
    labels, writes_into = source_labels(config, groups, tenant), bound_tenant(writer)
    refused: list[str] = []

    def owned() -> Iterator[Document]:
        for document in bar.iterate(documents):
            try:
                yield replace(labelled(document, labels, config.access, tenant=writes_into), source=source)
            except LabelError as error:
                refused.append(str(error))
                keep_refused.add(document.doc_id)

    keep_refused: set[str] = set()
    kept = keep or (lambda doc_id: False)
    with progress.bar("ingest", "documents") as bar:
        report = sync_index(
            manager,
            alias,
            version,
            chunk_batches(owned(), chunker, config.ingestion.record_batch_size, counts=counts, progress=progress),
            source=source,
            prune=prune,
            vectorize=vectorizer(embedder),
            keep=lambda doc_id: doc_id in keep_refused or kept(doc_id),
            promote=promoter(context, alias),
            tenant=writes_into,
        )
    return IngestReport(
        documents=counts["documents"],
        chunks=counts["chunks"],
        skipped=refused,
        sync=report,
        seconds=round(time.perf_counter() - started, 3),
    )


def writable_rows(context: RagContext, alias: str, writer: Identity | None) -> str:
    """The rows ``writer`` may delete, as a filter ("": every row): a principal bound to one tenant, its tenant's."""
    serving = context.manager.resolve(alias)
    labelled = serving is not None and context.manager.labelled(serving)
    return writable_filter(writer, context.config.access, labelled=labelled)


def source_labels(config: RAGConfig, groups: Sequence[str] | None, tenant: str | None) -> AccessLabels:
    """The labels given for a whole source (``rag ingest --groups --tenant``), refused when not plain or known."""
    return AccessLabels.checked(groups, tenant, config.access, where="the source's --groups/--tenant")


def vectorizer(embedder: Embedder):  # noqa: ANN201 - rag_core.index.sync.Vectorize
    return lambda batch: with_vectors(batch, embedder.encode_documents(batch.column("text").to_pylist()))
