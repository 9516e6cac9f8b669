"""A full rebuild of an alias into a new version, from what the version it serves holds, in two steps.

``build_candidate`` rejoins every source's documents from their chunks in Milvus (so nothing outside Milvus is
needed: not the original files, not an API caller's batches), chunks and embeds them with the current settings into
``alias__vN+1`` and marks it complete, without moving the alias. ``reindex`` then gates the move on the candidate's
quality (``rag_core.quality.gate``) when asked to, and promotes it, keeping ``index.keep_versions`` versions
(``rag_core.index.retention``). An interrupted build is continued by the next ``rag reindex``; a candidate the gate
refused stays complete and unserved for inspection (``rag versions``).
"""

import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rag_core.index.manager import MilvusIndexManager
from rag_core.index.retention import Promotion
from rag_core.index.sync import SyncReport, complete_version, legacy_source, sync_into
from rag_core.ingest.chunking import TokenChunker
from rag_core.ingest.stages import chunk_batches
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import vectorizer
from rag_core.lifecycle.promotion import promote_candidate
from rag_core.observability.progress import QUIET, ProgressReporter
from rag_core.quality.gate import GateFailedError, GateResult, evaluate_gate
from rag_core.retrieval.client_index import documents_from_chunks
from rag_core.security.labels import AccessLabels, labelled
from rag_core.types import GROUPS_FIELD, TENANT_FIELD, Chunk, Document


@dataclass(frozen=True)
class ReindexReport:
    build: SyncReport  # the candidate as built
    gate: GateResult | None  # None: promoted without a gate
    promotion: Promotion

    @property
    def collection(self) -> str:
        return self.build.collection

    @property
    def rows(self) -> int:
        return self.build.rows


def build_candidate(
    context: RagContext,
    *,
    collection: str | None = None,
    progress: ProgressReporter = QUIET,
) -> SyncReport:
    """Build ``alias__vN+1`` from the whole corpus and mark it complete; the alias keeps serving what it served.

    ``progress`` counts the documents rebuilt, out of a total known once the serving version's rows are read."""
    started = time.perf_counter()
    config, embedder, manager = context.config, context.embedder, context.manager
    alias = context.alias(collection)
    current = manager.resolve(alias)
    if current is None:
        raise LookupError(f"No index {alias!r} at {manager.uri} to rebuild; ingest documents first (rag ingest).")
    chunker = TokenChunker.configured(config.chunking, embedder)
    version = manager.version_for(embedder.model_name, embedder.dimension, chunker.signature)
    target = manager.resumable_version(alias, version) or manager.create_version(alias, version)
    with progress.bar("reindex", "documents") as bar:
        # Rows of a version from before access labels get the defaults, as they were read until now.
        documents = (
            labelled(document, AccessLabels(), config.access)
            for document in bar.iterate(stored_documents(manager, current, on_total=bar.set_total))
        )
        changes = sync_into(
            manager,
            target,
            chunk_batches(documents, chunker, config.ingestion.record_batch_size, progress=progress),
            vectorizer(embedder),
        )
    complete_version(manager, alias, target, changes.wanted)
    return SyncReport(
        alias=alias,
        collection=target,
        index_version=version.fingerprint,
        new_version=True,
        upserted=changes.upserted,
        deleted=changes.deleted,
        unchanged=len(changes.wanted) - changes.upserted,
        rows=manager.count(target),
        data_version=manager.state(target).data_version,
        seconds=round(time.perf_counter() - started, 3),
    )


@dataclass(frozen=True)
class SettingsCheck:
    """The serving version's index fingerprint against the one the configured model, chunking and index
    parameters would build now: when they differ, only a full re-index serves the new settings."""

    serving: str
    serving_fingerprint: str
    configured_fingerprint: str

    @property
    def changed(self) -> bool:
        return self.serving_fingerprint != self.configured_fingerprint


def check_settings(context: RagContext, *, alias: str | None = None) -> SettingsCheck:
    embedder, manager = context.embedder, context.manager
    alias = context.alias(alias)
    serving = manager.resolve(alias)
    if serving is None:
        raise LookupError(f"No index {alias!r} at {manager.uri}; ingest documents first (rag ingest).")
    version = manager.state(serving).version
    chunking = TokenChunker.configured(context.config.chunking, embedder).signature
    configured = manager.version_for(embedder.model_name, embedder.dimension, chunking)
    return SettingsCheck(
        serving=serving,
        serving_fingerprint=version.fingerprint if version else "",
        configured_fingerprint=configured.fingerprint,
    )


def pending_candidate(manager: MilvusIndexManager, alias: str) -> str:
    """The newest version when it is complete and not serving: what ``build_candidate`` left for the gate."""
    versions, serving = manager.versions(alias), manager.resolve(alias)
    if not versions or versions[-1] == serving or not manager.state(versions[-1]).complete:
        raise LookupError(
            f"{alias!r} at {manager.uri} has no complete candidate version newer than the one it "
            f"serves ({serving}); build one first (the reindex_candidate asset, or rag reindex)."
        )
    return versions[-1]


def reindex(
    context: RagContext, *, collection: str | None = None, gate: bool = False, progress: ProgressReporter = QUIET
) -> ReindexReport:
    """Build a candidate, gate it when ``gate`` (``GateFailedError`` leaves the alias where it was), promote it."""
    alias = context.alias(collection)
    build = build_candidate(context, collection=alias, progress=progress)
    result = gate_candidate(context, build.collection, alias=alias) if gate else None
    if result is not None and not result.passed:
        raise GateFailedError(result)
    return ReindexReport(build=build, gate=result, promotion=promote_candidate(context, build.collection, alias=alias))


def gate_candidate(context: RagContext, candidate: str, *, alias: str | None = None) -> GateResult:
    """``evaluate_gate`` with the context's model and connection."""
    return evaluate_gate(
        context.config, candidate, alias=context.alias(alias), embedder=context.embedder, manager=context.manager
    )


def stored_documents(
    manager: MilvusIndexManager, collection: str, on_total: Callable[[int], None] | None = None
) -> Iterator[Document]:
    """Every document in ``collection``, its text rejoined from its chunks, with its source and title.

    Chunks come back in primary-key order, not by document, so the rows' text is held until all are read; then
    ``on_total`` (when given) hears how many documents will follow.
    """
    by_source: dict[str, list[Chunk]] = defaultdict(list)
    titles: dict[tuple[str, str], str] = {}
    labels: dict[tuple[str, str], tuple[tuple[str, ...], str]] = {}
    version = manager.state(collection).version
    fields = manager.row_fields(collection)
    if not (version and version.schema >= 2):
        fields.remove("source")
    for batch in manager.iter_rows(collection, fields):
        for row in batch:
            source = row["source"] if "source" in row else legacy_source(row["doc_id"], row.get("metadata") or {})
            by_source[source].append(
                Chunk(
                    chunk_id=row["chunk_id"],
                    doc_id=row["doc_id"],
                    position=row["position"],
                    text=row["text"],
                    source=source,
                )
            )
            titles[(source, row["doc_id"])] = (row.get("metadata") or {}).get("title", "")
            labels[(source, row["doc_id"])] = (tuple(row.get(GROUPS_FIELD) or ()), row.get(TENANT_FIELD) or "")
    if on_total is not None:
        on_total(len(titles))
    for source, chunks in by_source.items():
        for _, doc_id, text in zip(*documents_from_chunks(chunks)):
            groups, tenant = labels[(source, doc_id)]
            yield Document(
                doc_id=doc_id, text=text, title=titles[(source, doc_id)], source=source, groups=groups, tenant=tenant
            )
