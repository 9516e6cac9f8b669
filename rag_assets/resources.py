"""Dagster resources: thin, configurable handles on the rag_core objects the assets use.

Defaults come from rag_core's config (config.yaml, .env, environment), so the CLI and Dagster agree; secrets
are given as ``dg.EnvVar`` so they are read at run time and never stored in run config.
"""

from pathlib import Path
from typing import Optional

import dagster as dg
from pydantic import Field

from rag_core.chunking import TokenChunker
from rag_core.config import EmbeddingConfig, IndexConfig, MilvusConfig
from rag_core.embedder import Embedder, shared_embedder
from rag_core.index_manager import MilvusIndexManager
from rag_core.parquet_store import ParquetStore


class EmbedderResource(dg.ConfigurableResource):
    model: str = Field(description="bundled:all-MiniLM-L6-v2, a sentence-transformers model name, or a path.")
    device: str = "auto"
    batch_size: int = 64
    chunk_size: int = 200
    chunk_overlap: int = 32

    def embedder(self) -> Embedder:
        return shared_embedder(EmbeddingConfig(model=self.model, device=self.device, batch_size=self.batch_size))

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

    def manager(self) -> MilvusIndexManager:
        config = MilvusConfig(
            uri=self.uri, collection=self.collection, user=self.user, password=self.password or "",
            token=self.token or "", db_name=self.db_name, secure=self.secure, timeout_s=self.timeout_s,
            retry_attempts=self.retry_attempts, retry_backoff_s=self.retry_backoff_s,
            enable_sharding=self.enable_sharding, num_shards=self.num_shards,
        )
        index = IndexConfig(M=self.M, efConstruction=self.efConstruction, ef=self.ef, metric_type=self.metric_type)
        return MilvusIndexManager(config, index)


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
