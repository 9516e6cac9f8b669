"""Dagster resources: thin, configurable handles on the rag_core objects the assets use.

Defaults come from rag_core's config (config.yaml, .env, environment), so the CLI and Dagster agree; secrets
are given as ``dg.EnvVar`` so they are read at run time and never stored in run config.
"""

from functools import lru_cache
from pathlib import Path
from typing import Any, Optional

import dagster as dg
from pydantic import Field

from rag_core.chunking import TokenChunker
from rag_core.config import (ChunkingConfig, EmbeddingConfig, IndexConfig, MilvusConfig, PipelineConfig, RAGConfig,
                             RerankingConfig, RetrievalConfig)
from rag_core.embedder import Embedder, shared_embedder
from rag_core.index_manager import MilvusIndexManager
from rag_core.parquet_store import ParquetStore
from rag_core.retrieval import RetrievalEngine


def _default(section: type, field: str) -> Any:  # noqa: ANN401 - whatever the field's type is
    return section.model_fields[field].default


class EmbedderResource(dg.ConfigurableResource):
    model: str = Field(description="bundled:all-MiniLM-L6-v2, a sentence-transformers model name, or a path.")
    device: str = _default(EmbeddingConfig, "device")
    batch_size: int = _default(EmbeddingConfig, "batch_size")
    normalize: bool = _default(EmbeddingConfig, "normalize")
    query_prompt: str = _default(EmbeddingConfig, "query_prompt")
    document_prompt: str = _default(EmbeddingConfig, "document_prompt")
    query_precision: str = _default(EmbeddingConfig, "query_precision")
    chunk_size: int = _default(ChunkingConfig, "chunk_size")
    chunk_overlap: int = _default(ChunkingConfig, "chunk_overlap")

    def embedding_config(self) -> EmbeddingConfig:
        return EmbeddingConfig(**{name: getattr(self, name) for name in EmbeddingConfig.model_fields})

    def embedder(self) -> Embedder:
        return shared_embedder(self.embedding_config())

    def chunker(self) -> TokenChunker:
        embedder = self.embedder()
        return TokenChunker(embedder.tokenizer, self.chunk_size, self.chunk_overlap, embedder.max_seq_length)


class MilvusResource(dg.ConfigurableResource):
    uri: str = Field(description="A file path = Milvus Lite; http(s)://host:19530 = a Milvus server.")
    collection: str = _default(MilvusConfig, "collection")
    user: str = ""
    password: Optional[str] = None
    token: Optional[str] = None
    db_name: str = ""
    secure: bool = False
    server_pem_path: str = ""
    server_name: str = ""
    ca_pem_path: str = ""
    client_pem_path: str = ""
    client_key_path: str = ""
    timeout_s: float = _default(MilvusConfig, "timeout_s")
    retry_attempts: int = _default(MilvusConfig, "retry_attempts")
    retry_backoff_s: float = _default(MilvusConfig, "retry_backoff_s")
    enable_sharding: bool = False
    num_shards: int = _default(MilvusConfig, "num_shards")
    consistency_level: str = _default(MilvusConfig, "consistency_level")
    M: int = _default(IndexConfig, "M")
    efConstruction: int = _default(IndexConfig, "efConstruction")
    ef: int = _default(IndexConfig, "ef")
    metric_type: str = _default(IndexConfig, "metric_type")
    bm25_k1: float = _default(IndexConfig, "bm25_k1")
    bm25_b: float = _default(IndexConfig, "bm25_b")

    def manager(self) -> MilvusIndexManager:
        return MilvusIndexManager(self.milvus_config(), self.index_config())

    def index_config(self) -> IndexConfig:
        return IndexConfig(**{name: getattr(self, name) for name in IndexConfig.model_fields if name != "index_type"})

    def milvus_config(self) -> MilvusConfig:
        settings = {name: getattr(self, name) for name in MilvusConfig.model_fields}
        return MilvusConfig(**settings | {"password": self.password or "", "token": self.token or ""})


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
    # Every pipeline, retrieval and reranking setting (reranking ones prefixed), with rag_core's own defaults, so
    # that Dagster queries behave as `rag query` does and the two can never drift apart.
    target_latency_ms: float = _default(PipelineConfig, "target_latency_ms")
    hybrid_alpha: float = _default(PipelineConfig, "hybrid_alpha")
    top_k: int = _default(PipelineConfig, "top_k")
    rerank_top_k: int = _default(PipelineConfig, "rerank_top_k")
    lexical_backend: str = _default(RetrievalConfig, "lexical_backend")
    fusion: str = _default(RetrievalConfig, "fusion")
    normalization: str = _default(RetrievalConfig, "normalization")
    rrf_k: int = _default(RetrievalConfig, "rrf_k")
    candidates: int = _default(RetrievalConfig, "candidates")
    document_level: bool = _default(RetrievalConfig, "document_level")
    cache_size: int = _default(RetrievalConfig, "cache_size")
    cache_ttl_s: float = _default(RetrievalConfig, "cache_ttl_s")
    latency_window: int = _default(RetrievalConfig, "latency_window")
    metrics_dir: str = _default(RetrievalConfig, "metrics_dir")
    bm25_dir: str = _default(RetrievalConfig, "bm25_dir")
    bm25_refresh_s: float = _default(RetrievalConfig, "bm25_refresh_s")
    reranking_method: str = _default(RerankingConfig, "method")
    reranking_model: str = _default(RerankingConfig, "model")
    reranking_device: str = _default(RerankingConfig, "device")
    reranking_batch_size: int = _default(RerankingConfig, "batch_size")
    reranking_max_length: Optional[int] = _default(RerankingConfig, "max_length")

    def rag_config(self) -> RAGConfig:
        return RAGConfig(
            milvus=self.milvus.milvus_config(), index=self.milvus.index_config(),
            embedding=self.embedder.embedding_config(),
            pipeline=PipelineConfig(**{name: getattr(self, name) for name in PipelineConfig.model_fields}),
            retrieval=RetrievalConfig(**{name: getattr(self, name) for name in RetrievalConfig.model_fields}),
            reranking=RerankingConfig(**{name: getattr(self, f"reranking_{name}")
                                         for name in RerankingConfig.model_fields}),
        )

    def engine(self) -> RetrievalEngine:
        config = self.rag_config()
        return _engine(config.model_dump_json(context={"secrets": True}))
