"""The reference drift is measured against: what an alias's serving version looked like when it was promoted.

A snapshot holds probe queries with their top-10 document ids and scores, reference query embeddings, the stored
vectors' moments and the embeddings of a fixed canary text set. It is one ``.npz`` file per version
(``<collection>.npz``, e.g. ``semantic_index__v3.npz``) under ``quality.drift_dir``, written under a temporary name
and renamed, so a reader never sees half of one. Per version, because drift compares with the version serving now:
after ``rag rollback`` that is the older version's own reference, never the newer one's it replaced.
"""

import datetime
import json
import logging
import os
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.models.embedder import Embedder
from rag_core.quality.drift_queries import logged_queries, sample, title_queries
from rag_core.quality.probes import ProbeSet, probe_ndcg, stored_probe_set
from rag_core.retrieval.engine import RetrievalEngine
from rag_core.retrieval.moments import VectorMoments

log = logging.getLogger(__name__)
PROBE_QUERIES = 200  # probes re-run at every check
REFERENCE_QUERIES = 1000  # newest logged query embeddings kept as the query-drift reference
MIN_SAMPLE = 20  # fewer queries than this make a classifier's AUC noise
PROBE_DEPTH = 10
HOW_TO_SNAPSHOT = "take one with `rag drift --snapshot [--queries FILE]` (or promote a version: `rag reindex`)"
# Fixed, varied texts: their embeddings only change when the model does.
CANARY_TEXTS = (
    "The mitochondria is the powerhouse of the cell.",
    "Interest rates rose by a quarter point after the central bank meeting.",
    "Preheat the oven to 200 degrees and bake the bread for forty minutes.",
    "The defendant pleaded not guilty to all charges.",
    "Milvus stores vectors in collections and searches them with an HNSW index.",
    "A striker scored twice in the second half to win the match.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "Reset your password from the account settings page.",
    "The treaty was signed in 1648 and ended thirty years of war.",
    "Vaccination reduced hospital admissions among older adults.",
    "def add(a, b): return a + b",
    "Gradient descent updates the weights against the gradient of the loss.",
    "The train to the airport leaves every fifteen minutes.",
    "Quarterly revenue grew 12% while operating costs stayed flat.",
    "Shakespeare wrote sonnets as well as plays.",
    "Low-dose aspirin is associated with a lower risk of heart attack.",
)


class NoSnapshotError(LookupError):
    """No reference snapshot for the alias yet: drift has nothing to compare with."""


class CorruptSnapshotError(ValueError):
    """The snapshot file exists but cannot be read."""


@dataclass(frozen=True)
class DriftSnapshot:
    alias: str
    collection: str  # the version serving when it was taken
    data_version: int
    taken_at: str  # ISO 8601, UTC
    model: str
    probe_source: str  # "given", "query log" or "corpus titles"
    probe_queries: list[str]
    probe_ids: list[list[str]]  # top-10 document ids per probe query
    probe_scores: list[list[float]]
    reference_source: str  # where reference_vectors came from: "given queries", "query log" or "probe queries (...)"
    reference_vectors: np.ndarray  # (n, dim)
    corpus: VectorMoments
    canary_vectors: np.ndarray  # (len(CANARY_TEXTS), dim)
    # The version's probe set (rag_core.quality.probes) as scored when the snapshot was taken: each probe's
    # nDCG@10 by its key; empty when the version had none (a corpus too small, or probe sets off).
    probe_set_ndcg: dict[str, float] = field(default_factory=dict)

    @property
    def taken(self) -> datetime.datetime:
        return datetime.datetime.fromisoformat(self.taken_at)

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            k: getattr(self, k)
            for k in (
                "alias",
                "collection",
                "data_version",
                "taken_at",
                "model",
                "probe_source",
                "probe_queries",
                "probe_ids",
                "probe_scores",
                "reference_source",
                "probe_set_ndcg",
            )
        } | {"corpus_count": self.corpus.count}
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        with temporary.open("wb") as file:
            np.savez(
                file,
                meta=np.array(json.dumps(meta)),
                reference_vectors=self.reference_vectors,
                corpus_mean=self.corpus.mean,
                corpus_covariance=self.corpus.covariance,
                canary_vectors=self.canary_vectors,
            )
        os.replace(temporary, path)

    @classmethod
    def load(cls, path: Path) -> "DriftSnapshot":
        if not path.is_file():
            raise NoSnapshotError(f"No drift snapshot at {path}: {HOW_TO_SNAPSHOT}.")
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                corpus = VectorMoments(
                    mean=data["corpus_mean"], covariance=data["corpus_covariance"], count=int(meta.pop("corpus_count"))
                )
                return cls(
                    **meta,
                    corpus=corpus,
                    reference_vectors=data["reference_vectors"],
                    canary_vectors=data["canary_vectors"],
                )
        except (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile) as error:
            raise CorruptSnapshotError(
                f"The drift snapshot {path} cannot be read ({type(error).__name__}: {error}); "
                f"delete it and {HOW_TO_SNAPSHOT}."
            ) from None


@dataclass(frozen=True)
class ProbeResults:
    ids: list[list[str]]
    scores: list[list[float]]


def snapshot_path(config: RAGConfig, collection: str) -> Path:
    """Where the snapshot of one version (a collection behind an alias) is kept."""
    return Path(config.quality.drift_dir) / f"{collection}.npz"


def serving_snapshot(config: RAGConfig, engine: RetrievalEngine) -> DriftSnapshot:
    """The snapshot of the version ``engine``'s alias serves now. When that version has none (taken before
    snapshots were kept per version, or lost), say so: another version's would report their difference as drift."""
    collection = engine.serving_state().collection
    path = snapshot_path(config, collection)
    if not path.is_file():
        raise NoSnapshotError(
            f"No drift snapshot of {collection}, the version {engine.alias!r} serves (looked for "
            f"{path}); drift compares only with the serving version's own snapshot: "
            f"{HOW_TO_SNAPSHOT}."
        )
    return DriftSnapshot.load(path)


def erase_from_snapshot(path: Path, doc_id: str, probe_texts: set[str]) -> bool:
    """Drop what the snapshot at ``path`` holds of an erased document; returns whether it held anything.

    That is the probe queries made from its rows (``probe_texts``: titles and first words, see ``probe_text``),
    with their reference embeddings where those are the probes', and its id (and score) in every probe's top list.
    The corpus moments stay: one mean and covariance over every vector, not any chunk's. A snapshot left with no
    probe query is deleted, so drift asks for a new one instead of comparing nothing.
    """
    if not path.is_file():
        return False
    snapshot = DriftSnapshot.load(path)
    kept = [i for i, query in enumerate(snapshot.probe_queries) if query not in probe_texts]
    named = any(doc_id in ids for ids in snapshot.probe_ids)
    if len(kept) == len(snapshot.probe_queries) and not named:
        return False
    if not kept:
        path.unlink()
        return True
    pairs = [[(d, s) for d, s in zip(snapshot.probe_ids[i], snapshot.probe_scores[i]) if d != doc_id] for i in kept]
    reference = (
        snapshot.reference_vectors[kept]
        if snapshot.reference_source.startswith("probe queries")
        else snapshot.reference_vectors
    )
    replace(
        snapshot,
        probe_queries=[snapshot.probe_queries[i] for i in kept],
        probe_ids=[[d for d, _ in row] for row in pairs],
        probe_scores=[[s for _, s in row] for row in pairs],
        reference_vectors=reference,
    ).save(path)
    return True


def probe_engine(
    config: RAGConfig,
    alias: str,
    *,
    embedder: Embedder,
    manager: MilvusIndexManager,
    engine: RetrievalEngine | None = None,
) -> RetrievalEngine:
    """An engine that runs probes without logging them (they are not users' queries), sharing the given model and
    connection (and the given engine's reranker): Milvus Lite serves one client per process well."""
    if engine is not None and engine.query_log is None and engine.alias == alias:
        return engine
    quiet = config.model_copy(update={"quality": config.quality.model_copy(update={"query_log": False})})
    reranker = engine.reranker if engine is not None else None
    return RetrievalEngine(quiet, embedder=embedder, manager=manager, reranker=reranker, alias=alias)


def run_probes(engine: RetrievalEngine, queries: Sequence[str]) -> ProbeResults:
    """Each probe's top 10 documents (hybrid, document level) and their scores."""
    options = engine.options(top_k=PROBE_DEPTH, rerank_top_k=PROBE_DEPTH, document_level=True)
    results = engine.search_many(list(queries), options)
    return ProbeResults(
        ids=[[c.doc_id for c in r.results] for r in results], scores=[[float(s) for s in r.scores] for r in results]
    )


def corpus_moments(engine: RetrievalEngine) -> VectorMoments:
    """The serving version's vector moments: the client-side index keeps them; else one streamed pass."""
    if engine.lexical_backend == "local":
        return engine.client_index().vectors
    return VectorMoments.from_batches(engine.manager.iter_vectors(engine.serving_state().collection))


def canary_vectors(embedder: Embedder) -> np.ndarray:
    return embedder.encode_documents(list(CANARY_TEXTS))


def take_snapshot(
    config: RAGConfig,
    probe_queries: Sequence[str] | None = None,
    *,
    engine: RetrievalEngine,
    alias: str | None = None,
) -> Path:
    """Record the serving version's reference and return the file written.

    Probe queries (at most ``PROBE_QUERIES``): ``probe_queries``, else the query log's texts (kept with
    ``quality.log_query_text``), else the corpus titles. Reference query embeddings: the given queries (up to
    ``REFERENCE_QUERIES``), else the log's newest embeddings when it holds at least ``MIN_SAMPLE``, else the probes.
    """
    alias = alias or engine.alias
    engine = probe_engine(config, alias, embedder=engine.embedder, manager=engine.manager, engine=engine)
    state = engine.serving_state()
    logged = (
        logged_queries(Path(config.quality.query_log_dir), alias, limit=REFERENCE_QUERIES)
        if probe_queries is None
        else None
    )
    given = [q.strip() for q in probe_queries or () if q.strip()]
    if probe_queries is not None:
        if not given:
            raise ValueError(
                "No probe queries given (the list or file is empty); give at least one query, or "
                "none at all to sample them from the query log or the corpus titles."
            )
        queries, source = sample(given, PROBE_QUERIES), "given"
    elif len(set(logged.texts)) >= MIN_SAMPLE:
        queries, source = sample(sorted(set(logged.texts)), PROBE_QUERIES), "query log"
    else:
        queries, source = title_queries(engine.manager, state.collection, PROBE_QUERIES), "corpus titles"
    if not queries:
        raise ValueError(f"{alias!r} holds no documents to build probe queries from; ingest documents first.")
    probes = run_probes(engine, queries)
    if logged is not None and len(logged.vectors) >= MIN_SAMPLE:
        reference, reference_source = logged.vectors, "query log"
    else:
        reference_queries = sample(given, REFERENCE_QUERIES) if given else queries
        reference = engine.embedder.encode_queries(reference_queries)
        reference_source = "given queries" if given else f"probe queries ({source})"
    probe_set = stored_probe_set(config, state.collection)
    snapshot = DriftSnapshot(
        alias=alias,
        collection=state.collection,
        data_version=state.data_version,
        taken_at=datetime.datetime.now(datetime.UTC).isoformat(),
        model=engine.embedder.model_name,
        probe_source=source,
        probe_queries=list(queries),
        probe_ids=probes.ids,
        probe_scores=probes.scores,
        reference_source=reference_source,
        reference_vectors=reference,
        corpus=corpus_moments(engine),
        canary_vectors=canary_vectors(engine.embedder),
        probe_set_ndcg=_probe_set_scores(engine, probe_set) if probe_set else {},
    )
    path = snapshot_path(config, state.collection)
    snapshot.save(path)
    log.info(
        "Drift snapshot of %s (%s, %d probe queries from %s) written to %s",
        alias,
        state.collection,
        len(queries),
        source,
        path,
    )
    return path


def _probe_set_scores(engine: RetrievalEngine, probe_set: ProbeSet) -> dict[str, float]:
    by_query = probe_ndcg(engine, probe_set)
    return {probe.key: by_query[probe.query_id] for probe in probe_set.probes}


def snapshot_on_promotion(
    config: RAGConfig, alias: str, embedder: Embedder, manager: MilvusIndexManager
) -> Callable[[str], None]:
    """The hook run when a version is promoted: a new reference for it. A failure only logs a warning, since
    ingestion must not fail for want of a drift reference."""

    def take(collection: str) -> None:
        try:
            take_snapshot(config, engine=probe_engine(config, alias, embedder=embedder, manager=manager), alias=alias)
        except Exception as error:  # noqa: BLE001 - any failure here is reported, never raised into ingestion
            log.warning(
                "No drift snapshot was taken for %s after promoting %s (%s: %s); %s.",
                alias,
                collection,
                type(error).__name__,
                error,
                HOW_TO_SNAPSHOT,
            )

    return take
