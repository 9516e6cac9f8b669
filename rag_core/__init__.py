"""advanced-rag-milvus engine: plain Python, no Dagster. See docs/architecture.md."""

from rag_core.config import RAGConfig, load_config
from rag_core.documents import Chunk, Document, SkippedInput
from rag_core.embedder import Embedder
from rag_core.index_manager import MilvusIndexManager

__all__ = ["Chunk", "Document", "Embedder", "MilvusIndexManager", "RAGConfig", "SkippedInput", "load_config"]
