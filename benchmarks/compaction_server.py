"""The guide's weekly compaction on the real Milvus server: SciFact documents ingested, 30 % of them deleted, then
``compact_versions`` (what the weekly job runs). Deleted rows and segments are read before and after.

    python -m benchmarks.compaction_server [--documents 1000]   # writes benchmarks/out/compaction_server.json

Needs the ``milvus`` package's server (installed with the dev extras); it runs on loopback in a temporary folder.
"""

import argparse
import gzip
import itertools
import json
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.config import RAGConfig
from rag_core.index.compaction import compact_versions
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.models.embedder import shared_embedder
from rag_core.types import Document

DELETED_SHARE = 0.3


def scifact_documents(count: int) -> list[Document]:
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        rows = [json.loads(line) for line in itertools.islice(lines, count)]
    return [Document(doc_id=r["_id"], text=r["text"], title=r.get("title", "")) for r in rows]


def measure(uri: str, work: str, documents: list[Document], kept: list[Document]) -> dict:
    config = RAGConfig.model_validate(
        {
            "milvus": {"uri": uri, "collection": "compaction_bench", "consistency_level": "Strong"},
            "ingestion": {"storage_dir": f"{work}/assets"},
            "retrieval": {"bm25_dir": f"{work}/bm25", "metrics_dir": f"{work}/metrics"},
            "quality": {"query_log": False, "drift_dir": f"{work}/drift"},
        }
    )
    embedder = shared_embedder(config.embedding)
    manager = MilvusIndexManager(config.milvus, config.index)
    ingest_documents(documents, RagContext(config, embedder=embedder))
    collection = manager.resolve("compaction_bench")
    rows_before_delete = manager.count(collection)
    deleted = ingest_documents(kept, RagContext(config, embedder=embedder), prune=True).sync.deleted
    manager.client.flush(collection)  # sealed segments, as a week of writes leaves them
    started = time.perf_counter()
    reports = compact_versions(manager, "compaction_bench")
    figures = {
        "server": "Milvus 2.3.5 standalone (loopback)",
        "documents": len(documents),
        "deleted_documents": len(documents) - len(kept),
        "rows_before_delete": rows_before_delete,
        "deleted_rows": deleted,
        "rows_after": manager.count(collection),
        "compaction_seconds": round(time.perf_counter() - started, 2),
        "versions": [asdict(r) for r in reports],
    }
    manager.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1000)
    args = parser.parse_args()
    from tests.support.milvus_server import running_server

    documents = scifact_documents(args.documents)
    kept = documents[round(len(documents) * DELETED_SHARE) :]
    with tempfile.TemporaryDirectory() as work:
        (Path(work) / "server").mkdir()
        with running_server(Path(work) / "server") as server:
            figures = measure(server.uri, work, documents, kept)
    write_report(OUT / "compaction_server.json", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
