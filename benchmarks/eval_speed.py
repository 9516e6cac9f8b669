"""How long `rag eval` takes on SciFact once the corpus is indexed, and whether flushing changes Lite's search.

    python -m benchmarks.eval_speed   # writes benchmarks/out/eval_speed.json

1. Per split (test: 300 queries, train: 809), on the collection `rag eval` builds in data/milvus.db (built here
   when missing): the unchanged-corpus check `rag eval` starts with, then the evaluation batched (the default:
   ``BATCH_SIZE`` queries per search, then ``LATENCY_SAMPLE`` timed one at a time) and one query at a time
   (``latency_sample=0``, what `rag eval` did before), on one warm engine whose cache is emptied before each pass.
   The two runs are compared query by query: the same ranking, scores equal to rounding, the same metrics.
2. The batched pass of the test split at several batch sizes (how ``BATCH_SIZE`` was chosen).
3. Flush: SciFact's rows (vectors as indexed) upserted into a new collection of a Milvus Lite file under a temporary
   folder, then ``SEARCHES`` dense searches in Milvus (test queries, as the engine's dense leg asks: ``candidates``
   hits, doc ids only) and as many fetches of ``FETCHED`` chunk texts by id, timed before and after
   ``MilvusIndexManager.flush``: unflushed rows sit in Lite's in-memory table.
"""

import argparse
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.config import RAGConfig, load_config
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.quality.evaluation import (
    BATCH_SIZE,
    LATENCY_SAMPLE,
    BeirDataset,
    EvaluationReport,
    Run,
    dataset_alias,
    evaluate,
    evaluation_options,
    load_beir,
)
from rag_core.retrieval.engine import RetrievalEngine, SearchOptions

BATCH_SIZES = (8, 16, 32, 64, 128, 300)
SEARCHES = 100
FETCHED = 100  # chunk texts fetched per query: `rag eval` keeps 100 results
TARGET = {"documents": 8_700, "queries": 1_400, "seconds": 300}  # issue 11's goal, after indexing
T = TypeVar("T")
ROW_FIELDS = ["chunk_id", "doc_id", "source", "position", "text", "metadata", "vector"]


def timed_evaluation(
    engine: RetrievalEngine, dataset: BeirDataset, options: SearchOptions, **settings: int
) -> tuple[EvaluationReport, Run, float]:
    engine.cache.clear()  # every pass computes every query
    started = time.perf_counter()
    report, run = evaluate(engine, dataset, options, **settings)
    return report, run, time.perf_counter() - started


def compare_runs(batched: Run, single: Run) -> dict:
    return {
        "queries_ranked_identically": sum([d for d, _ in batched[q]] == [d for d, _ in single[q]] for q in single),
        "max_score_difference": max(
            (abs(a - b) for q in single for (_, a), (_, b) in zip(batched[q], single[q])), default=0.0
        ),
    }


def split_figures(engine: RetrievalEngine, dataset: BeirDataset, options: SearchOptions, check_s: float) -> dict:
    batched, batched_run, batched_s = timed_evaluation(engine, dataset, options)
    single, single_run, single_s = timed_evaluation(engine, dataset, options, latency_sample=0)
    n = batched.queries
    return {
        "queries": n,
        "unchanged_corpus_check_s": round(check_s, 1),
        "batched": {
            "seconds": round(batched_s, 2),
            "s_per_query": round(batched_s / n, 4),
            "latency_queries": batched.latency_queries,
            **quality(batched),
        },
        "one_at_a_time": {
            "seconds": round(single_s, 2),
            "s_per_query": round(single_s / n, 4),
            "latency_queries": single.latency_queries,
            **quality(single),
        },
        "speedup": round(single_s / batched_s, 2),
        "same_metrics": quality(batched)["metrics"] == quality(single)["metrics"],
        **compare_runs(batched_run, single_run),
    }


def quality(report: EvaluationReport) -> dict:
    figures = report.as_json()
    return {
        "metrics": {k: figures[k] for k in ("ndcg@10", "recall@100", "mrr@10")},
        "latency_ms": figures["latency_ms"],
    }


def batch_sweep(engine: RetrievalEngine, dataset: BeirDataset, options: SearchOptions) -> list[dict]:
    """The batched pass alone (one query timed after it: ``latency_sample`` cannot be 0 here, that is the
    one-at-a-time path)."""
    return [
        {
            "batch_size": size,
            "seconds": round(timed_evaluation(engine, dataset, options, batch_size=size, latency_sample=1)[2], 2),
        }
        for size in BATCH_SIZES
    ]


def timed_ms(operation: Callable[[T], object], inputs: Sequence[T]) -> dict:
    """p50/p95/mean of ``operation`` over ``inputs``, after a first call that loads and warms as a first query would."""
    operation(inputs[0])
    samples = []
    for item in inputs:
        tick = time.perf_counter()
        operation(item)
        samples.append((time.perf_counter() - tick) * 1000)
    p50, p95 = np.percentile(samples, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "mean": round(float(np.mean(samples)), 2)}


def lite_timings(
    lite: MilvusIndexManager, collection: str, vectors: np.ndarray, limit: int, fetches: list[list[str]]
) -> dict:
    """The engine's two Milvus calls on Lite: the dense search (without the in-process copy) and the text fetch."""
    return {
        "search": timed_ms(lambda v: lite.search(collection, [v], limit=limit, output_fields=["doc_id"]), vectors),
        "fetch": timed_ms(lambda ids: lite.get_chunks(collection, ids), fetches),
    }


def flush_figures(
    config: RAGConfig, source: MilvusIndexManager, collection: str, vectors: np.ndarray, limit: int
) -> dict:
    rows = [row for batch in source.iter_rows(collection, ROW_FIELDS) for row in batch]
    state = source.state(collection)
    with tempfile.TemporaryDirectory() as folder:
        lite = MilvusIndexManager(
            config.milvus.model_copy(update={"uri": str(Path(folder) / "flush.db"), "consistency_level": "Strong"}),
            config.index,
        )
        target = lite.create_version("flush_probe", state.version)
        started = time.perf_counter()
        for start in range(0, len(rows), config.ingestion.record_batch_size):
            lite.upsert(target, rows[start : start + config.ingestion.record_batch_size])
        upsert_s = time.perf_counter() - started
        rng = np.random.default_rng(0)
        fetches = [[rows[i]["chunk_id"] for i in rng.choice(len(rows), FETCHED, replace=False)] for _ in vectors]
        before = lite_timings(lite, target, vectors, limit, fetches)
        started = time.perf_counter()
        lite.flush(target)
        flush_s = time.perf_counter() - started
        after = lite_timings(lite, target, vectors, limit, fetches)
        lite.close()
    return {
        "rows": len(rows),
        "searches": len(vectors),
        "limit": limit,
        "fetched": FETCHED,
        "upsert_s": round(upsert_s, 1),
        "flush_s": round(flush_s, 2),
        "before_flush_ms": before,
        "after_flush_ms": after,
        "search_p50_ratio": round(before["search"]["p50"] / after["search"]["p50"], 1),
        "fetch_p50_ratio": round(before["fetch"]["p50"] / after["fetch"]["p50"], 1),
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--out", type=Path, default=OUT / "eval_speed.json")
    args = parser.parse_args()
    config = load_config()
    alias = dataset_alias(args.dataset)
    manager = MilvusIndexManager(config.milvus, config.index)
    splits = {}
    for split in ("test", "train"):
        dataset = load_beir(args.dataset, split)
        started = time.perf_counter()
        ingest = ingest_path(dataset.corpus, RagContext(config, manager=manager), collection=alias, prune=True)
        check_s = time.perf_counter() - started
        if split == "test":
            documents, rows = ingest.documents, ingest.sync.rows
            engine = RagContext(config, manager=manager).engine(alias)
            options = evaluation_options(engine)
            engine.search_many(["warm: the query encoder and the client-side index load"], options)
            sweep = batch_sweep(engine, dataset, options)
            vectors = engine.embedder.encode_queries(list(dataset.queries.values())[:SEARCHES])
        splits[split] = split_figures(engine, dataset, options, check_s)
    flush = flush_figures(config, manager, manager.resolve(alias), vectors, options.candidates)
    per_query = max(s["batched"]["s_per_query"] for s in splits.values())
    scale = TARGET["documents"] / documents
    report = {
        "dataset": args.dataset.name,
        "documents": documents,
        "chunks": rows,
        "store": "Milvus Lite",
        "settings": {
            "batch_size": BATCH_SIZE,
            "latency_sample": LATENCY_SAMPLE,
            "mode": options.mode,
            "candidates": options.candidates,
            "document_level": options.document_level,
        },
        "splits": splits,
        "batch_sizes": sweep,
        "flush": flush,
        "target": TARGET
        | {
            "corpus_scale": round(scale, 2),
            "batched_s_at_measured_rate": round(per_query * TARGET["queries"], 1),
            "batched_s_if_linear_in_corpus": round(per_query * TARGET["queries"] * scale, 1),
        },
    }
    write_report(args.out, report)
    print(report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
