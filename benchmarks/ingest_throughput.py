"""Ingestion throughput on SciFact (5,183 documents), on Milvus Lite and on the real Milvus server.

For each backend, in a fresh process (so peak RSS is that backend's alone), with the model loaded beforehand:
  1. the full Dagster ingestion run (raw_documents -> chunks -> embeddings -> semantic_index),
  2. the raw model alone encoding exactly the same chunk texts (the limit the pipeline is measured against),
  3. a re-run after 1 % of the documents changed.
Usage: python -m benchmarks.ingest_throughput [--backend lite|server|both] [--out benchmarks/out/ingest.json]
The corpus is read from ../shared/data/scifact (never copied into the repository).
"""

import argparse
import gzip
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import dagster as dg

from benchmarks.report import write_report
from rag_assets.definitions import build_definitions
from rag_core.config import RAGConfig
from rag_core.ingest.parquet_store import ParquetStore
from rag_core.models.embedder import shared_embedder

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl.gz"
CHANGED_FRACTION = 0.01


def run_job(config: RAGConfig) -> tuple[float, dict]:
    started = time.perf_counter()
    result = (
        build_definitions(config)
        .resolve_job_def("ingestion")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral())
    )
    seconds = time.perf_counter() - started
    assert result.success
    metadata = {}
    for event in result.get_asset_materialization_events():
        m = event.step_materialization_data.materialization
        metadata[m.asset_key.to_user_string()] = {
            k: v.value for k, v in m.metadata.items() if isinstance(v.value, (int, float, bool))
        }
    return seconds, metadata


def change_documents(source: Path, target: Path, fraction: float) -> int:
    """Rewrite the corpus with every 1/fraction-th document's text edited at its end."""
    step, changed = round(1 / fraction), 0
    with gzip.open(source, "rt", encoding="utf-8") as lines, gzip.open(target, "wt", encoding="utf-8") as out:
        for i, line in enumerate(lines):
            record = json.loads(line)
            if i % step == 0:
                record["text"] += " This sentence was added to measure incremental re-indexing."
                changed += 1
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return changed


def measure(backend: str, uri: str, work: Path) -> dict:
    docs = work / "docs"
    docs.mkdir()
    (docs / "corpus.jsonl.gz").symlink_to(CORPUS)
    config = RAGConfig.model_validate(
        {
            "milvus": {"uri": uri, "collection": f"bench_{backend}"},
            "ingestion": {"docs_dir": str(docs), "storage_dir": str(work / "assets")},
        }
    )
    embedder = shared_embedder(config.embedding)
    embedder.encode_documents(["warm up"])  # model load is a one-time cost, kept out of both timings

    full_seconds, full = run_job(config)
    pipeline_peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the model-only pass
    chunks = ParquetStore(config.ingestion.storage_dir).get("chunks")
    texts = chunks.read_column("text").to_pylist()
    tokens = full["chunks"]["tokens"]
    started = time.perf_counter()
    embedder.encode_documents(texts)
    model_seconds = time.perf_counter() - started

    (docs / "corpus.jsonl.gz").unlink()
    changed = change_documents(CORPUS, docs / "corpus.jsonl.gz", CHANGED_FRACTION)
    rerun_seconds, rerun = run_job(config)

    documents = full["raw_documents"]["documents"]
    return {
        "backend": backend,
        "documents": documents,
        "chunks": len(texts),
        "tokens": tokens,
        "full_run_s": round(full_seconds, 2),
        "docs_per_s": round(documents / full_seconds, 1),
        "chunks_per_s": round(len(texts) / full_seconds, 1),
        "tokens_per_s": round(tokens / full_seconds),
        "model_only_s": round(model_seconds, 2),
        "model_tokens_per_s": round(tokens / model_seconds),
        "pipeline_to_model_ratio": round(model_seconds / full_seconds, 3),
        "stage_seconds": {k: v.get("seconds") for k, v in full.items()},
        "changed_documents": changed,
        "rerun_s": round(rerun_seconds, 2),
        "rerun_fraction": round(rerun_seconds / full_seconds, 4),
        "rerun_embedded_chunks": rerun["embeddings"]["embedded_chunks"],
        "rerun_upserted": rerun["semantic_index"]["upserted"],
        "rerun_deleted": rerun["semantic_index"]["deleted"],
        "pipeline_peak_rss_mb": round(pipeline_peak_mb),
        "process_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    }


def run_backend(backend: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if backend == "lite":
            return measure(backend, str(work / "milvus.db"), work)
        from tests.support.milvus_server import running_server

        (work / "server").mkdir()
        with running_server(work / "server") as server:
            return measure(backend, server.uri, work)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=["lite", "server", "both"], default="both")
    parser.add_argument("--out", default="benchmarks/out/ingest.json")
    args = parser.parse_args()
    if not CORPUS.exists():
        print(f"{CORPUS} not found: the benchmark reads SciFact from ../shared/data/scifact.", file=sys.stderr)
        return 2
    if args.backend != "both":
        print(json.dumps(run_backend(args.backend)))
        return 0
    results = []
    for backend in ("lite", "server"):  # one after the other, each in its own process: never two at once
        output = subprocess.run(
            [sys.executable, "-m", "benchmarks.ingest_throughput", "--backend", backend],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
    write_report(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
