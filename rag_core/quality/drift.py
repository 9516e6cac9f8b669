"""Drift detection: has the query stream, the index or the embedding model moved away from the snapshot taken
when the serving version was promoted?

``drift_magnitude`` sums the signals up in [0, 1]: for each signal, r = its distance from its no-drift value
(AUC 0.5, overlap 1, else 0) divided by its threshold's distance, mapped to 1 - 0.85^r (0 unchanged, exactly
0.15 at the threshold, the guide's alert level, and towards 1 far beyond); the magnitude is the largest of them.
So ``drift_detected`` (any signal beyond its threshold) and ``drift_magnitude > 0.15`` always agree.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from rag_core.config import RAGConfig
from rag_core.quality.drift_queries import logged_queries
from rag_core.quality.drift_signals import (
    DriftSignal,
    corpus_drift,
    model_drift,
    probe_ndcg_drop,
    query_drift,
    result_overlap,
    top_score_shift,
)
from rag_core.quality.drift_snapshot import (
    MIN_SAMPLE,
    REFERENCE_QUERIES,
    DriftSnapshot,
    NoSnapshotError,
    canary_vectors,
    corpus_moments,
    probe_engine,
    run_probes,
    serving_snapshot,
    take_snapshot,
)
from rag_core.quality.probes import MIN_PROBES, probe_ndcg, probe_set_path, stored_probe_set
from rag_core.retrieval.engine import RetrievalEngine

__all__ = ["DriftReport", "DriftSignal", "NoSnapshotError", "detect_drift", "take_snapshot"]
ALERT_MAGNITUDE = 0.15  # the operations guide's alert level
NO_DRIFT_VALUE = {"query_drift": 0.5, "result_overlap": 1.0}  # other signals: 0
# The operations guide's troubleshooting list, for the signals that fired.
RECOMMENDATIONS = {
    "query_drift": [
        "Review query distribution changes: the queries moved away from the snapshot's (sample them "
        "from the query log, quality.log_query_text)",
        "Add domain-specific embeddings (retrain embeddings) if the new kind of query is here to stay",
    ],
    "result_overlap": [
        "Update index with fresh data: the probe queries' results changed (`rag reindex`, then `rag drift --snapshot`)",
        "Consider A/B testing the serving version against the previous one (`rag rollback`)",
    ],
    "corpus_mean": [
        "Update index with fresh data: the stored documents changed (`rag reindex`, then "
        "`rag drift --snapshot` if the change was intended)"
    ],
    "model_canary": [
        "Retrain embeddings: the embedding model changed (embedding.model, its files or its "
        "precision); re-embed everything with `rag reindex`, or restore the previous model"
    ],
}
RECOMMENDATIONS["probe_ndcg_drop"] = [
    "Check answer quality: the corpus's own probe queries find their documents less often than at the snapshot "
    "(`rag eval --dataset <quality.drift_dir>/probes/<version>`); look for documents whose text changed (a parser "
    "or source change), then re-index (`rag reindex`) or roll back (`rag rollback`)"
]
RECOMMENDATIONS["top1_score"] = RECOMMENDATIONS["result_overlap"]
RECOMMENDATIONS["corpus_covariance"] = RECOMMENDATIONS["corpus_mean"]


@dataclass(frozen=True)
class DriftReport:
    drift_detected: bool
    drift_magnitude: float  # [0, 1]; the guide alerts above 0.15
    signals: list[DriftSignal]
    recommendations: list[str]
    low_confidence: bool  # too few sample queries for the query-drift signal, which is then left out
    sample_size: int
    collection: str  # the version serving now
    snapshot_of: str  # the version whose snapshot was compared with: the serving one
    snapshot_taken_at: str
    probe_set_ndcg: float | None = None  # the probe set's mean nDCG@10 now; None when it was not scored
    probe_set_note: str = ""  # why there is no probe-set signal, when there is none

    def as_json(self) -> dict:
        return {
            "drift_detected": self.drift_detected,
            "drift_magnitude": round(self.drift_magnitude, 4),
            "signals": [asdict(s) for s in self.signals],
            "recommendations": self.recommendations,
            "low_confidence": self.low_confidence,
            "sample_size": self.sample_size,
            "collection": self.collection,
            "snapshot_of": self.snapshot_of,
            "snapshot_taken_at": self.snapshot_taken_at,
            "probe_set_ndcg": None if self.probe_set_ndcg is None else round(self.probe_set_ndcg, 4),
            "probe_set_note": self.probe_set_note,
        }


def detect_drift(
    config: RAGConfig,
    sample_queries: Sequence[str] | None = None,
    *,
    engine: RetrievalEngine,
    alias: str | None = None,
) -> DriftReport:
    """Compare now with the snapshot of the version the alias serves (``serving_snapshot``). The query sample
    is ``sample_queries``, else the query log's embeddings of queries since the snapshot; under ``MIN_SAMPLE``
    queries the report is ``low_confidence`` and has no query-drift signal. Raises ``NoSnapshotError`` when the
    serving version has no snapshot."""
    alias = alias or engine.alias
    if sample_queries is not None and not any(q.strip() for q in sample_queries):
        raise ValueError(
            f"The sample is empty: give at least {MIN_SAMPLE} queries, or none at all to use the "
            "queries logged since the snapshot."
        )
    engine = probe_engine(config, alias, embedder=engine.embedder, manager=engine.manager, engine=engine)
    snapshot = serving_snapshot(config, engine)
    if sample_queries is not None:
        sample = engine.embedder.encode_queries([q for q in sample_queries if q.strip()])
    else:
        sample = logged_queries(
            Path(config.quality.query_log_dir), alias, since=snapshot.taken, limit=REFERENCE_QUERIES
        ).vectors
    signals = []
    if len(sample) >= MIN_SAMPLE:
        signals.append(
            query_drift(snapshot.reference_vectors, sample)
            if _same_width(snapshot, sample)
            else DriftSignal(
                "query_drift",
                1.0,
                0.55,
                True,
                "the sample's query embeddings have "
                f"{sample.shape[1]} dimensions, {snapshot.reference_vectors.shape[1]} in the "
                "snapshot: the embedding model changed",
            )
        )
    probes = run_probes(engine, snapshot.probe_queries)
    signals.append(result_overlap(snapshot.probe_ids, probes.ids))
    before, now = _top1(snapshot.probe_scores), _top1(probes.scores)
    if before and now:
        signals.append(top_score_shift(before, now))
    signals += corpus_drift(snapshot.corpus, corpus_moments(engine))
    signals.append(model_drift(snapshot.canary_vectors, canary_vectors(engine.embedder)))
    probe_signal, probe_set_now, probe_set_note = _probe_set_drift(config, engine, snapshot)
    signals += [probe_signal] if probe_signal else []
    magnitude = max(_severity(s) for s in signals)
    fired = [s.name for s in signals if s.detected]
    recommendations = list(dict.fromkeys(r for name in fired for r in RECOMMENDATIONS[name]))
    return DriftReport(
        drift_detected=bool(fired),
        drift_magnitude=magnitude,
        signals=signals,
        recommendations=recommendations,
        low_confidence=len(sample) < MIN_SAMPLE,
        sample_size=len(sample),
        collection=engine.serving_state().collection,
        snapshot_of=snapshot.collection,
        snapshot_taken_at=snapshot.taken_at,
        probe_set_ndcg=probe_set_now,
        probe_set_note=probe_set_note,
    )


def _probe_set_drift(
    config: RAGConfig, engine: RetrievalEngine, snapshot: DriftSnapshot
) -> tuple[DriftSignal | None, float | None, str]:
    """The probe set's nDCG@10 now against the snapshot's, over the probes the snapshot scored whose documents are
    still there, with its mean now; else no signal and the reason."""
    how = "`rag drift --snapshot` scores the version's current probe set"
    if not snapshot.probe_set_ndcg:
        return None, None, f"the snapshot of {snapshot.collection} scored no probe set ({how}, once it has one)"
    probe_set = stored_probe_set(config, snapshot.collection)
    scored = [p for p in probe_set.probes if p.key in snapshot.probe_set_ndcg] if probe_set else []
    present = engine.manager.present_documents(snapshot.collection, {p.doc_id for p in scored})
    kept = [p for p in scored if p.doc_id in present]
    if len(kept) < MIN_PROBES:
        where = probe_set_path(config, snapshot.collection)
        return (
            None,
            None,
            (
                f"{len(kept)} of the probes the snapshot scored are left in {where} with their documents (rebuilt, "
                f"erased from or deleted since), too few to judge by; {how}"
            ),
        )
    now = probe_ndcg(engine, probe_set.restricted(p.query_id for p in kept))
    before = {p.query_id: snapshot.probe_set_ndcg[p.key] for p in kept}
    signal = probe_ndcg_drop(before, now, left_out=len(snapshot.probe_set_ndcg) - len(kept))
    return signal, float(np.mean(list(now.values()))), ""


def _same_width(snapshot: DriftSnapshot, sample: np.ndarray) -> bool:
    return snapshot.reference_vectors.shape[1] == sample.shape[1]


def _top1(scores: list[list[float]]) -> list[float]:
    return [s[0] for s in scores if s]


def _severity(signal: DriftSignal) -> float:
    """1 - 0.85^r, r = distance from the no-drift value towards the threshold over the threshold's distance (see
    the module's doc); a value on the other side of the no-drift value (an AUC under 0.5) counts as none."""
    baseline = NO_DRIFT_VALUE.get(signal.name, 0.0)
    ratio = max(0.0, (signal.value - baseline) / (signal.threshold - baseline))
    severity = float(1 - (1 - ALERT_MAGNITUDE) ** ratio)
    return severity if signal.detected else min(severity, ALERT_MAGNITUDE)  # at the threshold is not beyond it
