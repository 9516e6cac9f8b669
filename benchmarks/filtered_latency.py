"""A filtered query against an unfiltered one, side by side on SciFact / Milvus Lite: latency, where the filter
runs in each leg, and whether a filtered query still gets a full top-k of matching documents (the ground issue 20's
access labels will stand on).

The filter lets through a seeded third of the documents (``doc_id in [...]``). Each of the 300 test queries is
searched once unfiltered and once filtered, one at a time, in alternating order, with the query cache off. The
first filtered query pays for Milvus evaluating the expression and the legs' masks (once per filter and data
version); it is reported apart and left out of the percentiles. nDCG@10 of the filtered run is scored against the
qrels restricted to the documents the filter lets through.

Usage: python -m benchmarks.filtered_latency [--work DIR]   (DIR: probe_correlation's, to reuse its index)
"""

import argparse
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT
from benchmarks.probe_correlation import SHIPPED, indexed_configurations, subcorpus
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.quality.evaluation import ndcg_at_k

SHARE = 1 / 3
SEED = 0
TOP_K = 10


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--distractors", type=int, default=1500)
    parser.add_argument("--work", type=Path, help="probe_correlation's --work folder, to reuse its index")
    parser.add_argument("--out", default=str(OUT / "filtered_latency.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="filtered-latency-") as scratch:
        root = args.work or Path(scratch)
        real = subcorpus(args.dataset, root / "corpus", args.distractors)
        context = indexed_configurations(load_config(), root, real, started, only=SHIPPED)[SHIPPED]
        documents = sorted(json.loads(line)["_id"] for line in real.corpus.open(encoding="utf-8"))
        allowed = set(random.Random(SEED).sample(documents, round(len(documents) * SHARE)))
        expression = f"doc_id in {json.dumps(sorted(allowed))}"
        engine = context.engine()
        options = {"top_k": max(TOP_K, context.config.pipeline.top_k), "rerank_top_k": TOP_K, "document_level": True}
        engine.search("warm up the encoder and the client-side index", **options)
        tick = time.perf_counter()
        engine.search("warm up the filter", filter=expression, **options)
        first_filtered_ms = (time.perf_counter() - tick) * 1000
        wall = {"unfiltered": [], "filtered": []}
        stages = {"unfiltered": [], "filtered": []}
        outside, short, ndcg = 0, 0, []
        restricted = {q: {d: g for d, g in judged.items() if d in allowed} for q, judged in real.qrels.items()}
        for number, (qid, query) in enumerate(real.queries.items()):
            order = ("unfiltered", "filtered") if number % 2 == 0 else ("filtered", "unfiltered")
            for kind in order:
                tick = time.perf_counter()
                result = engine.search(query, filter=expression if kind == "filtered" else "", **options)
                wall[kind].append((time.perf_counter() - tick) * 1000)
                stages[kind].append(result.timings_ms)
                if kind == "filtered":
                    found = [c.doc_id for c in result.results]
                    outside += sum(d not in allowed for d in found)
                    short += len(found) < TOP_K
                    if any(g > 0 for g in restricted.get(qid, {}).values()):
                        ndcg.append(ndcg_at_k(found, restricted[qid], 10))
    figures = {
        kind: {"wall_ms": percentiles(values)}
        | {
            f"{stage}_ms": percentiles([s.get(stage, 0.0) for s in stages[kind]])
            for stage in ("embed", "dense", "sparse", "fetch")
        }
        for kind, values in wall.items()
    }
    write_report(
        args.out,
        {
            "documents": len(documents),
            "allowed_documents": len(allowed),
            "queries": len(wall["filtered"]),
            "dense_search": engine.dense_mirror_metric and "the client's copy of the vectors" or "Milvus",
            "lexical": engine.lexical_backend,
            "first_filtered_query_ms": round(first_filtered_ms, 1),
            "latency": figures,
            "p95_ratio": round(figures["filtered"]["wall_ms"]["p95"] / figures["unfiltered"]["wall_ms"]["p95"], 3),
            "filtered_results_outside_the_filter": outside,
            "filtered_queries_short_of_top_k": short,
            "filtered_ndcg_at_10_on_restricted_qrels": round(float(np.mean(ndcg)), 4) if ndcg else None,
            "restricted_qrels_queries": len(ndcg),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
