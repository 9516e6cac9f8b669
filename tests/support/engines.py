"""Engines as a separate process would build them: each with its own Milvus connection, sharing the test's loaded
model. (A face builds its engines from one ``RagContext``; tests that play two processes need two connections.)"""

from typing import Any

from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.models.embedder import Embedder, shared_embedder
from rag_core.retrieval.engine import RetrievalEngine


def engine_for(config: RAGConfig, *, embedder: Embedder | None = None, **options: Any) -> RetrievalEngine:
    """``options``: the engine's own (``alias``, ``reranker``); the model defaults to the config's, loaded once."""
    return RetrievalEngine(
        config,
        embedder=embedder or shared_embedder(config.embedding),
        manager=MilvusIndexManager(config.milvus, config.index),
        **options,
    )
