"""What the query log costs a query, measured side by side in one run (goal: p95 overhead <= 1 ms).

Two engines over the same Milvus Lite index of this project's docs/, one logging and one not, answer the same
queries in alternation with the cache off; the difference of their per-query latency percentiles is the log's
cost on the query path. The cost of ``QueryLog.record`` alone (what the query path does: no I/O) is timed too.

    python -m benchmarks.query_log_overhead     # writes benchmarks/out/query_log_overhead.json
"""

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.report import OUT, write_report
from rag_core.config import RAGConfig
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.models.embedder import shared_embedder
from tests.support.engines import engine_for

DOCS = Path(__file__).resolve().parents[1] / "docs"
ROUNDS = 400
QUERIES = [
    "How do I check that Milvus is healthy?",
    "rollback to the previous version",
    "what does compaction do",
    "BM25 client-side index",
    "interrupting a run",
    "which files are read",
    "query cache key",
    "corpus normalisation of the dense leg",
]


def percentiles(samples: list[float]) -> dict[str, float]:
    return {f"p{q}": round(float(np.percentile(samples, q)), 4) for q in (50, 95, 99)}


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="query-log-overhead-"))
    base = {
        "milvus": {"uri": str(work / "milvus.db")},
        "retrieval": {"cache_size": 0, "bm25_dir": str(work / "bm25"), "metrics_dir": str(work / "metrics")},
        "quality": {"query_log_dir": str(work / "query_log")},
    }
    logging_on = RAGConfig.model_validate(base)
    logging_off = RAGConfig.model_validate(base | {"quality": {"query_log": False}})
    embedder = shared_embedder(logging_on.embedding)
    ingest_path(DOCS, RagContext(logging_on, embedder=embedder))
    engines = {
        "with_log": engine_for(logging_on, embedder=embedder),
        "without_log": engine_for(logging_off, embedder=embedder),
    }
    for engine in engines.values():  # cold starts (model, client-side index) out of the way
        engine.search(QUERIES[0])
    latency: dict[str, list[float]] = {name: [] for name in engines}
    for i in range(ROUNDS):
        order = list(engines.items()) if i % 2 == 0 else list(reversed(engines.items()))
        for name, engine in order:
            started = time.perf_counter()
            engine.search(QUERIES[i % len(QUERIES)])
            latency[name].append((time.perf_counter() - started) * 1000)
    log = engines["with_log"].query_log
    record_us = []
    for i in range(5000):
        started = time.perf_counter()
        log.record(
            normalised_query=f"q{i}",
            query=f"q{i}",
            query_vector=np.zeros(384, np.float32),
            mode="hybrid",
            settings={"mode": "hybrid"},
            collection="c",
            data_version=1,
            result_ids=["a"] * 5,
            result_scores=[1.0] * 5,
            latency_ms={"retrieval": 10.0},
            cache_hit=False,
            signals={},
        )
        record_us.append((time.perf_counter() - started) * 1e6)
    log.flush()
    on, off = percentiles(latency["with_log"]), percentiles(latency["without_log"])
    write_report(
        OUT / "query_log_overhead.json",
        {
            "setup": f"{ROUNDS} queries per engine, alternating, cache off, Milvus Lite, this project's docs/",
            "query_ms": {"with_log": on, "without_log": off},
            "overhead_ms": {q: round(on[q] - off[q], 4) for q in on},
            "record_call_us": percentiles(record_us),
            "goal": "p95 overhead <= 1 ms",
        },
    )


if __name__ == "__main__":
    main()
