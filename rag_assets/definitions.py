"""The code location: assets, checks, jobs, sensors and resources, configured from rag_core's config."""

import os

import dagster as dg

from rag_assets import assets, checks, retrieval
from rag_assets.io_manager import ParquetIOManager
from rag_assets.jobs import ingestion_job
from rag_assets.resources import (AssetStorage, CorpusResource, EmbedderResource, MilvusResource,
                                  RetrievalEngineResource)
from rag_assets.sensors import raw_documents_sensor
from rag_core.config import RAGConfig, load_config


def _secret(variable: str) -> dg.EnvVar | None:
    """Secrets stay environment references in Dagster, resolved at run time and never shown in run config."""
    return dg.EnvVar(variable) if os.environ.get(variable) else None


def build_resources(config: RAGConfig) -> dict[str, object]:
    storage = AssetStorage(base_dir=config.ingestion.storage_dir)
    m, i, e, c = config.milvus, config.index, config.embedding, config.chunking
    p, r = config.pipeline, config.retrieval
    embedder = EmbedderResource(model=e.model, device=e.device, batch_size=e.batch_size,
                                chunk_size=c.chunk_size, chunk_overlap=c.chunk_overlap)
    milvus = MilvusResource(
        uri=m.uri, collection=m.collection, user=m.user, password=_secret("MILVUS_PASSWORD"),
        token=_secret("MILVUS_TOKEN"), db_name=m.db_name, secure=m.secure, timeout_s=m.timeout_s,
        retry_attempts=m.retry_attempts, retry_backoff_s=m.retry_backoff_s, enable_sharding=m.enable_sharding,
        num_shards=m.num_shards, M=i.M, efConstruction=i.efConstruction, ef=i.ef, metric_type=i.metric_type,
        bm25_k1=i.bm25_k1, bm25_b=i.bm25_b,
    )
    return {
        "storage": storage,
        "io_manager": ParquetIOManager(storage=storage),
        "corpus": CorpusResource(docs_dir=config.ingestion.docs_dir, max_file_bytes=config.ingestion.max_file_bytes,
                                 record_batch_size=config.ingestion.record_batch_size),
        "embedder": embedder,
        "milvus": milvus,
        "retrieval": RetrievalEngineResource(
            milvus=milvus, embedder=embedder, hybrid_alpha=p.hybrid_alpha, top_k=p.top_k, rerank_top_k=p.rerank_top_k,
            target_latency_ms=p.target_latency_ms, lexical_backend=r.lexical_backend, fusion=r.fusion,
            normalization=r.normalization,
            candidates=r.candidates, bm25_dir=r.bm25_dir, metrics_dir=r.metrics_dir,
            reranking_method=config.reranking.method, reranking_model=config.reranking.model),
    }


def build_definitions(config: RAGConfig) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([assets, retrieval]),
        asset_checks=dg.load_asset_checks_from_modules([checks]),
        jobs=[ingestion_job, retrieval.query_job],
        sensors=[raw_documents_sensor],
        resources=build_resources(config),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_config())
