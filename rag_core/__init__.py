"""advanced-rag-milvus engine: plain Python, no Dagster. See docs/architecture.md."""

import os

from rag_core.index.milvus_env import lite_uri_hidden_from_pymilvus

os.environ.setdefault("GRPC_VERBOSITY", "NONE")  # gRPC reads it once, when pymilvus imports it below: no absl lines

from rag_core.security.pii import install_log_redaction  # noqa: E402

install_log_redaction()  # before any module logs: no record of rag_core's or rag_assets' loggers carries PII

with lite_uri_hidden_from_pymilvus():
    import pymilvus  # noqa: F401 - imported here first, so that a Milvus Lite path in MILVUS_URI is accepted

from rag_core.api import AdvancedRAGPipeline, QueryMetrics  # noqa: E402
from rag_core.compliance.events import AuditEventType  # noqa: E402
from rag_core.compliance.manager import ComplianceManager  # noqa: E402
from rag_core.config import RAGConfig, load_config  # noqa: E402
from rag_core.index.manager import MilvusIndexManager  # noqa: E402
from rag_core.ingest.embedder import Embedder  # noqa: E402
from rag_core.retrieval.engine import RetrievalEngine  # noqa: E402
from rag_core.types import Chunk, Document, SkippedInput  # noqa: E402

__all__ = ["AdvancedRAGPipeline", "AuditEventType", "Chunk", "ComplianceManager", "Document", "Embedder",
           "MilvusIndexManager", "QueryMetrics", "RAGConfig", "RetrievalEngine", "SkippedInput", "load_config"]
