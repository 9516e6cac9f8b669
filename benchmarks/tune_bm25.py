"""Choose BM25 k1 / b and the hybrid alpha on SciFact *train*, across folds, starting from the library defaults.

The rule (fixed before the run, applied by the code below):
- BM25 k1 and b start at bm25s's defaults, k1 1.5 and b 0.75 (the BM25 this project runs is bm25s; Lucene's
  defaults are k1 1.2, b 0.75, on the grid). A grid point replaces them only if, on **every one** of the 5 train
  folds, it beats them both as BM25 alone and in the shipped hybrid (weighted fusion, ``corpus`` normalisation,
  document level, each at its own train-chosen alpha). Among such points the best hybrid train mean is the
  candidate, and it is then checked **once** on test: it is kept only if it does not lose there (hybrid and BM25
  alone, point estimates); otherwise the library defaults stay. No second candidate is tried on test.
- alpha (the dense weight) has no library default: it is the grid value with the best mean train nDCG@10 for the
  chosen k1 / b, reported with its spread over the folds and with a leave-one-fold-out check (alpha chosen on 4
  folds, scored on the fifth).
Folds: the 809 train queries shuffled with seed 0 into 5 folds. Test (300 queries) is scored only for the library
defaults, the previous defaults (k1 0.9, b 0.4) and the candidate, with 95 % bootstrap intervals.

Usage: python -m benchmarks.tune_bm25 [--dataset ../shared/data/scifact] [--out benchmarks/out/tune_bm25.json]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.offline import CANDIDATES, FOLD_SEED, FOLDS, SCIFACT, OfflineSciFact, fold_means, folds, spread
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.quality.bootstrap import bootstrap_ci, paired_bootstrap, per_query_ndcg

K1S = (0.6, 0.9, 1.2, 1.5, 1.8, 2.1)
BS = (0.3, 0.4, 0.5, 0.6, 0.75, 0.9)
ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
LIBRARY = (1.5, 0.75)  # bm25s.BM25() defaults
PREVIOUS = (0.9, 0.4)  # the defaults shipped before this run (chosen on all of train, no folds)


def name(k1: float, b: float) -> str:
    return f"k1={k1:g} b={b:g}"


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--out", default=str(OUT / "tune_bm25.json"))
    parser.add_argument("--smoke", action="store_true", help="a 2 x 2 grid, two alphas: checks the script runs")
    args = parser.parse_args()
    k1s, bs, alphas = ((0.9, 1.5), (0.4, 0.75), (0.6, 0.7)) if args.smoke else (K1S, BS, ALPHAS)
    started = time.perf_counter()
    data = OfflineSciFact(load_config(), args.dataset)
    parts = folds(data.splits["train"].queries)

    def hybrid(alpha: float):  # noqa: ANN202
        return data.options("hybrid", fusion="weighted", normalization="corpus", alpha=alpha)

    # --- train: every grid point, BM25 alone and the hybrid at every alpha -------------------------------------
    per_query: dict[tuple[float, float], dict] = {}
    grid = []
    for k1 in k1s:
        for b in bs:
            lexical = data.lexical("train", k1, b)
            bm25 = data.run("train", data.options("bm25"), lexical)
            qrels = data.splits["train"].qrels
            scores = {"bm25": per_query_ndcg(bm25, qrels)}
            for alpha in alphas:
                scores[alpha] = per_query_ndcg(data.run("train", hybrid(alpha), lexical), qrels)
            per_query[(k1, b)] = scores
            means = {a: float(np.mean(list(scores[a].values()))) for a in alphas}
            best_alpha = max(alphas, key=lambda a: (round(means[a], 10), -abs(a - 0.5)))
            grid.append(
                {
                    "k1": k1,
                    "b": b,
                    "bm25": spread(fold_means(scores["bm25"], parts)),
                    "hybrid_by_alpha": {f"{a:g}": round(means[a], 5) for a in alphas},
                    "best_alpha": best_alpha,
                    "hybrid": spread(fold_means(scores[best_alpha], parts)),
                }
            )
            print(
                f"{name(k1, b)}: bm25 {grid[-1]['bm25']['mean']:.4f}, hybrid {grid[-1]['hybrid']['mean']:.4f} "
                f"at alpha {best_alpha:g} ({time.perf_counter() - started:.0f}s)",
                flush=True,
            )
    by_point = {(g["k1"], g["b"]): g for g in grid}
    for g in grid:  # the whole train set's mean with its bootstrap interval, for the points reported in detail
        if (g["k1"], g["b"]) in (LIBRARY, PREVIOUS):
            scores = per_query[(g["k1"], g["b"])]
            g["bm25"]["train_ci"] = bootstrap_ci(scores["bm25"]).as_json()
            g["hybrid"]["train_ci"] = bootstrap_ci(scores[g["best_alpha"]]).as_json()
    library = by_point[LIBRARY]
    for g in grid:  # paired, per fold: the grid point minus the library defaults
        for leg in ("bm25", "hybrid"):
            differences = [x - y for x, y in zip(g[leg]["folds"], library[leg]["folds"])]
            g[f"{leg}_minus_library"] = {
                "folds": [round(d, 5) for d in differences],
                "folds_won": sum(d > 0 for d in differences),
            }
        g["wins_every_fold"] = g["bm25_minus_library"]["folds_won"] == FOLDS == g["hybrid_minus_library"]["folds_won"]
    winners = [g for g in grid if g["wins_every_fold"] and (g["k1"], g["b"]) != LIBRARY]
    candidate = max(winners, key=lambda g: g["hybrid"]["mean"]) if winners else None
    if candidate:
        scores = per_query[(candidate["k1"], candidate["b"])]
        candidate["bm25"]["train_ci"] = bootstrap_ci(scores["bm25"]).as_json()
        candidate["hybrid"]["train_ci"] = bootstrap_ci(scores[candidate["best_alpha"]]).as_json()

    # --- test: the library defaults, the previous defaults and the candidate, each at its train alpha ----------
    def test_figures(point: tuple[float, float]) -> tuple[dict, dict[str, dict[str, float]]]:
        alpha = by_point[point]["best_alpha"]
        scores = {
            "bm25": data.scores("test", data.options("bm25"), *point),
            "hybrid": data.scores("test", hybrid(alpha), *point),
        }
        return (
            {
                "k1": point[0],
                "b": point[1],
                "alpha": alpha,
                **{leg: bootstrap_ci(s).as_json() for leg, s in scores.items()},
            },
            scores,
        )

    tested = {"library defaults": LIBRARY, "previous defaults": PREVIOUS}
    if candidate:
        tested["candidate"] = (candidate["k1"], candidate["b"])
    test, test_scores = {}, {}
    for label, point in tested.items():
        test[label], test_scores[label] = test_figures(point)
    comparisons = {
        f"{label} minus library defaults": {
            leg: paired_bootstrap(test_scores[label][leg], test_scores["library defaults"][leg]).as_json()
            for leg in ("bm25", "hybrid")
        }
        for label in tested
        if label != "library defaults"
    }
    if candidate and all(
        test["candidate"][leg]["mean"] >= test["library defaults"][leg]["mean"] for leg in ("bm25", "hybrid")
    ):
        chosen, reason = tested["candidate"], "won every train fold and did not lose on test"
    elif candidate:
        chosen, reason = LIBRARY, f"the candidate {name(*tested['candidate'])} won every train fold but lost on test"
    else:
        chosen, reason = LIBRARY, "no grid point beat the library defaults on every train fold (BM25 alone and hybrid)"

    # --- alpha for the chosen k1 / b: spread over folds, and chosen on 4 folds, scored on the fifth ------------
    scores = per_query[chosen]
    alpha_table = {
        f"{a:g}": spread(fold_means(scores[a], parts)) | {"train_ci": bootstrap_ci(scores[a]).as_json()} for a in alphas
    }
    alpha = by_point[chosen]["best_alpha"]
    held_out = []
    for f, part in enumerate(parts):
        rest = [q for i, p in enumerate(parts) if i != f for q in p]
        pick = max(alphas, key=lambda a: (round(float(np.mean([scores[a][q] for q in rest])), 10), -abs(a - 0.5)))
        held_out.append(
            {
                "fold": f,
                "alpha_chosen_on_other_folds": pick,
                "ndcg@10_on_this_fold": round(float(np.mean([scores[pick][q] for q in part])), 5),
            }
        )

    write_report(
        args.out,
        {
            "dataset": "SciFact (BEIR)",
            "split_for_choosing": "train (809 queries)",
            "folds": FOLDS,
            "fold_seed": FOLD_SEED,
            "fold_sizes": [len(p) for p in parts],
            "setup": {
                "level": "document (BM25 over whole documents, dense max over chunks)",
                "fusion": "weighted, corpus normalisation",
                "candidates_per_leg": CANDIDATES,
                "cache": "off",
                "bm25": "bm25s (method lucene), English stopwords, Snowball stemming",
                "embedding": data.config.embedding.model,
                "chunking": data.config.chunking.model_dump(),
            },
            "rule": __doc__.split("The rule (fixed before the run, applied by the code below):")[1]
            .split("Usage:")[0]
            .strip(),
            "grid": {"k1": list(k1s), "b": list(bs), "alpha": list(alphas)},
            "library_defaults": {"k1": LIBRARY[0], "b": LIBRARY[1], "source": "bm25s.BM25() defaults"},
            "previous_defaults": {"k1": PREVIOUS[0], "b": PREVIOUS[1]},
            "train": grid,
            "candidate": None if candidate is None else {"k1": candidate["k1"], "b": candidate["b"]},
            "winners_on_every_fold": [{"k1": g["k1"], "b": g["b"]} for g in winners],
            "test": test,
            "test_paired": comparisons,
            "chosen": {
                "k1": chosen[0],
                "b": chosen[1],
                "alpha": alpha,
                "reason": reason,
                "k1_b_are_library_defaults": chosen == LIBRARY,
            },
            "alpha_for_chosen": {"by_alpha": alpha_table, "leave_one_fold_out": held_out},
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
