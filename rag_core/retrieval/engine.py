"""Hybrid retrieval: dense (HNSW) + BM25 -> fusion -> top_k -> reranker -> rerank_top_k, timed per stage."""

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from rag_core.config import DEFAULT_HYBRID_ALPHA, RAGConfig
from rag_core.index.manager import LABEL_FIELDS, MilvusIndexManager
from rag_core.index.version import CollectionState
from rag_core.models.embedder import Embedder
from rag_core.models.rerank import Reranker, make_reranker
from rag_core.observability.latency import LatencyTracker
from rag_core.observability.query_log import QueryLog
from rag_core.retrieval.cache import QueryCache, normalise_query
from rag_core.retrieval.client_index import ClientIndex
from rag_core.retrieval.dense_mirror import METRICS as MIRRORED_METRICS
from rag_core.retrieval.dense_mirror import DenseMirror
from rag_core.retrieval.fusion import FusedHit, FusionMethod, LegHit, Normalization, ScoreMoments, fuse
from rag_core.retrieval.legs import Leg
from rag_core.retrieval.lexical import LexicalIndex
from rag_core.retrieval.signals import QualitySignals, query_signals
from rag_core.security.principals import AccessScope, check_whole_expression, readable_scope, restricted_filter
from rag_core.security.rbac import Identity
from rag_core.types import GROUPS_FIELD, TENANT_FIELD, Chunk, Hit

Mode = Literal["hybrid", "dense", "bm25"]
FILTER_MASKS_KEPT = 32  # filters whose client-side masks are kept, the oldest dropped first
log = logging.getLogger(__name__)


class IncompleteVersionError(LookupError):
    """The collection asked for by name is a version whose build never finished."""


@dataclass(frozen=True)
class RetrievedChunk(FusedHit):
    """A fused hit (its scores and ranks in each leg) with the chunk it stands for."""

    chunk_id: str
    doc_id: str
    source: str
    text: str
    position: int
    metadata: dict
    rerank_score: float | None = None


@dataclass(frozen=True)
class RetrievalResult:
    query: str
    results: list[RetrievedChunk]
    timings_ms: dict[str, float]
    collection: str
    lexical_backend: str
    cached: bool = False
    query_vector: np.ndarray | None = field(default=None, compare=False, repr=False)  # None: no dense leg
    data_version: int = 0
    query_id: str = ""  # its record in the query log ("" when the log is off)
    quality: QualitySignals | None = None  # None: no results to judge

    @property
    def scores(self) -> list[float]:
        """What ranked each result: the reranker's score where it ran, else the fused score."""
        return [c.rerank_score if c.rerank_score is not None else c.fused_score for c in self.results]

    @property
    def signals(self) -> dict[str, float]:
        """Label-free signals of how confident this ranking looks (the query log keeps them): ``quality``'s
        ``hallucination_risk``, ``faithfulness_score`` and components, flat. No results: risk 1, faithfulness 0."""
        scores, results = self.scores, self.results
        if not results or self.quality is None:
            return {"results": 0.0, "hallucination_risk": 1.0, "faithfulness_score": 0.0}
        both = sum(c.dense_rank is not None and c.lexical_rank is not None for c in results)
        return {
            "results": float(len(results)),
            "top_score": scores[0],
            "mean_score": sum(scores) / len(scores),
            "both_legs_share": both / len(results),
        } | self.quality.as_dict()


@dataclass(frozen=True)
class SearchOptions:
    """Everything that changes a result besides the query and the index: part of the cache key."""

    mode: Mode
    top_k: int
    rerank_top_k: int
    alpha: float | None  # None: the serving version's own (pipeline.hybrid_alpha: auto), resolved at search
    fusion: FusionMethod
    normalization: Normalization
    rrf_k: int
    candidates: int
    document_level: bool
    filter: str  # the caller's
    scope: AccessScope | None = None  # what the principal may read; None: everything

    @property
    def milvus_filter(self) -> str:
        """The caller's filter narrowed to the scope: what Milvus evaluates in its own searches."""
        return restricted_filter(self.filter, self.scope)

    @property
    def alpha_label(self) -> str:
        return "auto" if self.alpha is None else f"{self.alpha:g}"


@dataclass
class FilterMasks:
    """The chunks one filter passes at one data version, and each client-side leg's mask of them."""

    chunk_ids: frozenset[str]
    masks: dict[str, np.ndarray] = field(default_factory=dict)  # by level: "chunk", "document" or "dense"


def version_alpha(state: CollectionState) -> float:
    """The fusion weight chosen for the version at its promotion (``pipeline.hybrid_alpha: auto``), else the
    shipped default: a version promoted before ``auto`` was set has none."""
    return DEFAULT_HYBRID_ALPHA if state.hybrid_alpha is None else state.hybrid_alpha


def client_index_dir(config: RAGConfig, alias: str) -> Path:
    return Path(config.retrieval.bm25_dir) / alias


def build_client_index(
    manager: MilvusIndexManager, state: CollectionState, folder: Path, *, dense_metric: str | None = None
) -> ClientIndex:
    """Rebuild the client-side index from what Milvus holds, so the two cannot disagree. With ``dense_metric`` it
    keeps a copy of the vectors to search (read with their ids in one pass, so they cannot be misaligned)."""

    labelled = state.version is not None and state.version.labelled

    def chunk(row: dict) -> Chunk:
        labels = {"groups": tuple(row[GROUPS_FIELD]), "tenant": row[TENANT_FIELD]} if labelled else {}
        return Chunk(**{f: row[f] for f in ("chunk_id", "doc_id", "position", "text")}, **labels)

    def build() -> ClientIndex:
        fields = ["chunk_id", "doc_id", "position", "text", *(LABEL_FIELDS if labelled else [])]
        if dense_metric is None:
            rows = [chunk(row) for batch in manager.iter_rows(state.collection, fields) for row in batch]
            vectors: Iterable[np.ndarray] = manager.iter_vectors(state.collection)
        else:
            rows, vectors = [], []
            for batch in manager.iter_rows(state.collection, [*fields, "vector"]):
                rows.extend(chunk(row) for row in batch)
                vectors.append(np.asarray([row["vector"] for row in batch], dtype=np.float32))
        return ClientIndex.build(
            rows,
            vectors,
            collection=state.collection,
            data_version=state.data_version,
            k1=manager.index.bm25_k1,
            b=manager.index.bm25_b,
            dense_metric=dense_metric,
            labelled=labelled,
        )

    index = manager.consistent_export(state.collection, build)
    index.save(folder)
    return index


class RetrievalEngine:
    """Thread-safe: shared caches and trackers lock; Milvus and the models are safe to call concurrently."""

    def __init__(
        self,
        config: RAGConfig,
        *,
        embedder: Embedder,
        manager: MilvusIndexManager,
        reranker: Reranker | None = None,
        alias: str | None = None,
    ) -> None:
        self.config = config
        self.alias = alias or config.milvus.collection
        self.embedder = embedder
        self.manager = manager
        self.reranker = reranker or make_reranker(config.reranking)
        self.cache: QueryCache[RetrievalResult] = QueryCache(config.retrieval.cache_size, config.retrieval.cache_ttl_s)
        self.latency = LatencyTracker(
            config.retrieval.latency_window, config.pipeline.target_latency_ms, Path(config.retrieval.metrics_dir)
        )
        quality = config.quality
        self.query_log = (
            QueryLog(Path(quality.query_log_dir), keep_text=quality.log_query_text, flush_s=quality.query_log_flush_s)
            if quality.query_log
            else None
        )
        self._client_index: ClientIndex | None = None
        self._client_index_lock = threading.Lock()
        self._state: CollectionState | None = None
        self._state_checked_at = 0.0
        self._rebuild_client_index = False
        self._warmed_up = False
        self._loaded = False
        self._filter_passing: dict[tuple[str, int, str], FilterMasks] = {}  # per collection, data version, filter

    # --- which lexical path -------------------------------------------------------------------------------------

    @property
    def lexical_backend(self) -> str:
        """``auto``: BM25 inside Milvus on servers >= 2.5 (fast at any size); the client-side index on Milvus
        2.3/2.4 and on Milvus Lite, whose BM25 is measured ~80x slower than bm25s at 100k chunks and unstemmed."""
        choice = self.config.retrieval.lexical_backend
        version = self.serving_state().version
        collection_has_bm25 = version is not None and version.lexical == "milvus"
        if choice == "milvus":
            if not collection_has_bm25:
                raise ValueError(
                    f"retrieval.lexical_backend is 'milvus' but {self.alias!r} at {self.manager.uri} "
                    "has no BM25 function (Milvus < 2.5); use 'local' or 'auto'."
                )
            return "milvus"
        if choice == "auto" and collection_has_bm25 and not self.manager.capabilities.is_lite:
            return "milvus"
        return "local"

    @property
    def dense_mirror_metric(self) -> str | None:
        """The metric the client-side copy of the vectors is searched with, or None when Milvus searches.

        ``auto`` mirrors on Milvus Lite only: its search walks rows in Python, while a server's HNSW is fast and a
        copy of a large collection's vectors would cost every client its memory.
        """
        choice, metric = self.config.retrieval.dense_search, self.manager.index.metric_type
        if choice == "client" and metric not in MIRRORED_METRICS:
            raise ValueError(
                f"retrieval.dense_search is 'client' but index.metric_type is {metric!r}; the "
                f"client-side search reproduces {' and '.join(MIRRORED_METRICS)} only. Use 'auto' or "
                "'milvus'."
            )
        mirrored = choice == "client" or (
            choice == "auto" and self.manager.capabilities.is_lite and metric in MIRRORED_METRICS
        )
        return metric if mirrored else None

    def serving_state(self) -> CollectionState:
        """The collection behind the alias and its data version, re-read at most every ``bm25_refresh_s``: a sync
        or a promotion in any process is noticed within that interval."""
        now = time.monotonic()
        state = self._state
        if state is None or now - self._state_checked_at >= self.config.retrieval.bm25_refresh_s:
            state = self.manager.state(self.manager.serving(self.alias))
            if not state.complete:
                raise IncompleteVersionError(
                    f"{state.collection} is an incomplete version (an interrupted build): its answers would be "
                    "partial. Run the same ingest (or `rag reindex`) again to finish it, remove it with "
                    "`rag versions --drop-incomplete`, or query the alias instead."
                )
            self._state, self._state_checked_at = state, now
        return state

    def client_index(self) -> ClientIndex:
        """The client-side index for the serving collection at its data version; rebuilt from Milvus when stale."""
        state = self.serving_state()
        with self._client_index_lock:
            if self._client_index is not None and self._matches(self._client_index, state):
                return self._client_index
            folder = client_index_dir(self.config, self.alias)
            index = ClientIndex.load(folder) if ClientIndex.exists(folder) and not self._rebuild_client_index else None
            if index is None or not self._matches(index, state):
                log.info(
                    "Building the client-side index for %s (data version %d) from Milvus",
                    state.collection,
                    state.data_version,
                )
                index = build_client_index(self.manager, state, folder, dense_metric=self.dense_mirror_metric)
            self._client_index, self._rebuild_client_index = index, False
            return index

    def _matches(self, index: ClientIndex, state: CollectionState) -> bool:
        wanted = self.dense_mirror_metric
        labelled = state.version is not None and state.version.labelled
        return (
            (index.collection, index.data_version) == (state.collection, state.data_version)
            and index.params == (self.manager.index.bm25_k1, self.manager.index.bm25_b)
            and (index.dense.metric if index.dense is not None else None) == wanted
            and (index.labels is not None) == labelled
        )

    @property
    def _dense_scores_are_dot_products(self) -> bool:
        """The vector moments describe q.v: Milvus's IP, or COSINE over unit vectors; else the dense leg's scores
        are standardised within its candidates."""
        metric = self.manager.index.metric_type
        return metric == "IP" or (metric == "COSINE" and self.embedder.config.normalize)

    def invalidate(self) -> None:
        """After a write through this process: see it at the next query, not ``bm25_refresh_s`` later."""
        self.manager.forget_serving()
        self._state = None

    # --- search -------------------------------------------------------------------------------------------------

    def options(
        self,
        *,
        mode: Mode = "hybrid",
        top_k: int | None = None,
        rerank_top_k: int | None = None,
        alpha: float | None = None,
        fusion: FusionMethod | None = None,
        normalization: Normalization | None = None,
        candidates: int | None = None,
        document_level: bool | None = None,
        filter: str = "",
    ) -> SearchOptions:
        p, r = self.config.pipeline, self.config.retrieval
        top = top_k or p.top_k
        return SearchOptions(
            mode=mode,
            top_k=top,
            rerank_top_k=min(rerank_top_k or p.rerank_top_k, top),
            alpha=(None if p.hybrid_alpha == "auto" else p.hybrid_alpha) if alpha is None else alpha,
            fusion=fusion or r.fusion,
            rrf_k=r.rrf_k,
            normalization=normalization or r.normalization,
            candidates=max(candidates or r.candidates, top),
            document_level=r.document_level if document_level is None else document_level,
            filter=filter,
        )

    def search(self, query: str, *, principal: Identity | None = None, **overrides) -> RetrievalResult:  # noqa: ANN003 - see options()
        return self.search_many([query], self.options(**overrides), principal=principal)[0]

    def search_many(
        self, queries: Sequence[str], options: SearchOptions, *, principal: Identity | None = None
    ) -> list[RetrievalResult]:
        """Batched: one embedding call and one Milvus call per leg for all queries (evaluation, bulk use).

        ``principal``: only documents it may read, in every leg before it ranks (its readable filter joins the
        caller's, and so the cache key); None reads every document (evaluation, the gate, drift: the faces always
        give the caller's)."""
        if any(not q.strip() for q in queries):
            raise ValueError("Empty query: give the text to search for.")
        load_ms = self._load_once(options)
        started = time.perf_counter()
        state = self.serving_state()
        collection = state.collection
        if options.alpha is None:
            options = replace(options, alpha=version_alpha(state))
        if principal is not None:
            check_whole_expression(options.filter)
            labelled = state.version is not None and state.version.labelled
            options = replace(options, scope=readable_scope(principal, self.config.access, labelled=labelled))
        keys = [(normalise_query(q), options, collection, state.data_version) for q in queries]
        cached = [self.cache.get(k) for k in keys]
        todo = [i for i, c in enumerate(cached) if c is None]
        fresh = self._search_uncached([queries[i] for i in todo], options, state, started, load_ms) if todo else []
        for i, result in zip(todo, fresh):
            self.cache.put(keys[i], result)
            cached[i] = result
        computed = set(todo)
        hits = len(queries) - len(computed)
        if hits:
            # Cache hits are queries users waited for too: the SLA and percentiles count them.
            per_query = {"retrieval": _ms(started) / len(queries)}
            self.latency.record_many([per_query] * hits)
        results = [c if i in computed else replace(c, cached=True, timings_ms=per_query) for i, c in enumerate(cached)]
        return self._logged(keys, results, options) if self.query_log else results

    def _logged(
        self, keys: list[tuple], results: list[RetrievalResult], options: SearchOptions
    ) -> list[RetrievalResult]:
        """One query-log record per query, queued for the background writer; the results carry their ids."""
        settings = {k: str(v) for k, v in asdict(options).items()}
        return [
            replace(
                r,
                query_id=self.query_log.record(
                    normalised_query=key[0],
                    query=r.query,
                    query_vector=r.query_vector,
                    mode=options.mode,
                    settings=settings,
                    collection=r.collection,
                    data_version=r.data_version,
                    result_ids=[c.chunk_id for c in r.results],
                    result_scores=r.scores,
                    latency_ms=r.timings_ms,
                    cache_hit=r.cached,
                    signals=r.signals,
                ),
            )
            for key, r in zip(keys, results)
        ]

    def _load_once(self, options: SearchOptions) -> float | None:
        """Milliseconds spent, once per engine, loading the query encoder and opening Milvus (side by side): the
        ``load`` stage, outside the query's ``embed`` and ``retrieval`` times, so a process's first query is not
        reported as a slow one."""
        if self._loaded or options.mode == "bm25":  # BM25 encodes nothing: the first query that does, loads
            return None
        tick = time.perf_counter()
        self.embedder.preload()
        self.serving_state()
        self.embedder.load()
        self._loaded = True
        return _ms(tick)

    def _search_uncached(
        self, queries: list[str], options: SearchOptions, state: CollectionState, started: float, load_ms: float | None
    ) -> list[RetrievalResult]:
        collection = state.collection
        timings: dict[str, float] = {} if load_ms is None else {"load": load_ms}
        query_vectors: list[np.ndarray | None] = [None] * len(queries)
        dense: list[list[Hit]] = [[] for _ in queries]
        lexical: list[list[Hit]] = [[] for _ in queries]
        beyond: list[list[Hit]] = [[] for _ in queries]
        no_moments: list[ScoreMoments | None] = [None] * len(queries)
        dense_moments, lexical_moments = no_moments, no_moments
        corpus_dense, corpus_lexical = no_moments, no_moments  # each leg's corpus moments, for the quality signals
        texts: dict[str, Hit] = {}
        backend = self.lexical_backend if options.mode != "dense" else "none"
        # Corpus moments come from the client-side index; with Milvus BM25 both legs fall back to zscore.
        corpus = (
            options.mode == "hybrid"
            and options.fusion == "weighted"
            and options.normalization == "corpus"
            and backend == "local"
        )
        dense_leg: Leg[list[list[Hit]]] | None = None
        if options.mode != "bm25":
            tick = time.perf_counter()
            vectors = self.embedder.encode_queries(queries)
            query_vectors = list(vectors)
            timings["embed"] = _ms(tick)
            # Where BM25 reads the client-side index, Milvus's dense hits are held to the rows it was built from, in
            # every mode: rows of a sync still running (or killed) are not served until it records a data version.
            snapshot = self.dense_mirror_metric is not None or (
                self.config.retrieval.lexical_backend != "milvus" and self.lexical_backend == "local"
            )
            if self.dense_mirror_metric is not None:
                client = self.client_index()
                allowed = self._filter_mask(client, client.dense, options)
                dense_leg = Leg.now(client.dense.search, vectors, options.candidates, allowed)
            elif options.mode == "hybrid":  # Milvus searches while this thread ranks BM25
                dense_leg = Leg.in_background(self._dense_in_milvus, collection, vectors, options, snapshot)
            else:
                dense_leg = Leg.now(self._dense_in_milvus, collection, vectors, options, snapshot)
            tick = time.perf_counter()
            if backend == "local" and self._dense_scores_are_dot_products:
                corpus_dense = self.client_index().vectors.score_moments(vectors)
                dense_moments = corpus_dense if corpus else no_moments
            moments_ms = _ms(tick)
            timings["dense"] = 0.0  # known once the leg is in, below
        if options.mode != "dense":
            waited = 0.0

            def dense_candidates() -> list[list[Hit]]:
                nonlocal waited
                tick = time.perf_counter()
                hits = dense_leg.result()
                waited += _ms(tick)
                return hits

            tick = time.perf_counter()
            lexical, beyond, corpus_lexical = self._lexical_search(
                queries, options, backend, collection, texts, score_also=dense_candidates if corpus else None
            )
            lexical_moments = corpus_lexical if corpus else no_moments
            timings["sparse"] = _ms(tick) - waited  # the BM25 leg's own work, not its wait for the dense one
        if dense_leg is not None:
            dense = dense_leg.result()
            timings["dense"] = dense_leg.ms + moments_ms
        tick = time.perf_counter()
        fused = [
            _fuse_legs(d, lex, b, options, dm, lm)[: options.top_k]
            for d, lex, b, dm, lm in zip(dense, lexical, beyond, dense_moments, lexical_moments)
        ]
        timings["fusion"] = _ms(tick)
        tick = time.perf_counter()
        self._fill_missing_texts(collection, [chunk_id for ranking in fused for _, chunk_id in ranking], texts)
        if any(chunk_id not in texts for ranking in fused for _, chunk_id in ranking):
            self._refresh_after_vanished_rows()
        timings["fetch"] = _ms(tick)
        results = []
        rerank_ms = 0.0
        for query, ranking in zip(queries, fused):
            chunks = [self._chunk(texts[chunk_id], f) for f, chunk_id in ranking if chunk_id in texts]
            tick = time.perf_counter()
            chunks = self._rerank(query, chunks)[: options.rerank_top_k]
            rerank_ms += _ms(tick)
            results.append(chunks)
        timings["rerank"] = rerank_ms
        tick = time.perf_counter()
        quality = [
            self._quality(*legs, options)
            for legs in zip(queries, dense, lexical, corpus_dense, corpus_lexical, results)
        ]
        timings["signals"] = _ms(tick)
        total = _ms(started)
        share = {stage: value / len(queries) for stage, value in timings.items()} | {"retrieval": total / len(queries)}
        # The first search of a process loads the query encoder and the client-side index: a cold start, kept
        # apart so it never counts as query latency.
        cold, self._warmed_up = not self._warmed_up, True
        self.latency.record_many([share] * len(queries), cold=cold)
        return [
            RetrievalResult(
                query=q,
                results=r,
                timings_ms=share,
                collection=collection,
                lexical_backend=backend,
                query_vector=v,
                data_version=state.data_version,
                quality=s,
            )
            for q, r, v, s in zip(queries, results, query_vectors, quality)
        ]

    def _quality(
        self,
        query: str,
        dense: list[Hit],
        lexical: list[Hit],
        dense_moments: ScoreMoments | None,
        lexical_moments: ScoreMoments | None,
        results: list[RetrievedChunk],
        options: SearchOptions,
    ) -> QualitySignals | None:
        """The query's quality signals from its legs keyed as fusion saw them; None without results."""
        if not results:
            return None
        cosine = self._dense_scores_are_dot_products
        return query_signals(
            query,
            _per_leg(dense, options.document_level)[0],
            _per_leg(lexical, options.document_level)[0],
            dense_moments,
            lexical_moments,
            [c.text for c in results],
            [c.dense_score if cosine else None for c in results],
        )

    def _dense_in_milvus(
        self, collection: str, vectors: np.ndarray, options: SearchOptions, snapshot: bool
    ) -> list[list[Hit]]:
        found = self.manager.search(
            collection, vectors, limit=options.candidates, filter=options.milvus_filter, output_fields=["doc_id"]
        )  # texts only for the few results kept
        if not snapshot:
            return found
        index = self.client_index()
        return [[h for h in hits if index.holds(h.chunk_id)] for hits in found]

    def _lexical_search(
        self,
        queries: list[str],
        options: SearchOptions,
        backend: str,
        collection: str,
        texts: dict[str, Hit],
        score_also: Callable[[], list[list[Hit]]] | None,
    ) -> tuple[list[list[Hit]], list[list[Hit]], list[ScoreMoments | None]]:
        """The BM25 leg: per query its candidates and, client-side, the true scores of ``score_also()`` (the dense
        candidates, asked for once the first query is scored, so the dense leg can run meanwhile) outside them and
        its score moments. Client-side BM25 at document level scores whole documents."""
        if backend == "milvus":
            found = self.manager.search_bm25(
                collection, queries, limit=options.candidates, filter=options.milvus_filter
            )
            for hits in found:
                texts.update((h.chunk_id, h) for h in hits)
            return found, [[] for _ in found], [None] * len(found)
        client = self.client_index()
        index = client.documents if options.document_level else client.chunks

        def also() -> list[list[str]]:
            return [
                [h.doc_id if options.document_level else h.chunk_id for h in hits]
                for hits in (score_also() if score_also else ())
            ]

        allowed = self._filter_mask(client, index, options)
        rankings = index.rank(queries, options.candidates, also=also, allowed=allowed)
        return [r.hits for r in rankings], [r.beyond for r in rankings], [r.moments for r in rankings]

    def _filter_mask(
        self, client: ClientIndex, rows: LexicalIndex | DenseMirror, options: SearchOptions
    ) -> np.ndarray | None:
        """The client-side entries (BM25's, or the dense mirror's) the caller's filter and the principal's scope let
        through, masked before a leg takes its top: a filter applied after it would leave short or empty answers.
        Milvus evaluates the caller's expression (an invalid one fails here whatever the query's words); the scope
        is read from the rows' labels in process. Both once per filter, scope and data version. None: no mask."""
        if not options.filter and options.scope is None:
            return None
        key = (client.collection, client.data_version, options.filter, options.scope)
        with self._client_index_lock:
            passing = self._filter_passing.get(key)
        if passing is None:
            chunk_ids: frozenset[str] | None = None
            if options.filter:
                chunk_ids = frozenset(
                    row["chunk_id"]
                    for batch in self.manager.iter_rows(client.collection, ["chunk_id"], filter=options.filter)
                    for row in batch
                )
            if options.scope is not None:
                readable = (
                    client.labels.readable(options.scope, client.chunks.chunk_ids)
                    if client.labels is not None and not options.scope.empty
                    else frozenset()
                )
                chunk_ids = readable if chunk_ids is None else chunk_ids & readable
            passing = FilterMasks(chunk_ids)
            with self._client_index_lock:
                if len(self._filter_passing) >= FILTER_MASKS_KEPT:
                    self._filter_passing.pop(next(iter(self._filter_passing)))
                self._filter_passing[key] = passing
        level = rows.level if isinstance(rows, LexicalIndex) else "dense"
        if level not in passing.masks:
            passing.masks[level] = rows.rows_of_chunks(passing.chunk_ids)
        return passing.masks[level]

    def _refresh_after_vanished_rows(self) -> None:
        """A hit whose row is gone (deleted since the client-side index was built) is dropped from the results;
        the next query re-reads the data version and rebuilds the client-side index from Milvus."""
        log.info("Dropped hits whose rows are gone from %s; refreshing the client-side index", self.alias)
        self._state = None
        with self._client_index_lock:
            self._client_index = None
            self._rebuild_client_index = True

    def _fill_missing_texts(self, collection: str, chunk_ids: list[str], texts: dict[str, Hit]) -> None:
        """Text and metadata of the kept results, in one call: the legs fetch ids and scores only."""
        missing = sorted(set(chunk_ids) - texts.keys())
        if missing:
            for hit in self.manager.get_chunks(collection, missing):
                texts[hit.chunk_id] = hit

    @staticmethod
    def _chunk(hit: Hit, fused: FusedHit) -> RetrievedChunk:
        return RetrievedChunk(
            **vars(fused),
            chunk_id=hit.chunk_id,
            doc_id=hit.doc_id,
            source=hit.source,
            text=_own_text(hit),
            position=hit.position,
            metadata=hit.metadata,
        )

    def _rerank(self, query: str, chunks: list[RetrievedChunk]) -> list[RetrievedChunk]:
        scores = self.reranker.scores(query, [c.text for c in chunks])
        if scores is None:
            return chunks
        rescored = [replace(c, rerank_score=s) for c, s in zip(chunks, scores)]
        return sorted(rescored, key=lambda c: -c.rerank_score)


def _per_leg(hits: Sequence[Hit], document_level: bool) -> tuple[list[LegHit], dict[str, str]]:
    """A leg's ranking keyed for fusion (chunk ids, or document ids keeping each document's best chunk), and the
    chunk that stands for each key."""
    keyed: list[LegHit] = []
    chunk_of: dict[str, str] = {}
    for hit in hits:
        key = hit.doc_id if document_level else hit.chunk_id
        if key not in chunk_of:
            chunk_of[key] = hit.chunk_id
            keyed.append(LegHit(key, hit.score))
    return keyed, chunk_of


def _fuse_legs(
    dense: Sequence[Hit],
    lexical: Sequence[Hit],
    beyond: Sequence[Hit],
    options: SearchOptions,
    dense_moments: ScoreMoments | None,
    lexical_moments: ScoreMoments | None,
) -> list[tuple[FusedHit, str]]:
    """Fused ranking with the chunk to show for each entry. At document level each leg is first reduced to its
    best chunk per document, so a document found by dense through one chunk and by BM25 through another still
    gets both scores."""
    dense_keys, dense_chunk = _per_leg(dense, options.document_level)
    lexical_keys, lexical_chunk = _per_leg(lexical, options.document_level)
    fused = fuse(
        dense_keys,
        lexical_keys,
        method=options.fusion,
        alpha=options.alpha,
        rrf_k=options.rrf_k,
        normalization=options.normalization,
        dense_moments=dense_moments,
        lexical_moments=lexical_moments,
        lexical_beyond={h.key: h.score for h in _per_leg(beyond, options.document_level)[0]},
    )
    return [(f, dense_chunk.get(f.key) or lexical_chunk[f.key]) for f in fused]


def _own_text(hit: Hit) -> str:
    """The document's own text: the title the chunker put before a first chunk helps ranking, not reading."""
    title = hit.metadata.get("title", "")
    return hit.text.removeprefix(f"{title}\n\n") if title and hit.position == 0 else hit.text


def _ms(since: float) -> float:
    return (time.perf_counter() - since) * 1000
