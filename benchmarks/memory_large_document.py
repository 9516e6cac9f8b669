"""Peak memory of ingesting one large plain-text file: a 5 MB file against a 50 MB one (the user report of issue
"one large file takes all the memory": 10.3 GB peak RSS for 50 MB, all of it tokenized and batched at once).

What is measured, for each file, in a fresh Python process (so each peak is that file's alone), with the bundled
model loaded first:
  1. the document path of ``rag ingest``: the loader reads the file, the document goes through an Arrow document
     batch and back (as ``document_stream`` and ``ingest_path`` do), then
  2. ``rag_core.ingest.stages.chunk_batches`` chunks ALL of it, in batches of ``record_batch_size`` chunks, and
  3. in a second run, ``Embedder.encode_documents`` also embeds the first ``--embed-batches`` batches (5 by
     default); the other batches are chunked and dropped. Embedding all of a 50 MB file (~14M tokens) takes hours
     on 2 CPU cores, and a batch needs the same memory whichever batch it is, so a few show the embedding's share.
Milvus is not involved: batches upserted by the sync are released the same way whichever file they come from.
Peak RSS is ``ru_maxrss`` of the child process; ``baseline_rss_mb`` is its RSS once the model is loaded.

The files are generated (deterministic, seeded English-like text: paragraphs, sentences, lists, numbers, a few
accented words) into a temporary folder and deleted afterwards; nothing is written to the checkout but the report.
Usage: python -m benchmarks.memory_large_document [--sizes-mb 5 50] [--embed-batches 5]
           [--out benchmarks/out/memory_large_document.json]
"""

import argparse
import json
import os
import platform
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import cpu_model, write_report

WORDS = (
    "the a of and to in is that for it as with was on be by this are from or have an which at not but were "
    "can has its been more their also one all other than into when only may after these most such some over "
    "model memory token chunk window batch index vector query answer retrieval document file stream large "
    "paragraph sentence corpus embedding search result latency throughput pipeline schedule storage network "
    "measurement value system process data table record field report user machine core thread result "
    "experiment analysis method approach evidence protein cell gene patient treatment study effect "
    "1998 2024 3.14 42 1,024 10% e.g. i.e. U.S. well-known data-driven state-of-the-art naïve café résumé "
    "(see above) \"quoted\" it's don't O'Brien"
).split()


def generate(path: Path, size_bytes: int, seed: int) -> None:
    """English-like text of ``size_bytes`` bytes (UTF-8; a paragraph more at most), the same for the same seed."""
    rng = random.Random(seed)
    written = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        while written < size_bytes:
            sentences = []
            for _ in range(rng.randint(2, 9)):
                words = [rng.choice(WORDS) for _ in range(rng.randint(4, 32))]
                words[0] = words[0].capitalize()
                sentences.append(" ".join(words) + rng.choice(".....!?;:"))
            lead = rng.choices(["", "- ", "1. ", "## "], weights=[85, 8, 5, 2])[0]
            paragraph = lead + " ".join(sentences) + "\n\n"
            out.write(paragraph)
            written += len(paragraph.encode("utf-8"))


def child(file: Path, embed_batches: int) -> dict:
    """One measurement, run in its own process: prints its figures as JSON."""
    from rag_core.config import RAGConfig
    from rag_core.ingest.chunking import TokenChunker
    from rag_core.ingest.loaders import iter_inputs
    from rag_core.ingest.stages import chunk_batches
    from rag_core.models.embedder import shared_embedder
    from rag_core.tables import batch_to_documents, documents_to_batch
    from rag_core.types import Document

    config = RAGConfig()
    embedder = shared_embedder(config.embedding)
    embedder.encode_documents(["warm up the model"])
    baseline_mb = _rss_mb()
    chunker = TokenChunker.configured(config.chunking, embedder)
    batch_size = config.ingestion.record_batch_size

    def documents():  # noqa: ANN202 - the loader, then an Arrow document batch and back, as ``rag ingest`` does
        for item in iter_inputs(file, max_file_bytes=config.ingestion.max_file_bytes):
            if isinstance(item, Document):
                yield from batch_to_documents(documents_to_batch([item]))

    counts: dict[str, int] = {}
    started, first_batch_s, embedded, embed_s, batches, largest = time.perf_counter(), None, 0, 0.0, 0, 0
    for batch in chunk_batches(documents(), chunker, batch_size, counts=counts):
        if first_batch_s is None:
            first_batch_s = time.perf_counter() - started
        batches += 1
        largest = max(largest, batch.num_rows)
        if batches <= embed_batches:
            tick = time.perf_counter()
            embedder.encode_documents(batch.column("text").to_pylist())
            embed_s += time.perf_counter() - tick
            embedded += batch.num_rows
    total_s = time.perf_counter() - started
    return {
        "file_bytes": file.stat().st_size,
        "documents": counts["documents"],
        "chunks": counts["chunks"],
        "tokens": counts["tokens"],
        "batches": batches,
        "largest_batch_rows": largest,
        "batch_size": batch_size,
        "embedded_batches": min(batches, embed_batches),
        "embedded_chunks": embedded,
        "seconds_to_first_batch": round(first_batch_s or 0.0, 3),
        "embed_seconds": round(embed_s, 2),
        "chunk_seconds": round(total_s - embed_s, 2),
        "baseline_rss_mb": round(baseline_mb, 1),
        "peak_rss_mb": round(_peak_mb(), 1),
    }


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mb", type=int, nargs="+", default=[5, 50])
    parser.add_argument("--embed-batches", type=int, default=5)
    parser.add_argument("--out", default="benchmarks/out/memory_large_document.json")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.embed_batches)))
        return

    runs: dict[str, dict[str, dict]] = {"chunking_only": {}, "chunking_and_embedding": {}}
    with tempfile.TemporaryDirectory(prefix="memory-large-document-") as folder:
        for size in args.sizes_mb:
            file = Path(folder) / f"large-{size}mb.txt"
            generate(file, size * 1_000_000, seed=size)
            for mode, embed_batches in (("chunking_only", 0), ("chunking_and_embedding", args.embed_batches)):
                done = subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "benchmarks.memory_large_document",
                        "--child",
                        str(file),
                        "--embed-batches",
                        str(embed_batches),
                    ],
                    check=True,
                    capture_output=True,
                    text=True,
                )
                runs[mode][f"{size}MB"] = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{size} MB, {mode}: {runs[mode][f'{size}MB']}", file=sys.stderr)
            file.unlink()
    small, large = f"{min(args.sizes_mb)}MB", f"{max(args.sizes_mb)}MB"
    figures = {
        "measured": (
            "peak RSS (ru_maxrss) of a fresh process per run: the bundled model loaded, then one generated "
            "plain-text file through the loader, an Arrow document batch and back, and chunk_batches over "
            "ALL of the file (record_batch_size chunks per batch); chunking_and_embedding also embeds the "
            f"first {args.embed_batches} batches with Embedder.encode_documents (the rest are chunked and "
            "dropped: embedding all of a 50 MB file takes hours on 2 cores). No Milvus."
        ),
        "peak_rss_mb": {
            mode: {size: run["peak_rss_mb"] for size, run in by_size.items()} for mode, by_size in runs.items()
        },
        "peak_rss_ratio": {
            mode: round(by_size[large]["peak_rss_mb"] / by_size[small]["peak_rss_mb"], 3)
            for mode, by_size in runs.items()
        },
        "runs": runs,
        "machine": {
            "cpu": cpu_model(),
            "cores": len(os.sched_getaffinity(0)),
            "python": platform.python_version(),
            "platform": platform.platform(),
            "load_average_at_end": os.getloadavg(),
        },
    }
    write_report(args.out, figures)


if __name__ == "__main__":
    main()
