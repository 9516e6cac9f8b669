"""Who owns the rows of a collection: each source (a folder given to ``rag ingest``, the Dagster corpus folder, an
API caller) with its documents and rows, for ``rag stats`` (a sync deletes only within its own source)."""

from collections import Counter, defaultdict
from dataclasses import dataclass

from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import legacy_source


@dataclass(frozen=True)
class SourceStats:
    source: str
    documents: int
    rows: int


def source_stats(manager: MilvusIndexManager, collection: str) -> list[SourceStats]:
    """Read from the rows themselves, two short fields each, so Milvus is the truth; rows written before they
    carried their source are told apart by the file path they kept, as the sync does."""
    version = manager.state(collection).version
    fields = ["doc_id", "source"] if version and version.schema >= 2 else ["doc_id", "metadata"]

    def read() -> list[SourceStats]:
        rows: Counter[str] = Counter()
        documents: defaultdict[str, set[str]] = defaultdict(set)
        for batch in manager.iter_rows(collection, fields):
            for row in batch:
                source = row["source"] if "source" in row else legacy_source(row["doc_id"], row["metadata"] or {})
                rows[source] += 1
                documents[source].add(row["doc_id"])
        return [SourceStats(source=name, documents=len(documents[name]), rows=rows[name]) for name in sorted(rows)]

    return manager.consistent_export(collection, read)
