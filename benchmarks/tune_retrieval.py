"""Choose the fusion settings on SciFact's *train* split, then score every mode end to end on *test*.

Each leg (dense, BM25) is retrieved once per train query through the engine; fusion settings (method,
normalisation within the candidates, alpha) are then compared offline with the engine's own ``fuse``. The
``corpus`` normalisation needs each query's moments over the whole index, so its alphas are scored end to end on
train. Test (300 queries) is never used to choose: it is scored once per setting, end to end, for the report. The dataset's index is the `rag eval`
collection (built on first use, reused afterwards).
Usage: python -m benchmarks.tune_retrieval [--dataset ../shared/data/scifact] [--out benchmarks/out/tuning.json]
"""

import argparse
import sys
from pathlib import Path

from benchmarks.report import write_report
from rag_core.config import load_config
from rag_core.quality.evaluation import dataset_alias, evaluate, load_beir, score_run
from rag_core.retrieval.fusion import LegHit, fuse
from rag_core.ingest.direct import ingest_path
from rag_core.retrieval.engine import RetrievalEngine

ALPHAS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8)
CANDIDATES = 300


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=str(Path(__file__).resolve().parents[2] / "shared/data/scifact"))
    parser.add_argument("--out", default="benchmarks/out/tuning.json")
    args = parser.parse_args()
    root = Path(args.dataset)
    config = load_config()
    alias = dataset_alias(root)
    train, test = load_beir(root, "train"), load_beir(root, "test")
    ingest_path(train.corpus, config, collection=alias)
    engine = RetrievalEngine(config, alias=alias)

    def options(mode: str, **fusion):  # noqa: ANN003, ANN202
        return engine.options(mode=mode, top_k=100, rerank_top_k=100, candidates=CANDIDATES, document_level=True,
                              **fusion)

    def legs(mode: str) -> dict[str, list[LegHit]]:
        found = {}
        for qid, text in train.queries.items():
            result = engine.search_many([text], options(mode))[0]
            found[qid] = [LegHit(c.doc_id, c.dense_score if mode == "dense" else c.lexical_score)
                          for c in result.results]
        return found

    dense, lexical = legs("dense"), legs("bm25")

    def train_ndcg(**settings) -> float:  # noqa: ANN003
        run = {q: [(h.key, h.fused_score) for h in fuse(dense[q], lexical[q], **settings) if h.key != q][:100]
               for q in train.queries}
        return round(score_run(run, train.qrels)[0], 5)

    grid = {f"weighted-{n}@{a}": train_ndcg(method="weighted", normalization=n, alpha=a)
            for n in ("minmax", "zscore") for a in ALPHAS}
    grid["rrf"] = train_ndcg(method="rrf")
    grid |= {f"weighted-corpus@{a}": round(evaluate(engine, train, options(
        "hybrid", fusion="weighted", normalization="corpus", alpha=a))[0].ndcg_at_10, 5) for a in ALPHAS}

    def settings(name: str) -> dict:
        if name == "rrf":
            return {"fusion": "rrf"}
        return {"fusion": "weighted", "normalization": name.split("-")[1].split("@")[0],
                "alpha": float(name.split("@")[1])}

    def best_with(prefix: str) -> str:
        return max((n for n in grid if n.startswith(prefix)), key=grid.get)

    chosen = max(grid, key=grid.get)

    def test_scores(mode: str, **fusion) -> dict:  # noqa: ANN003
        return evaluate(engine, test, options(mode, **fusion))[0].as_json()

    report = {
        "bm25": {"k1": config.index.bm25_k1, "b": config.index.bm25_b}, "chunking": config.chunking.model_dump(),
        "train_ndcg@10": grid, "chosen_on_train": f"hybrid {chosen}",
        "test": {"dense": test_scores("dense"), "bm25": test_scores("bm25"),
                 "hybrid rrf": test_scores("hybrid", fusion="rrf"),
                 **{f"hybrid {name}": test_scores("hybrid", **settings(name))  # once each: a repeat hits the cache
                    for name in dict.fromkeys(best_with(p) for p in ("weighted-minmax", "weighted-zscore",
                                                                      "weighted-corpus", chosen))}},
    }
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
