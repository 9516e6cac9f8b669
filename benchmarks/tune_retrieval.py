"""Fusion methods compared on SciFact at the same candidate depth, the query cache off, every nDCG@10 with a 95 %
bootstrap interval.

Train (809 queries, 5 seeded folds): each method's alpha is chosen by its mean train nDCG@10 and reported with
its spread over the folds; the legs are replayed offline with the engine's own fusion (``benchmarks.offline``).
Test (300 queries): every mode and method scored end to end through ``RetrievalEngine`` at its train-chosen alpha,
each against the shipped defaults with a paired bootstrap; the shipped defaults are also scored exactly as
``rag eval`` does (``evaluate_dataset`` with the loaded config), and the offline replay is checked against the
engine on that setting. BM25 k1 / b are the configured ones (chosen by ``benchmarks.tune_bm25``).

Usage: python -m benchmarks.tune_retrieval [--dataset ../shared/data/scifact] [--out benchmarks/out/fusion.json]
"""

import argparse
import sys
import time
from pathlib import Path

from benchmarks.offline import CANDIDATES, FOLD_SEED, FOLDS, SCIFACT, OfflineSciFact, fold_means, folds, spread
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.evaluate import evaluate_dataset
from rag_core.quality.bootstrap import bootstrap_ci, paired_bootstrap, per_query_ndcg
from rag_core.quality.evaluation import evaluate, score_run

ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
NORMALIZATIONS = ("minmax", "zscore", "corpus")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--out", default=str(OUT / "fusion.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    config = load_config()
    data = OfflineSciFact(config, args.dataset)
    k1, b = config.index.bm25_k1, config.index.bm25_b
    parts = folds(data.splits["train"].queries)
    train_qrels = data.splits["train"].qrels
    lexical = data.lexical("train", k1, b)

    def train_spread(options) -> dict:  # noqa: ANN001
        """Fold means and their spread, and the whole train set's mean with its bootstrap interval."""
        scores = per_query_ndcg(data.run("train", options, lexical), train_qrels)
        return spread(fold_means(scores, parts)) | {"train_ci": bootstrap_ci(scores).as_json()}

    train = {
        "dense": train_spread(data.options("dense")),
        "bm25": train_spread(data.options("bm25")),
        "hybrid rrf": train_spread(data.options("hybrid", fusion="rrf")),
    }
    chosen_alpha = {}
    for normalization in NORMALIZATIONS:
        by_alpha = {
            a: train_spread(data.options("hybrid", fusion="weighted", normalization=normalization, alpha=a))
            for a in ALPHAS
        }
        chosen_alpha[normalization] = max(ALPHAS, key=lambda a: (by_alpha[a]["mean"], -abs(a - 0.5)))
        train[f"hybrid weighted {normalization}"] = {f"{a:g}": s for a, s in by_alpha.items()}
        print(
            f"{normalization}: alpha {chosen_alpha[normalization]:g} ({time.perf_counter() - started:.0f}s)", flush=True
        )

    # --- test, end to end, the cache off, the same depth for every method ---------------------------------------
    shipped = config.retrieval
    default_name = (
        f"hybrid weighted {shipped.normalization} alpha {config.pipeline.hybrid_alpha:g}"
        if shipped.fusion == "weighted"
        else "hybrid rrf"
    )
    settings = {
        "dense": data.options("dense"),
        "bm25": data.options("bm25"),
        "hybrid rrf": data.options("hybrid", fusion="rrf"),
        **{
            f"hybrid weighted {n} alpha {chosen_alpha[n]:g}": data.options(
                "hybrid", fusion="weighted", normalization=n, alpha=chosen_alpha[n]
            )
            for n in NORMALIZATIONS
        },
    }
    if default_name not in settings:
        settings[default_name] = data.options("hybrid")
    test_qrels = data.splits["test"].qrels
    test, per_query = {}, {}
    for label, options in settings.items():
        report, run = evaluate(data.engine, data.splits["test"], options)
        per_query[label] = per_query_ndcg(run, test_qrels)
        test[label] = {
            "ndcg@10": bootstrap_ci(per_query[label]).as_json(),
            "recall@100": round(report.recall_at_100, 5),
            "mrr@10": round(report.mrr_at_10, 5),
        }
        print(f"test {label}: {report.ndcg_at_10:.4f}", flush=True)
    for label in settings:
        if label != default_name:
            test[label]["minus_shipped_default"] = paired_bootstrap(per_query[label], per_query[default_name]).as_json()

    # --- the shipped defaults exactly as `rag eval` scores them, and the offline replay against the engine -------
    rag_eval, rag_run, _ = evaluate_dataset(RagContext(config), args.dataset)
    replay = data.run("test", data.options("hybrid"), data.lexical("test", k1, b))
    engine_run = {q: [d for d, _ in hits] for q, hits in rag_run.items()}
    differing = sum(engine_run[q][:10] != [d for d, _ in replay[q]][:10] for q in test_qrels)

    write_report(
        args.out,
        {
            "dataset": "SciFact (BEIR)",
            "folds": FOLDS,
            "fold_seed": FOLD_SEED,
            "fold_sizes": [len(p) for p in parts],
            "setup": {
                "candidates_per_leg": CANDIDATES,
                "results_per_query": 100,
                "cache": "off (retrieval.cache_size 0)",
                "level": "document",
                "bm25": {"k1": k1, "b": b},
                "rrf_k": shipped.rrf_k,
                "embedding": config.embedding.model,
                "chunking": config.chunking.model_dump(),
            },
            "shipped_defaults": {
                "fusion": shipped.fusion,
                "normalization": shipped.normalization,
                "alpha": config.pipeline.hybrid_alpha,
                "label": default_name,
            },
            "train": train,
            "alpha_chosen_on_train": {n: chosen_alpha[n] for n in NORMALIZATIONS},
            "test": test,
            "rag_eval_default": {
                "command": "rag eval --dataset ../shared/data/scifact --json",
                **rag_eval.as_json(),
                "ndcg@10_ci": bootstrap_ci(per_query_ndcg(rag_run, test_qrels)).as_json(),
            },
            "offline_replay_check": {
                "setting": default_name,
                "engine_ndcg@10": round(rag_eval.ndcg_at_10, 5),
                "replay_ndcg@10": round(score_run(replay, test_qrels)[0], 5),
                "queries_whose_top10_differ": differing,
            },
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
