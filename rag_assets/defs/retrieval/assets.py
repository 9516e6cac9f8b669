"""Retrieval assets: the client-side index the engine reads, and measured quality on a BEIR dataset."""

import time
from pathlib import Path

import dagster as dg
from pydantic import Field

from rag_assets.defs.ingestion.assets import semantic_index
from rag_assets.metadata import to_metadata
from rag_assets.resources import MilvusResource, RetrievalEngineResource
from rag_core.quality.evaluation import evaluate_dataset
from rag_core.retrieval.client_index import ChunkRow, ClientIndex
from rag_core.retrieval.engine import client_index_dir
from rag_core.ingest.parquet_store import ParquetTable

VECTOR_BATCH = 4096


@dg.asset(group_name="retrieval", deps=[semantic_index], kinds={"bm25"},
          description="Client-side BM25 over chunks and over whole documents, and the moments of the vectors: "
                      "the lexical leg where Milvus has no BM25 (2.3/2.4, Lite) and the corpus normalisation.")
def bm25_index(chunks: ParquetTable, embeddings: ParquetTable, milvus: MilvusResource,
               retrieval: RetrievalEngineResource) -> dg.MaterializeResult:
    started = time.perf_counter()
    table = chunks.file.read(columns=["chunk_id", "doc_id", "position", "text"])
    rows = [ChunkRow(**row) for row in table.to_pylist()]
    vectors = (batch.column("vector").flatten().to_numpy().reshape(len(batch), -1)
               for batch in embeddings.iter_batches(VECTOR_BATCH, columns=["vector"]))
    collection = milvus.manager().serving(milvus.collection)
    config = retrieval.rag_config()
    index = ClientIndex.build(rows, vectors, collection=collection, k1=config.index.bm25_k1, b=config.index.bm25_b)
    folder = client_index_dir(config, milvus.collection)
    index.save(folder)
    return dg.MaterializeResult(metadata={
        "chunks": len(index), "documents": len(index.documents), "collection": collection,
        "path": dg.MetadataValue.path(str(folder)), "seconds": round(time.perf_counter() - started, 3),
        "used_by_queries": retrieval.engine().lexical_backend == "local",
    })


class EvaluationConfig(dg.Config):
    dataset: str = Field(description="A BEIR-format folder: corpus.jsonl(.gz), queries.jsonl, qrels/<split>.tsv.")
    split: str = "test"
    mode: str = "hybrid"


@dg.asset(group_name="retrieval", kinds={"beir"}, deps=[semantic_index],
          description="nDCG@10 / Recall@100 / MRR@10 of the retrieval engine on a BEIR dataset.")
def retrieval_evaluation(config: EvaluationConfig, retrieval: RetrievalEngineResource) -> dg.MaterializeResult:
    dataset = Path(config.dataset)
    if not dataset.is_dir():
        raise dg.Failure(f"Evaluation dataset {dataset.resolve()} is not a folder; set the asset's config "
                         "'dataset' to a BEIR folder.")
    report, _, options = evaluate_dataset(retrieval.rag_config(), dataset, split=config.split, mode=config.mode)
    return dg.MaterializeResult(metadata=to_metadata({
        "ndcg_at_10": report.ndcg_at_10, "recall_at_100": report.recall_at_100, "mrr_at_10": report.mrr_at_10,
        "queries": report.queries, "latency_p50_ms": report.latency_p50_ms, "latency_p95_ms": report.latency_p95_ms,
        "mode": options.mode, "fusion": options.fusion, "alpha": options.alpha, "dataset": str(dataset),
    }))
