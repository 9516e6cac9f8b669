"""Cross-encoder reranking latency per candidate, on real SciFact candidates.

No trained cross-encoder is available offline here. Latency depends on the architecture, not on the weights, so by
default this builds a cross-encoder with the architecture of cross-encoder/ms-marco-MiniLM-L6-v2 (6 layers, 384
wide, 12 heads: the bundled all-MiniLM-L6-v2 body with a fresh one-logit head). Its scores are meaningless; its
timings are those of that model. Pass --model NAME_OR_PATH to time a real one.
Usage: python -m benchmarks.rerank_latency [--model PATH] [--queries 100]
"""

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.report import write_report
from rag_core.config import load_config
from rag_core.models.embedder import resolve_model_path
from rag_core.models.rerank import CrossEncoderReranker
from rag_core.quality.evaluation import dataset_alias, load_beir
from tests.support.engines import engine_for

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
CANDIDATES = (5, 10, 20, 50)
BUILT = Path("benchmarks/out/minilm-l6-cross-encoder")


def minilm_shaped_cross_encoder() -> str:
    from sentence_transformers import CrossEncoder

    if not (BUILT / "config.json").is_file():
        CrossEncoder(resolve_model_path("bundled:all-MiniLM-L6-v2"), num_labels=1, max_length=512).save(str(BUILT))
    return str(BUILT)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="")
    parser.add_argument("--queries", type=int, default=100)
    args = parser.parse_args()
    model = args.model or minilm_shaped_cross_encoder()
    engine = engine_for(load_config(), alias=dataset_alias(SCIFACT))
    queries = list(load_beir(SCIFACT, "test").queries.values())[: args.queries]
    candidates = {
        q: [c.text for c in engine.search(q, top_k=max(CANDIDATES), rerank_top_k=max(CANDIDATES)).results]
        for q in queries
    }
    reranker = CrossEncoderReranker(model, device="cpu")
    reranker.scores(queries[0], candidates[queries[0]][:5])  # loads the model
    report = {
        "model": model if args.model else "MiniLM-L6 cross-encoder architecture (untrained head)",
        "queries": len(queries),
        "max_seq_length": reranker.model.max_seq_length,
        "mean_candidate_chars": round(float(np.mean([len(t) for ts in candidates.values() for t in ts])), 1),
    }
    for n in CANDIDATES:
        per_query = []
        for query in queries:
            tick = time.perf_counter()
            reranker.scores(query, candidates[query][:n])
            per_query.append((time.perf_counter() - tick) * 1000)
        p50, p95 = np.percentile(per_query, [50, 95])
        report[f"{n} candidates"] = {
            "p50_ms": round(float(p50), 1),
            "p95_ms": round(float(p95), 1),
            "p50_ms_per_candidate": round(float(p50) / n, 2),
        }
    write_report("benchmarks/out/rerank-latency.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
