"""The quality gate of a re-index: may the alias move from the serving version to a candidate?

With a labelled set (``quality_gate.dataset``, a BEIR folder whose judgements name this index's documents) the
candidate's nDCG@10 may not fall more than ``quality_gate.max_ndcg_drop`` below the serving version's. Without
one, the same holds on the serving version's probe set (``rag_core.quality.probes``: queries derived from its own
documents), judged by a paired bootstrap so that an equal rebuild never fails on noise. Only when the corpus is too
small for a probe set does the gate fall back, saying so, to the mean ``hallucination_risk`` of probe queries (the
drift snapshot's, else the first sentences of the serving version's documents), which may not rise more than
``quality_gate.max_risk_rise``. Both versions answer the same
queries in the same process, with the query log off (gate traffic is not user traffic) and their client-side
indexes in a temporary folder.
"""

import re
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.models.embedder import Embedder, config_for_model, shared_embedder
from rag_core.quality.bootstrap import paired_bootstrap
from rag_core.quality.drift_snapshot import DriftSnapshot, NoSnapshotError, snapshot_path
from rag_core.quality.evaluation import evaluate, evaluation_options, load_beir
from rag_core.quality.probes import (
    ProbeSet,
    ProbeSetError,
    build_for_version,
    probe_ndcg,
    store_probe_set,
    stored_probe_set,
)
from rag_core.retrieval.engine import RetrievalEngine

RISK_SIGNAL = "hallucination_risk"
PROBE_GATE_MODES = ("hybrid", "dense")  # as served, and the leg a new embedding changes
GATE_RISK = 0.05  # the probe gate blocks when it is at least 95 % sure (one-sided) of a drop beyond the allowed
PROBE_WORDS = 24
SENTENCE_END = re.compile(r"(?<=[.!?])\s")


class GateFailedError(RuntimeError):
    """The candidate is worse than the serving version by more than the gate allows; the alias did not move."""

    def __init__(self, result: "GateResult") -> None:
        super().__init__(result.message)
        self.result = result

    @property
    def audit_details(self) -> dict[str, str]:
        """What the failed re-index's audit record adds: which candidate the gate refused."""
        return {"candidate": self.result.candidate, "gate": "failed"}


@dataclass(frozen=True)
class GateResult:
    passed: bool
    metric: Literal["ndcg@10", "hallucination_risk"]
    serving: str
    candidate: str
    serving_value: float
    candidate_value: float
    allowed: float  # the largest drop of nDCG@10, or rise of the risk, that still passes
    queries: int
    evidence: str  # the gate dataset, or where the probe queries came from

    @property
    def message(self) -> str:
        worse = "drop" if self.metric == "ndcg@10" else "rise"
        verdict = "passed" if self.passed else "failed"
        return (
            f"quality gate {verdict}: {self.metric} {self.candidate_value:.4f} on candidate {self.candidate} vs "
            f"{self.serving_value:.4f} on serving {self.serving} ({self.queries} queries from {self.evidence}; "
            f"a {worse} of at most {self.allowed:g} is allowed)"
        )


def evaluate_gate(
    config: RAGConfig,
    candidate: str,
    *,
    alias: str,
    embedder: Embedder,
    manager: MilvusIndexManager,
) -> GateResult:
    serving = manager.resolve(alias)
    if serving is None:
        raise LookupError(f"No index {alias!r} at {manager.uri} serves queries; there is nothing to gate against.")
    if serving == candidate:
        raise ValueError(
            f"{candidate} already serves {alias!r}; the gate compares a candidate with the serving version."
        )
    with tempfile.TemporaryDirectory(prefix="rag-gate-") as scratch, ExitStack() as reusing:
        engines = {name: version_engine(config, manager, embedder, name, scratch) for name in (serving, candidate)}
        for model in {id(e.embedder): e.embedder for e in engines.values()}.values():
            reusing.enter_context(model.reusing_query_vectors())  # each probe embedded once per model, not per mode
        quiet = engines[serving].config
        if config.quality_gate.dataset:
            return _ndcg_gate(quiet, engines, serving, candidate)
        probe_set, why_not = _serving_probe_set(config, manager, serving)
        if probe_set is not None:
            return _probe_gate(quiet, engines, serving, candidate, probe_set)
        return _risk_gate(quiet, engines, serving, candidate, manager, alias, why_not)


def version_engine(
    config: RAGConfig, manager: MilvusIndexManager, embedder: Embedder, collection: str, scratch: str
) -> RetrievalEngine:
    """An engine answering from one version, not from the alias, for judging it: the query log off (this is not
    users' traffic), its client-side index in ``scratch`` (a temporary folder), and queries embedded by the model
    that embedded the version's documents."""
    quiet = config.model_copy(
        update={
            "quality": config.quality.model_copy(update={"query_log": False}),
            "retrieval": config.retrieval.model_copy(update={"bm25_dir": scratch, "bm25_refresh_s": 0.0}),
        }
    )
    return RetrievalEngine(
        quiet, embedder=_query_embedder(manager, collection, embedder), manager=manager, alias=collection
    )


def _query_embedder(manager: MilvusIndexManager, collection: str, embedder: Embedder) -> Embedder:
    """Queries must be embedded by the model that embedded the version's documents: after a model change, the
    serving version still answers in its old model's space."""
    version = manager.state(collection).version
    if version is None or version.model == embedder.model_name:
        return embedder
    return shared_embedder(config_for_model(embedder.config, version.model))


def _ndcg_gate(config: RAGConfig, engines: dict[str, RetrievalEngine], serving: str, candidate: str) -> GateResult:
    gate = config.quality_gate
    root = Path(gate.dataset)
    if not root.is_dir():
        raise FileNotFoundError(
            f"quality_gate.dataset {root.resolve()} is not a folder; point it at a BEIR folder "
            "(queries.jsonl, qrels/<split>.tsv) judging this index's documents, or set it to "
            "'' to gate on hallucination_risk."
        )
    dataset = load_beir(root, gate.split)
    values = {
        name: evaluate(engine, dataset, evaluation_options(engine))[0].ndcg_at_10 for name, engine in engines.items()
    }
    return GateResult(
        passed=values[candidate] >= values[serving] - gate.max_ndcg_drop,
        metric="ndcg@10",
        serving=serving,
        candidate=candidate,
        serving_value=values[serving],
        candidate_value=values[candidate],
        allowed=gate.max_ndcg_drop,
        queries=len(dataset.queries),
        evidence=f"{root} ({gate.split})",
    )


def _serving_probe_set(config: RAGConfig, manager: MilvusIndexManager, serving: str) -> tuple[ProbeSet | None, str]:
    """The serving version's probe set: the one its promotion stored, else one built now (and stored); None, with
    the reason, when probe sets are off or the corpus is too small for one."""
    if not config.quality_gate.probe_set_size:
        return None, "quality_gate.probe_set_size is 0"
    if stored := stored_probe_set(config, serving):
        return stored, ""
    try:
        built = build_for_version(manager, serving, n=config.quality_gate.probe_set_size)
    except ProbeSetError as error:
        return None, str(error)
    store_probe_set(config, built)
    return built, ""


def _probe_gate(
    config: RAGConfig, engines: dict[str, RetrievalEngine], serving: str, candidate: str, probe_set: ProbeSet
) -> GateResult:
    """nDCG@10 on the corpus's own probes, compared paired, as served (hybrid) and on the dense leg alone.

    A candidate differs from the serving version in what it embeds (model, chunking, index parameters), and probes
    made of a document's own words leave BM25 little to miss: in the fused ranking BM25 can hide a worse embedding,
    so the dense leg is judged on its own too. The candidate fails when, for either, a paired bootstrap is 95 %
    sure (one-sided) that it loses more than ``max_ndcg_drop``, so an equal rebuild never fails on noise."""
    gate = config.quality_gate
    scores = {
        mode: {name: probe_ndcg(engine, probe_set, mode) for name, engine in engines.items()}
        for mode in PROBE_GATE_MODES
    }
    drops = {
        mode: paired_bootstrap(by_name[serving], by_name[candidate], confidence=1 - 2 * GATE_RISK)
        for mode, by_name in scores.items()
    }
    means = {name: sum(values.values()) / len(values) for name, values in scores["hybrid"].items()}
    bounds = "; ".join(f"{mode}: {drop.mean:+.4f}, at least {drop.low:+.4f}" for mode, drop in drops.items())
    return GateResult(
        passed=all(drop.low <= gate.max_ndcg_drop for drop in drops.values()),
        metric="ndcg@10",
        serving=serving,
        candidate=candidate,
        serving_value=means[serving],
        candidate_value=means[candidate],
        allowed=gate.max_ndcg_drop,
        queries=len(probe_set.probes),
        evidence=f"the probe set built from {serving}'s documents; nDCG@10 drop ({bounds} at "
        f"{1 - GATE_RISK:.0%} confidence)",
    )


def _risk_gate(
    config: RAGConfig,
    engines: dict[str, RetrievalEngine],
    serving: str,
    candidate: str,
    manager: MilvusIndexManager,
    alias: str,
    why_no_probe_set: str,
) -> GateResult:
    gate = config.quality_gate
    queries, evidence = probe_queries(config, manager, alias, serving)
    evidence += f" (no probe set: {why_no_probe_set})"
    values = {}
    for name, engine in engines.items():
        results = engine.search_many(queries, engine.options())
        risks = [r.signals.get(RISK_SIGNAL) for r in results]
        if any(risk is None for risk in risks):
            raise ValueError(
                f"quality_gate.dataset is not set and the retrieval results carry no {RISK_SIGNAL!r} "
                "signal to gate on; set quality_gate.dataset to a BEIR folder judging this index's "
                "documents."
            )
        values[name] = float(np.mean(risks))
    return GateResult(
        passed=values[candidate] <= values[serving] + gate.max_risk_rise,
        metric="hallucination_risk",
        serving=serving,
        candidate=candidate,
        serving_value=values[serving],
        candidate_value=values[candidate],
        allowed=gate.max_risk_rise,
        queries=len(queries),
        evidence=evidence,
    )


def probe_queries(config: RAGConfig, manager: MilvusIndexManager, alias: str, serving: str) -> tuple[list[str], str]:
    """The serving version's drift snapshot's probe queries (users' queries or titles, taken at its promotion)
    when there is one, else the first sentences of its documents; and where they came from."""
    try:
        snapshot = DriftSnapshot.load(snapshot_path(config, serving))
    except NoSnapshotError:
        snapshot = None
    if snapshot is not None and snapshot.probe_queries:
        return snapshot.probe_queries[: config.quality_gate.probe_queries], "the drift snapshot's probe queries"
    return first_sentences(
        manager, serving, config.quality_gate.probe_queries
    ), f"the first sentences of {serving}'s documents"


def first_sentences(manager: MilvusIndexManager, collection: str, count: int) -> list[str]:
    """The first sentence (at most ``PROBE_WORDS`` words) of the first chunk of up to ``count`` documents: text
    the index should answer confidently, the same for both versions."""
    queries: list[str] = []
    for batch in manager.iter_rows(collection, ["doc_id", "text"], filter="position == 0", batch_size=count):
        for row in sorted(batch, key=lambda r: r["doc_id"]):
            sentence = SENTENCE_END.split(row["text"].strip(), maxsplit=1)[0]
            queries.append(" ".join(sentence.split()[:PROBE_WORDS]))
        break  # one batch is enough: probes, not a census
    queries = [q for q in queries if q]
    if not queries:
        raise ValueError(f"{collection} holds no documents to draw probe queries from.")
    return queries
