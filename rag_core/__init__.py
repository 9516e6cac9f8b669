"""advanced-rag-milvus engine: plain Python, no Dagster. See docs/architecture.md.

The names below are loaded on first use (PEP 562), so ``import rag_core.types`` costs a few modules, not the
embedding and Milvus stacks, and importing the package changes nothing: the entry points (the ``rag`` command,
``AdvancedRAGPipeline``, the HTTP service, the Dagster definitions) install log redaction, and
``rag_core.index.milvus_env`` sets what gRPC and pymilvus read when they are imported.
"""

import importlib
from typing import Any

_EXPORTS = {
    "AdvancedRAGPipeline": "rag_core.api",
    "QueryMetrics": "rag_core.api",
    "AuditEventType": "rag_core.compliance.events",
    "ComplianceManager": "rag_core.lifecycle.compliance_manager",
    "RAGConfig": "rag_core.config",
    "load_config": "rag_core.config",
    "MilvusIndexManager": "rag_core.api",  # the guide's: reads config.yaml when given no config
    "Embedder": "rag_core.models.embedder",
    "RetrievalEngine": "rag_core.retrieval.engine",
    "Chunk": "rag_core.types",
    "Document": "rag_core.types",
    "SkippedInput": "rag_core.types",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'rag_core' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
