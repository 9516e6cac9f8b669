"""Fits ``hallucination_risk`` on SciFact **train** and writes its coefficients into the package.

Every train query is run through ``RetrievalEngine`` exactly as ``rag eval`` runs it (document level, 100 results,
300 candidates per leg, the query cache off); its label-free features are what the engine computed, its label is
whether no relevant document is in the top 5. The coefficients go to
``rag_core/retrieval/hallucination_model.json``; SciFact test is never read here (``benchmarks.quality_signals``
scores them there). Also prints the 5-fold cross-validated AUROC on train, to compare feature sets honestly.

Usage: python -m benchmarks.fit_hallucination [--dataset ../shared/data/scifact]
"""

import argparse
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT, OfflineSciFact, folds
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.quality.auroc import auroc
from rag_core.quality.evaluation import Run, evaluate
from rag_core.quality.signal_evaluation import FAILURE_DEPTH, failed_queries
from rag_core.retrieval.hallucination import MODEL_FILE, HallucinationModel
from rag_core.retrieval.signals import QueryFeatures

ROOT = Path(__file__).resolve().parents[1]
FEATURES = tuple(f.name for f in fields(QueryFeatures))
L2 = 1.0


def query_features(data: OfflineSciFact, split: str) -> tuple[dict[str, dict], dict[str, bool], Run]:
    """Per query: the engine's features, whether it failed, and the run, as ``rag eval`` runs the split."""
    features: dict[str, dict] = {}
    _, run = evaluate(
        data.engine,
        data.splits[split],
        data.options(),
        on_result=lambda qid, r: features.update({qid: asdict(r.quality.features)}),
    )
    return features, failed_queries(run, data.splits[split].qrels), run


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--out", default=str(OUT / "hallucination_fit.json"))
    args = parser.parse_args()
    data = OfflineSciFact(load_config(), args.dataset)
    features, failed, _ = query_features(data, "train")
    ids = sorted(features)
    held_out = {}
    for part in folds(ids):
        inside = set(part)
        train = [q for q in ids if q not in inside]
        model = HallucinationModel.fit([features[q] for q in train], [failed[q] for q in train], FEATURES, l2=L2)
        held_out.update({q: model.risk(features[q]) for q in part})
    cv = auroc([failed[q] for q in ids], [held_out[q] for q in ids])
    model = HallucinationModel.fit(
        [features[q] for q in ids],
        [failed[q] for q in ids],
        FEATURES,
        l2=L2,
        fitted_on=f"SciFact train ({len(ids)} queries, {sum(failed.values())} without a "
        f"relevant document in the top {FAILURE_DEPTH}); "
        "python -m benchmarks.fit_hallucination",
    )
    model.save(MODEL_FILE)
    write_report(
        args.out,
        {
            "queries": len(ids),
            "failures": sum(failed.values()),
            "cv_auroc_5_folds": round(cv, 4),
            "l2": L2,
            "coefficients": dict(zip(FEATURES, np.round(model.coefficients, 4).tolist())),
            "intercept": round(model.intercept, 4),
            "model_file": str(MODEL_FILE.relative_to(ROOT)),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
