"""Retrieval assets: the client-side index the engine reads, and measured quality on a BEIR dataset."""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from rag_assets.defs.ingestion.assets import semantic_index
from rag_assets.metadata import to_metadata
from rag_assets.resources import RetrievalEngineResource
from rag_core.lifecycle.evaluate import evaluate_dataset
from rag_core.quality.evaluation import LATENCY_SAMPLE
from rag_core.retrieval.engine import client_index_dir


@dg.asset(
    group_name="retrieval",
    deps=[semantic_index],
    kinds={"bm25"},
    description="Client-side BM25 over chunks and over whole documents, and the moments of the vectors, built "
    "from every source's rows in Milvus: the lexical leg where Milvus has no BM25 (2.3/2.4, Lite) "
    "and the corpus normalisation.",
)
def bm25_index(retrieval: RetrievalEngineResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    engine = retrieval.engine()
    engine.invalidate()  # the sync just ran: read the new data version now
    index = engine.client_index()
    return dg.MaterializeResult(
        metadata={
            "chunks": len(index),
            "documents": len(index.documents),
            "collection": index.collection,
            "data_version": index.data_version,
            "path": dg.MetadataValue.path(str(client_index_dir(engine.config, engine.alias))),
            "seconds": round(time.perf_counter() - started, 3),
            "used_by_queries": engine.lexical_backend == "local",
        }
    )


class EvaluationConfig(dg.Config):
    dataset: str = Field(description="A BEIR-format folder: corpus.jsonl(.gz), queries.jsonl, qrels/<split>.tsv.")
    split: str = "test"
    mode: str = "hybrid"
    latency_sample: int = Field(
        LATENCY_SAMPLE,
        ge=0,
        description="Queries timed one at a time for the latency "
        "figures (a fixed seeded sample; the quality figures use every query, batched); "
        "0: every query.",
    )


@dg.asset(
    group_name="retrieval",
    kinds={"beir"},
    deps=[semantic_index],
    description="nDCG@10 / Recall@100 / MRR@10 of the retrieval engine on a BEIR dataset.",
)
def retrieval_evaluation(config: EvaluationConfig, retrieval: RetrievalEngineResource) -> dg.MaterializeResult:
    dataset = Path(config.dataset)
    if not dataset.is_dir():
        raise dg.Failure(
            f"Evaluation dataset {dataset.resolve()} is not a folder; set the asset's config "
            "'dataset' to a BEIR folder."
        )
    started = time.perf_counter()
    report, _, options = evaluate_dataset(
        retrieval.context(), dataset, split=config.split, mode=config.mode, latency_sample=config.latency_sample
    )
    return dg.MaterializeResult(
        metadata=to_metadata(
            {
                "ndcg_at_10": report.ndcg_at_10,
                "recall_at_100": report.recall_at_100,
                "mrr_at_10": report.mrr_at_10,
                "queries": report.queries,
                "latency_p50_ms": report.latency_p50_ms,
                "latency_p95_ms": report.latency_p95_ms,
                "latency_queries": report.latency_queries,
                "mode": options.mode,
                "fusion": options.fusion,
                "alpha": options.alpha_label,
                "dataset": str(dataset),
                "seconds": round(time.perf_counter() - started, 3),
            }
        )
    )
