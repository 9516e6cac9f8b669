"""``pipeline.hybrid_alpha: auto``: the fusion weight chosen for each version on its own probe set at promotion.

The shipped weight (0.7) was tuned on SciFact train; a user's corpus may want another. The choice follows the
discipline of ``benchmarks/tune_bm25.py``: each of ``FOLDS`` seeded folds of the probes is scored with the weight
that did best on the other folds, and the weight chosen on all probes is kept only when that held-out score beats
the default's on the same folds. Otherwise the default stays, and the evidence says why. Measured on SciFact
(``benchmarks/RESULTS.md``): probes are made of their documents' words, so they favour BM25, and a weight chosen on
them can lose on human queries; that is why ``auto`` is opt-in.
"""

import json
import logging
import tempfile
from dataclasses import asdict, dataclass

import numpy as np

from rag_core.config import DEFAULT_HYBRID_ALPHA, RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.models.embedder import Embedder
from rag_core.quality.bootstrap import folds
from rag_core.quality.gate import version_engine
from rag_core.quality.probes import ProbeSet, probe_ndcg, stored_probe_set

ALPHAS = tuple(round(0.1 * i, 1) for i in range(1, 10))
FOLDS = 5
SEED = 0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FusionChoice:
    alpha: float  # what the version serves with
    chosen_on_probes: float  # the best weight over every probe
    default: float
    probes: int
    held_out_ndcg: float  # each fold scored with the weight chosen on the others
    default_ndcg: float  # the default's on the same probes
    fold_alphas: list[float]
    reason: str

    @property
    def adopted(self) -> bool:
        return self.alpha != self.default

    def evidence(self) -> str:
        return json.dumps(asdict(self) | {"adopted": self.adopted}, separators=(",", ":"))


def best_alpha(scores: dict[float, dict[str, float]], query_ids: list[str], default: float) -> float:
    """The weight with the highest mean over ``query_ids``; a tie goes to the one nearest the default."""
    return max(scores, key=lambda a: (round(float(np.mean([scores[a][q] for q in query_ids])), 9), -abs(a - default)))


def choose_alpha(scores: dict[float, dict[str, float]], default: float = DEFAULT_HYBRID_ALPHA) -> FusionChoice:
    """The choice from each weight's per-probe nDCG@10 (``scores[alpha][query_id]``, the default among them)."""
    ids = sorted(scores[default])
    parts = folds(ids, FOLDS, SEED)
    fold_alphas, held_out = [], {}
    for number, part in enumerate(parts):
        others = [q for i, p in enumerate(parts) if i != number for q in p]
        fold_alphas.append(pick := best_alpha(scores, others, default))
        held_out |= {q: scores[pick][q] for q in part}
    overall = best_alpha(scores, ids, default)
    held_out_ndcg = float(np.mean(list(held_out.values())))
    default_ndcg = float(np.mean(list(scores[default].values())))
    if held_out_ndcg > default_ndcg:
        alpha, reason = overall, f"held-out probe nDCG@10 {held_out_ndcg:.4f} beats the default's {default_ndcg:.4f}"
    else:
        alpha, reason = (
            default,
            (
                f"held-out probe nDCG@10 {held_out_ndcg:.4f} does not beat the default's {default_ndcg:.4f}: "
                "the default stays"
            ),
        )
    return FusionChoice(
        alpha=alpha,
        chosen_on_probes=overall,
        default=default,
        probes=len(ids),
        held_out_ndcg=round(held_out_ndcg, 5),
        default_ndcg=round(default_ndcg, 5),
        fold_alphas=fold_alphas,
        reason=reason,
    )


def choose_for_version(
    config: RAGConfig, manager: MilvusIndexManager, embedder: Embedder, collection: str, probe_set: ProbeSet
) -> FusionChoice:
    with tempfile.TemporaryDirectory(prefix="rag-fusion-") as scratch:
        engine = version_engine(config, manager, embedder, collection, scratch)
        with engine.embedder.reusing_query_vectors():  # the probes are embedded once, not once per weight
            scores = {
                alpha: probe_ndcg(engine, probe_set, alpha=alpha) for alpha in sorted({*ALPHAS, DEFAULT_HYBRID_ALPHA})
            }
    return choose_alpha(scores)


def fusion_on_promotion(config: RAGConfig, manager: MilvusIndexManager, embedder: Embedder, collection: str) -> None:
    """With ``pipeline.hybrid_alpha: auto``, choose and record the weight of a version about to serve, from the
    probe set just built for it. Without one (a corpus too small, probe sets off) the default is recorded with
    the reason, so the version's evidence always says which weight it serves with and why."""
    if config.pipeline.hybrid_alpha != "auto":
        return
    probe_set = stored_probe_set(config, collection)
    if probe_set is None:
        reason = f"no probe set for {collection} (quality_gate.probe_set_size, or too few documents): the default"
        manager.record_fusion_choice(
            collection, DEFAULT_HYBRID_ALPHA, json.dumps({"alpha": DEFAULT_HYBRID_ALPHA, "reason": reason})
        )
        log.info("hybrid_alpha auto for %s: %s", collection, reason)
        return
    try:
        choice = choose_for_version(config, manager, embedder, collection, probe_set)
        manager.record_fusion_choice(collection, choice.alpha, choice.evidence())
    except Exception as error:  # noqa: BLE001 - a promotion must not fail for want of a tuned weight
        log.warning(
            "hybrid_alpha auto for %s: no weight was chosen (%s: %s); it serves with the default %g.",
            collection,
            type(error).__name__,
            error,
            DEFAULT_HYBRID_ALPHA,
        )
        return
    log.info("hybrid_alpha auto for %s: %g (%s)", collection, choice.alpha, choice.reason)
