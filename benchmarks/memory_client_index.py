"""Peak memory of rebuilding the client-side index from Milvus, for SciFact and for SciFact x 4.

Each scale runs in a fresh process: a Milvus Lite collection is filled with SciFact's documents (one row per
document; x 4 = synthetic copies under new ids) and random unit vectors (the moments need vectors, not good
ones, so nothing is embedded), then ``build_client_index`` rebuilds the index from Milvus. Reported: the
process's peak RSS growth during the build, the size of the index it saved, and their difference, the memory the
build used beyond the index itself. Goal: at 4x the data, that difference grows by at most ~1.3x.

    python -m benchmarks.memory_client_index     # writes benchmarks/out/memory_client_index.json
"""

import gzip
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from benchmarks.report import OUT, peak_rss, write_report
from rag_core.config import IndexConfig, MilvusConfig

SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"
SCALES = (1, 4)
DIMENSION = 384
INSERT_BATCH = 1000


def fill(uri: str, scale: int) -> str:
    from rag_core.index.manager import MilvusIndexManager

    manager = MilvusIndexManager(MilvusConfig(uri=uri), IndexConfig())
    version = manager.version_for("random", DIMENSION, "one-row-per-document")
    collection = manager.create_version("scifact", version)
    rng = np.random.default_rng(0)
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as corpus:
        documents = [json.loads(line) for line in corpus]
    rows = []
    for copy in range(scale):
        for doc in documents:
            vector = rng.normal(size=DIMENSION).astype(np.float32)
            rows.append(
                {
                    "chunk_id": f"{copy}-{doc['_id']}",
                    "doc_id": f"{copy}-{doc['_id']}",
                    "source": "scifact",
                    "position": 0,
                    "text": f"{doc.get('title', '')}\n\n{doc['text']}"[:60000],
                    "metadata": {"title": doc.get("title", "")},
                    "vector": (vector / np.linalg.norm(vector)).tolist(),
                }
            )
            if len(rows) == INSERT_BATCH:
                manager.upsert(collection, rows)
                rows = []
    manager.upsert(collection, rows)
    manager.bump_data_version(collection)
    manager.mark_complete(collection)
    manager.promote("scifact", collection)
    return collection


def measure(uri: str, folder: str) -> dict:
    """In this process: the RSS the build adds on top of the RSS just before it (sampled every 10 ms, since
    ``ru_maxrss`` only keeps the process's all-time high, which loading Milvus Lite may have set), and the saved
    index's size."""
    from rag_core.index.manager import MilvusIndexManager
    from rag_core.retrieval.engine import build_client_index

    manager = MilvusIndexManager(MilvusConfig(uri=uri), IndexConfig())
    state = manager.state(manager.serving("scifact"))
    manager.count(state.collection)  # connected and loaded before the baseline
    measured = peak_rss(lambda: build_client_index(manager, state, Path(folder)))
    index = measured.result
    index_bytes = sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file())
    growth_mb = measured.growth_mb
    return {
        "rows": len(index),
        "documents": len(index.documents),
        "rss_before_mb": round(measured.before_mb, 1),
        "peak_rss_mb": round(measured.peak_mb, 1),
        "build_growth_mb": round(growth_mb, 1),
        "index_mb": round(index_bytes / 2**20, 1),
        "beyond_index_mb": round(growth_mb - index_bytes / 2**20, 1),
    }


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--measure":
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--fill":  # its own process: Milvus Lite holds a file until exit
        fill(sys.argv[2], int(sys.argv[3]))
        return
    results = {}
    for scale in SCALES:
        work = Path(tempfile.mkdtemp(prefix=f"client-index-x{scale}-"))
        try:
            uri = str(work / "milvus.db")
            subprocess.run(
                [sys.executable, "-m", "benchmarks.memory_client_index", "--fill", uri, str(scale)], check=True
            )
            out = subprocess.run(
                [sys.executable, "-m", "benchmarks.memory_client_index", "--measure", uri, str(work / "index")],
                check=True,
                capture_output=True,
                text=True,
            ).stdout
            results[f"x{scale}"] = json.loads(out.strip().splitlines()[-1])
            print(f"SciFact x{scale}: {results[f'x{scale}']}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    ratio = results["x4"]["beyond_index_mb"] / max(results["x1"]["beyond_index_mb"], 1e-9)
    write_report(
        OUT / "memory_client_index.json",
        {"results": results, "beyond_index_ratio_x4_over_x1": round(ratio, 2), "goal": "<= ~1.3"},
    )
    print(f"memory beyond the index, x4 / x1: {ratio:.2f}")


if __name__ == "__main__":
    main()
