"""Dagster resources: thin, configurable handles on the rag_core objects the assets use.

Defaults come from rag_core's config (config.yaml, .env, environment), so the CLI and Dagster agree; secrets
are given as ``dg.EnvVar`` so they are read at run time and never stored in run config.
"""

from functools import lru_cache
from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from rag_core.chunking import TokenChunker
from rag_core.config import (EmbeddingConfig, IndexConfig, MilvusConfig, PipelineConfig, RAGConfig,
                             RerankingConfig, RetrievalConfig)
from rag_core.embedder import Embedder, shared_embedder
from rag_core.index_manager import MilvusIndexManager
from rag_core.parquet_store import ParquetStore
from rag_core.retrieval import RetrievalEngine


class EmbedderResource(dg.ConfigurableResource):
    model: str = Field(description="bundled:all-MiniLM-L6-v2, a sentence-transformers model name, or a path.")
    device: str = "auto"
    batch_size: int = 64
    chunk_size: int = 200
    chunk_overlap: int = 32

    def embedding_config(self) -> EmbeddingConfig:
        return EmbeddingConfig(model=self.model, device=self.device, batch_size=self.batch_size)

    def embedder(self) -> Embedder:
        return shared_embedder(self.embedding_config())

    def chunker(self) -> TokenChunker:
        embedder = self.embedder()
        return TokenChunker(embedder.tokenizer, self.chunk_size, self.chunk_overlap, embedder.max_seq_length)


class MilvusResource(dg.ConfigurableResource):
    uri: str = Field(description="A file path = Milvus Lite; http(s)://host:19530 = a Milvus server.")
    collection: str = "semantic_index"
    user: str = ""
    password: Optional[str] = None
    token: Optional[str] = None
    db_name: str = ""
    secure: bool = False
    timeout_s: float = 10.0
    retry_attempts: int = 4
    retry_backoff_s: float = 0.5
    enable_sharding: bool = False
    num_shards: int = 1
    M: int = 16
    efConstruction: int = 200
    ef: int = 64
    metric_type: str = "COSINE"
    bm25_k1: float = 0.9
    bm25_b: float = 0.4

    def manager(self) -> MilvusIndexManager:
        return MilvusIndexManager(self.milvus_config(), self.index_config())

    def index_config(self) -> IndexConfig:
        return IndexConfig(M=self.M, efConstruction=self.efConstruction, ef=self.ef, metric_type=self.metric_type,
                           bm25_k1=self.bm25_k1, bm25_b=self.bm25_b)

    def milvus_config(self) -> MilvusConfig:
        return MilvusConfig(
            uri=self.uri, collection=self.collection, user=self.user, password=self.password or "",
            token=self.token or "", db_name=self.db_name, secure=self.secure, timeout_s=self.timeout_s,
            retry_attempts=self.retry_attempts, retry_backoff_s=self.retry_backoff_s,
            enable_sharding=self.enable_sharding, num_shards=self.num_shards,
        )


class CorpusResource(dg.ConfigurableResource):
    """Where raw documents come from and how they are read."""

    docs_dir: str
    max_file_bytes: int = 50 * 1024 * 1024
    record_batch_size: int = 512

    @property
    def path(self) -> Path:
        return Path(self.docs_dir)


class AssetStorage(dg.ConfigurableResource):
    """The folder of Parquet asset tables; assets read their own previous table from it to reuse work."""

    base_dir: str

    def store(self) -> ParquetStore:
        return ParquetStore(self.base_dir)


@lru_cache(maxsize=4)
def _engine(config_json: str) -> RetrievalEngine:
    """One engine (model, caches, latency window) per process and configuration."""
    return RetrievalEngine(RAGConfig.model_validate_json(config_json))


class RetrievalEngineResource(dg.ConfigurableResource):
    """The hybrid retrieval engine for on-demand queries, over the same Milvus and model as the ingestion."""

    milvus: MilvusResource
    embedder: EmbedderResource
    hybrid_alpha: float = 0.5
    top_k: int = 20
    rerank_top_k: int = 5
    target_latency_ms: float = 80.0
    lexical_backend: str = "auto"
    fusion: str = "weighted"
    normalization: str = "zscore"
    candidates: int = 100
    bm25_dir: str = "data/assets/bm25_index"
    metrics_dir: str = "data/metrics"
    reranking_method: str = "none"
    reranking_model: str = ""

    def rag_config(self) -> RAGConfig:
        return RAGConfig(
            milvus=self.milvus.milvus_config(), index=self.milvus.index_config(),
            embedding=self.embedder.embedding_config(),
            pipeline=PipelineConfig(hybrid_alpha=self.hybrid_alpha, top_k=self.top_k, rerank_top_k=self.rerank_top_k,
                                    target_latency_ms=self.target_latency_ms),
            retrieval=RetrievalConfig(lexical_backend=self.lexical_backend, fusion=self.fusion,
                                      normalization=self.normalization,
                                      candidates=self.candidates, bm25_dir=self.bm25_dir, metrics_dir=self.metrics_dir),
            reranking=RerankingConfig(method=self.reranking_method, model=self.reranking_model),
        )

    def engine(self) -> RetrievalEngine:
        config = self.rag_config()
        return _engine(config.model_dump_json(context={"secrets": True}))
