"""The composition root: what a face (the ``rag`` command, the Python API, the HTTP service, the Dagster
definitions) builds once at its start and hands to every use case it runs.

One context holds one config and builds each collaborator the first time a use case asks for it: the embedder
(one loaded model), the index manager (one Milvus connection), the audit trail and one retrieval engine per
alias. Use cases take the context, never a config from which to build their own, so a process that ingests,
re-indexes and queries loads the model once, and a test or an embedding application can hand in its own
collaborators (``RagContext(config, embedder=..., manager=...)``). Nothing here reads ``config.yaml``: a face
decides where the config comes from.
"""

import threading
from typing import TYPE_CHECKING

from rag_core.compliance.audit import AuditTrail, audit_trail
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager

if TYPE_CHECKING:  # the embedding and retrieval stacks load torch: only when a use case needs them
    from rag_core.models.embedder import Embedder
    from rag_core.retrieval.engine import RetrievalEngine


class RagContext:
    """Thread-safe: the HTTP service's request threads and a Dagster run's ops may ask for the same collaborator at
    once, and get the same one."""

    def __init__(
        self,
        config: RAGConfig,
        *,
        embedder: "Embedder | None" = None,
        manager: MilvusIndexManager | None = None,
    ) -> None:
        self.config = config
        self._embedder = embedder
        self._manager = manager
        self._engines: dict[str, RetrievalEngine] = {}
        self._lock = threading.RLock()

    @property
    def embedder(self) -> "Embedder":
        with self._lock:
            if self._embedder is None:
                from rag_core.models.embedder import shared_embedder

                self._embedder = shared_embedder(self.config.embedding)
            return self._embedder

    @property
    def manager(self) -> MilvusIndexManager:
        with self._lock:
            if self._manager is None:
                self._manager = MilvusIndexManager(self.config.milvus, self.config.index)
            return self._manager

    @property
    def audit(self) -> AuditTrail:
        return audit_trail(self.config)  # one trail per database per process already

    def alias(self, collection: str | None = None) -> str:
        """The alias a use case works on: the one it was given, else ``milvus.collection``."""
        return collection or self.config.milvus.collection

    def engine(self, alias: str | None = None) -> "RetrievalEngine":
        """The engine serving ``alias`` (default ``milvus.collection``), built once and shared by every caller."""
        from rag_core.retrieval.engine import RetrievalEngine

        name = self.alias(alias)
        with self._lock:
            if name not in self._engines:
                self._engines[name] = RetrievalEngine(
                    self.config, embedder=self.embedder, manager=self.manager, alias=name
                )
            return self._engines[name]

    def invalidate(self, *, clear_caches: bool = False) -> None:
        """After this process changed the index: every engine re-reads what it serves before its next query (and,
        after an erasure, forgets the answers it cached)."""
        with self._lock:
            engines = list(self._engines.values())
        for engine in engines:
            if clear_caches:
                engine.cache.clear()
            engine.invalidate()
