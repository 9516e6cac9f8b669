"""The operations guide's Python API: ``AdvancedRAGPipeline`` with async ``retrieve`` and ``ingest_documents``.

With no arguments it reads ``config.yaml`` / ``.env`` / the environment and works on the embedded default
(Milvus Lite under ./data).
"""

import asyncio
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from rag_core.actions import perform
from rag_core.config import IndexConfig, MilvusConfig, PipelineConfig, RAGConfig, load_config
from rag_core.index import manager as index_manager
from rag_core.index.delete import DeleteReport, delete_from_index
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import API_SOURCE, IngestReport, ingest_documents, ingest_path, writable_rows
from rag_core.observability.latency import report as latency_report
from rag_core.quality.answers import score_answer
from rag_core.quality.drift import DriftReport, detect_drift
from rag_core.retrieval.engine import RetrievalEngine, RetrievalResult, RetrievedChunk
from rag_core.retrieval.faithfulness import FaithfulnessResult
from rag_core.retrieval.signals import QualitySignals
from rag_core.security.pii import install_log_redaction
from rag_core.security.rbac import acting_principal
from rag_core.types import Document

SAVE_INTERVAL_S = 1.0
R = TypeVar("R")


@dataclass(frozen=True)
class QueryMetrics:
    """What one query cost and how confident its ranking looks; docs/quality.md defines the quality signals."""

    latency_ms: dict[str, float]
    total_latency_ms: float
    sla_met: bool
    results: int
    top_score: float | None
    mean_score: float | None
    both_legs_share: float  # fraction of results found by dense and BM25 alike: low means the legs disagree
    cached: bool
    collection: str
    query_id: str  # its record in the query log ("" when quality.query_log is off)
    hallucination_risk: float  # in [0, 1]: estimated chance that no relevant context is in the top 5 (1: no results)
    faithfulness_score: float  # in [0, 1]: how well the top contexts support the query as a claim (0: no results)
    context_relevance: float | None  # best cosine of the query to a top context (None: no dense leg or results)
    coverage: float  # share of the query's content terms found in the top contexts
    leg_agreement: float | None  # overlap of the dense and BM25 top 10 (None: one leg only)
    quality: QualitySignals | None  # every feature behind the signals (None: no results)


class MilvusIndexManager(index_manager.MilvusIndexManager):
    """The guide's ``MilvusIndexManager()``: given no config, it reads ``config.yaml`` / ``.env`` / the environment,
    as ``AdvancedRAGPipeline()`` does. The engine's own manager (``rag_core.index.manager``) takes its config
    sections from its caller and never reads a file behind its back."""

    def __init__(
        self,
        config: MilvusConfig | None = None,
        index: IndexConfig | None = None,
        *,
        config_file: str | Path | None = None,
        uri: str | None = None,
        enable_sharding: bool | None = None,
        num_shards: int | None = None,
    ) -> None:
        if config is None:
            loaded = load_config(config_file)
            config, index = loaded.milvus, index or loaded.index
        super().__init__(config, index, uri=uri, enable_sharding=enable_sharding, num_shards=num_shards)


def result_depth(pipeline: PipelineConfig, results: int | None) -> dict[str, int]:
    """The engine's ``top_k`` and ``rerank_top_k`` for a caller asking for ``results`` results (default
    ``pipeline.rerank_top_k``): on every face top_k means results returned, never fewer candidates than
    ``pipeline.top_k`` fused and reranked."""
    wanted = results or pipeline.rerank_top_k
    return {"top_k": max(wanted, pipeline.top_k), "rerank_top_k": wanted}


def as_document(item: Document | dict[str, Any], position: int) -> Document:
    if isinstance(item, Document):
        return item
    if not isinstance(item, dict):
        raise TypeError(f"Item {position} is a {type(item).__name__}; give Documents, dicts or file paths.")
    for field in ("id", "text"):
        if not str(item.get(field, "")).strip():
            raise ValueError(
                f"Item {position} has no {field!r}; each dict needs 'id' and 'text' (optional: 'title', 'metadata', "
                "'groups', 'tenant')."
            )
    return Document(
        doc_id=str(item["id"]),
        text=str(item["text"]),
        title=str(item.get("title", "")),
        metadata=dict(item.get("metadata") or {}),
        groups=item.get("groups") or (),  # checked, with the document named, as it is ingested
        tenant=item.get("tenant") or "",
    )


class AdvancedRAGPipeline:
    """The guide's pipeline. Each method is an action (``rag_core.actions.perform``): the caller is authorized
    (``token``, else ``$RAG_API_TOKEN``; anyone in local single-user mode) and what it did is audited, as from the
    ``rag`` command. ``context`` shares one model and connection with other faces of the same process."""

    def __init__(
        self,
        config: RAGConfig | str | Path | None = None,
        *,
        collection: str | None = None,
        token: str | None = None,
        context: RagContext | None = None,
    ) -> None:
        install_log_redaction()  # the guide's entry point: what the engine logs from here on is redacted
        if context is None:
            context = RagContext(config if isinstance(config, RAGConfig) else load_config(config))
        self.context = context
        self.settings = context.config
        self.collection = context.alias(collection)
        self.token = token
        self._saved_at = 0.0

    @property
    def config(self) -> PipelineConfig:
        """``hybrid_alpha``, ``top_k``, ``rerank_top_k``, ``target_latency_ms``; assignments apply to the next query."""
        return self.settings.pipeline

    @property
    def engine(self) -> RetrievalEngine:
        return self.context.engine(self.collection)

    async def retrieve(
        self, query: str, *, top_k: int | None = None, filter: str = "", mode: str = "hybrid"
    ) -> tuple[list[RetrievedChunk], QueryMetrics]:
        """The ``top_k`` best results (default ``pipeline.rerank_top_k``) and what the query cost."""
        result = await asyncio.to_thread(self._audited_search, query, top_k=top_k, filter=filter, mode=mode)
        self._save_latency()
        signals, total = result.signals, result.timings_ms["retrieval"]
        metrics = QueryMetrics(
            latency_ms=result.timings_ms,
            total_latency_ms=total,
            sla_met=total <= self.config.target_latency_ms,
            results=len(result.results),
            top_score=signals.get("top_score"),
            mean_score=signals.get("mean_score"),
            both_legs_share=signals.get("both_legs_share", 0.0),
            cached=result.cached,
            collection=result.collection,
            query_id=result.query_id,
            hallucination_risk=signals["hallucination_risk"],
            faithfulness_score=signals["faithfulness_score"],
            context_relevance=signals.get("context_relevance"),
            coverage=signals.get("coverage", 0.0),
            leg_agreement=signals.get("leg_agreement"),
            quality=result.quality,
        )
        return result.results, metrics

    async def score_answer(self, answer: str, results: Sequence[RetrievedChunk]) -> FaithfulnessResult:
        """How well ``results`` (what ``retrieve`` returned) support a generated answer, sentence by sentence."""
        return await asyncio.to_thread(score_answer, self.engine, answer, results)

    def _audited_search(self, query: str, *, top_k: int | None, filter: str, mode: str) -> RetrievalResult:
        """The search and its audit record (a committed write) together, off the caller's event loop."""
        depth = result_depth(self.config, top_k)
        return self._perform(
            "query",
            lambda: self.engine.search(query, **depth, filter=filter, mode=mode, principal=acting_principal()),
            mode=mode,
        )

    def _perform(self, action: str, work: Callable[[], R], **request: Any) -> R:
        return perform(self.context, action, work, token=self.token, **request)

    async def ingest_documents(
        self,
        batch: Iterable[Document | dict[str, Any] | str | Path],
        *,
        source: str = API_SOURCE,
        prune: bool = False,
        groups: Sequence[str] | None = None,
        tenant: str | None = None,
    ) -> IngestReport:
        """A batch of ``Document``s, of dicts (``id``, ``text``, optional ``title``/``metadata``/``groups``/
        ``tenant``), or of file paths.

        Documents belong to ``source`` (files: to their folder's source); ``prune=True`` deletes the source's
        documents missing from the batch. Other sources, such as the Dagster corpus folder, are never touched.
        ``groups`` and ``tenant`` say who may read the documents that do not say so themselves (docs/access.md).
        """
        items = list(batch)
        paths = [Path(i) for i in items if isinstance(i, (str, Path))]
        if paths and len(paths) != len(items):
            raise TypeError("Give one kind per batch: documents/dicts, or file paths.")
        if paths and prune:
            raise ValueError(
                "prune=True needs documents or dicts: with file paths it would cut each file's "
                "folder down to that file. Use `rag ingest FOLDER --prune` for a folder."
            )
        documents = [] if paths else [as_document(item, i) for i, item in enumerate(items)]

        def ingest() -> IngestReport:
            if paths:
                return _merge(
                    [
                        ingest_path(
                            p,
                            self.context,
                            collection=self.collection,
                            groups=groups,
                            tenant=tenant,
                            writer=acting_principal(),
                        )
                        for p in paths
                    ]
                )
            return ingest_documents(
                documents,
                self.context,
                source=source,
                prune=prune,
                collection=self.collection,
                groups=groups,
                tenant=tenant,
                writer=acting_principal(),
            )

        named = ", ".join(str(p) for p in paths) if paths else source
        report = await asyncio.to_thread(self._perform, "ingest", ingest, source=named)
        self.context.invalidate()
        return report

    async def delete_documents(self, doc_ids: Iterable[str] = (), *, source: str | None = None) -> DeleteReport:
        """Remove documents by id (within ``source`` when given), or everything ``source`` owns."""
        ids = list(doc_ids)
        manager = self.context.manager
        report = await asyncio.to_thread(
            self._perform,
            "delete",
            lambda: delete_from_index(
                manager,
                self.collection,
                doc_ids=ids or None,
                source=source,
                within=writable_rows(self.context, self.collection, acting_principal()),
            ),
            doc_ids=ids,
            source=source,
        )
        self.context.invalidate()
        return report

    async def detect_drift(self, sample_queries: Iterable[str] | None = None) -> DriftReport:
        """Compare ``sample_queries`` (default: the queries logged since the snapshot), the probe queries' results,
        the stored vectors and the model with the snapshot taken when the serving version was promoted."""
        sample = None if sample_queries is None else list(sample_queries)
        return await asyncio.to_thread(
            self._perform,
            "drift",
            lambda: detect_drift(self.settings, sample, engine=self.engine, alias=self.collection),
        )

    def get_performance_report(self) -> dict[str, Any]:
        report = latency_report(self.engine.latency)
        report["cache"] = self.engine.cache.stats
        return report

    def _save_latency(self) -> None:
        if time.monotonic() - self._saved_at >= SAVE_INTERVAL_S:
            self.engine.latency.save()
            self._saved_at = time.monotonic()


def _merge(reports: list[IngestReport]) -> IngestReport:
    last = reports[-1]
    return IngestReport(
        documents=sum(r.documents for r in reports),
        chunks=sum(r.chunks for r in reports),
        skipped=[s for r in reports for s in r.skipped],
        sync=last.sync,
        seconds=round(sum(r.seconds for r in reports), 3),
    )
