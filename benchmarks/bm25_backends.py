"""Milvus Lite's BM25 (BM25 function + sparse index) against the client-side bm25s index, on the same chunks.

This is the measurement behind ``retrieval.lexical_backend: auto`` choosing the client-side index on Milvus Lite.
Uses the `rag eval` SciFact collection (run `rag eval --dataset ../shared/data/scifact` once first).
Usage: python -m benchmarks.bm25_backends
"""

import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.report import write_report
from rag_core.config import load_config
from rag_core.quality.evaluation import dataset_alias, load_beir
from tests.support.engines import engine_for

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
QUERIES, LIMIT = 100, 100


def main() -> int:
    queries = list(load_beir(SCIFACT, "test").queries.values())[:QUERIES]
    alias = dataset_alias(SCIFACT)
    engine = engine_for(load_config(), alias=alias)
    collection = engine.manager.serving(alias)
    index = engine.client_index().chunks
    engine.manager.search_bm25(collection, queries[:1], limit=LIMIT)  # warm up
    milvus, local = [], []
    for query in queries:
        tick = time.perf_counter()
        engine.manager.search_bm25(collection, [query], limit=LIMIT)
        milvus.append((time.perf_counter() - tick) * 1000)
        tick = time.perf_counter()
        index.search([query], LIMIT)
        local.append((time.perf_counter() - tick) * 1000)
    p = lambda values: dict(zip(("p50", "p95"), np.percentile(values, [50, 95]).round(2).tolist()))  # noqa: E731
    write_report(
        "benchmarks/out/bm25-backends.json",
        {
            "chunks": len(index),
            "queries": QUERIES,
            "server": engine.manager.capabilities.version,
            "milvus_bm25_ms": p(milvus),
            "bm25s_ms": p(local),
        },
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
