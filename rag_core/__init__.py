"""advanced-rag-milvus engine: plain Python, no Dagster. See docs/architecture.md."""

from rag_core.config import RAGConfig, load_config
from rag_core.documents import Chunk, Document, SkippedInput
from rag_core.embedder import Embedder
from rag_core.index_manager import MilvusIndexManager
from rag_core.pipeline import AdvancedRAGPipeline, QueryMetrics
from rag_core.retrieval import RetrievalEngine

__all__ = ["AdvancedRAGPipeline", "Chunk", "Document", "Embedder", "MilvusIndexManager", "QueryMetrics", "RAGConfig",
           "RetrievalEngine", "SkippedInput", "load_config"]
