"""What a physical erasure costs on Milvus Lite: one document erased from a collection of ``--rows`` chunks, which
rebuilds the version from its live rows (``rag_core.index.compaction.rebuild``; Lite's own compaction would keep
the deleted rows in its files).

    python -m benchmarks.erasure_lite [--rows 5000 10000]   # writes benchmarks/out/erasure_lite.json

Rows are SciFact passages (800-character pieces of its abstracts) with random unit vectors: the copy's cost depends
on the rows' size and count, not on what the vectors mean, and embedding thousands of chunks here would take minutes.
SciFact gives at most 11,795 such rows.
"""

import argparse
import gzip
import json
import tempfile
import time

import numpy as np

import rag_core.retrieval.engine  # noqa: F401 - what erase_document loads lazily, loaded before any clock starts
from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.config import RAGConfig
from rag_core.index.compaction import rebuild
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.erasure import erase_document

ALIAS = "erasure_bench"
PIECE = 800
DIMENSION = 384


def passages(rows: int) -> list[tuple[str, int, str]]:
    """(doc_id, position, text) for ``rows`` pieces of SciFact abstracts, in corpus order."""
    pieces = []
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in lines:
            record = json.loads(line)
            text = record["text"] or record.get("title", "")
            for position, start in enumerate(range(0, len(text), PIECE)):
                pieces.append((record["_id"], position, text[start : start + PIECE]))
                if len(pieces) == rows:
                    return pieces
    return pieces


def measure(work: str, rows: int) -> dict:
    config = RAGConfig.model_validate(
        {
            "milvus": {"uri": f"{work}/milvus.db", "collection": ALIAS, "consistency_level": "Strong"},
            "ingestion": {"storage_dir": f"{work}/assets", "docs_dir": f"{work}/docs"},
            "retrieval": {"bm25_dir": f"{work}/bm25", "metrics_dir": f"{work}/metrics"},
            "quality": {"query_log_dir": f"{work}/query_log", "drift_dir": f"{work}/drift"},
            "compliance": {"database_url": f"sqlite:///{work}/audit.db", "reports_dir": f"{work}/reports"},
        }
    )
    manager = MilvusIndexManager(config.milvus, config.index)
    collection = manager.create_version(ALIAS, manager.version_for("random-unit-vectors", DIMENSION, "800 chars"))
    generator = np.random.default_rng(0)
    pieces = passages(rows)
    for start in range(0, len(pieces), 1000):
        vectors = generator.standard_normal((min(1000, len(pieces) - start), DIMENSION)).astype(np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        manager.upsert(
            collection,
            [
                {
                    "chunk_id": f"{doc_id}-{position}",
                    "doc_id": doc_id,
                    "source": "api",
                    "position": position,
                    "text": text,
                    "metadata": {"title": ""},
                    "vector": vector.tolist(),
                }
                for (doc_id, position, text), vector in zip(pieces[start : start + 1000], vectors)
            ],
        )
    manager.flush(collection)
    manager.mark_complete(collection)
    manager.promote(ALIAS, collection)
    victim = pieces[len(pieces) // 2][0]
    started = time.perf_counter()
    report = erase_document(RagContext(config, manager=manager), victim)
    erase_s = time.perf_counter() - started
    started = time.perf_counter()
    rebuild(manager, ALIAS, collection)  # the rebuild alone, once more, on the collection as the erasure left it
    rebuild_s = time.perf_counter() - started
    started = time.perf_counter()
    manager.search(ALIAS, generator.standard_normal((1, DIMENSION)).tolist(), limit=10)
    first_search_s = time.perf_counter() - started
    figures = {
        "store": manager.capabilities.version,
        "rows": len(pieces),
        "erased_chunks": report.milvus_chunks,
        "purged": report.purged,
        "erase_seconds": round(erase_s, 2),
        "rebuild_seconds": round(rebuild_s, 2),
        "rows_per_second": round(manager.count(collection) / rebuild_s),
        "first_search_after_seconds": round(first_search_s, 3),
    }
    manager.close()
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[5000, 10000])
    args = parser.parse_args()
    figures = []
    for rows in args.rows:
        with tempfile.TemporaryDirectory() as work:
            figures.append(measure(work, rows))
    write_report(OUT / "erasure_lite.json", figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
