"""Scale figures on the real Milvus 2.3.5 server: insert, index builds (server HNSW and the client-side index),
memory, and query latency at 100k or 1M rows.

    python -m benchmarks.scale_server --rows 100000      # about 6 minutes on 2 cores
    python -m benchmarks.scale_server --rows 1000000     # about 30 minutes (the HNSW build 12 of them)
    # each run adds its row count to benchmarks/out/scale_server.json (other row counts are kept)

Rows: the SciFact chunks as the project embeds them (read from the `rag eval` collection, built by
``ingest_path`` on first use, then cached under benchmarks/scratch/), repeated until ``--rows``: copy 0 is SciFact
itself, every further copy gets new chunk and document ids, its vector Gaussian noise (``NOISE_SIGMA`` per
dimension) re-normalised, and its text the base chunk's sentences shuffled, a share of them swapped for random
SciFact sentences. They go in through ``MilvusIndexManager.create_version`` / ``upsert`` with the configured
HNSW/COSINE parameters, as ingestion does.

Measured, in this order:
1. ``ClientIndex.build`` on the rows in memory (needs no server), in a fresh child process: seconds, peak RSS
   growth of that process (sampled every 10 ms), size on disk. It comes first, so it is measured even when the
   server part is not.
2. The server on loopback under a temporary folder: the insert, then the HNSW build (from the flush to every row
   indexed; segments sealed during the insert are indexed meanwhile), both with the server on both cores.
   ``--stop-by HH:MM`` (UTC) abandons the server part when the insert or the build runs past it.
3. ``build_client_index`` from the server (the export the engine runs on every data version change), in a fresh
   child process too, after the server's CPU stayed quiet for QUIET_WINDOWS windows.
4. Latency, the server pinned to core 0 and this process to core 1 (``taskset``), SciFact's 300 test queries one
   at a time, each query through every path before the next, the query cache and the query log off: the query
   encoder alone, dense only (server HNSW), BM25 only
   (bm25s through the engine's lexical path), the default hybrid end to end (``RetrievalEngine.search``), and the
   limit: encoder + exact numpy search over the same vectors + bm25s over the same texts. Then throughput, still
   pinned: 8 threads sending 2,000 default hybrid queries between them (``benchmarks.retrieval_latency``).
"""

import argparse
import contextlib
import datetime
import gc
import gzip
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

# One BLAS thread: on the pinned client core a spinning OpenBLAS pool would steal the encoder's time
# (see benchmarks.retrieval_latency). Set before numpy is imported, which reads it once.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import psutil  # noqa: E402

from benchmarks.report import OUT, peak_rss, run_metadata, write_report  # noqa: E402
from benchmarks.retrieval_latency import QUIET_CPU_PERCENT, server_cpu_percent, throughput  # noqa: E402
from rag_core.config import RAGConfig  # noqa: E402
from rag_core.index.manager import MilvusIndexManager  # noqa: E402
from rag_core.lifecycle.context import RagContext
from rag_core.quality.evaluation import dataset_alias, load_beir  # noqa: E402
from rag_core.retrieval.client_index import ClientIndex  # noqa: E402
from rag_core.retrieval.engine import RetrievalEngine, build_client_index, client_index_dir  # noqa: E402
from rag_core.types import Chunk  # noqa: E402

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact"
SCRATCH = Path(__file__).resolve().parent / "scratch"
RESULT = OUT / "scale_server.json"
ALIAS = "scale"
FIELDS = ["chunk_id", "doc_id", "source", "position", "text", "metadata"]
NOISE_SIGMA = 0.01  # per dimension: a copy keeps cosine ~0.98 to its SciFact chunk
SWAPPED_SENTENCES = 0.3  # share of a copy's sentences replaced by random SciFact sentences
INSERT_BATCH = 2000
SEED = 0
SERVER_CORE, CLIENT_CORE = 0, 1
INDEX_TIMEOUT_S = 6 * 3600
QUIET_WINDOWS = 3  # consecutive windows of benchmarks.retrieval_latency's quiet test before timing queries
T = TypeVar("T")


@dataclass(frozen=True)
class SciFactChunks:
    """The SciFact chunks and their vectors as the project's embedder made them, and the version they carry."""

    rows: list[dict[str, Any]]
    vectors: np.ndarray
    model: str
    dimension: int
    chunking: str

    @property
    def sentences(self) -> list[str]:
        return [s for r in self.rows for s in r["text"].split(". ") if len(s) > 40]


def scifact_chunks(config: RAGConfig) -> SciFactChunks:
    """Read once from the `rag eval` SciFact collection in ``data/milvus.db`` (embedded there by ``ingest_path``
    on first use), then from the scratch cache."""
    cache_rows, cache_vectors = SCRATCH / "scale_scifact_chunks.json.gz", SCRATCH / "scale_scifact_vectors.npy"
    if not cache_rows.is_file() or not cache_vectors.is_file():
        from rag_core.lifecycle.direct import ingest_path

        alias = dataset_alias(SCIFACT)
        ingest_path(
            load_beir(SCIFACT, "test").corpus, RagContext(config), collection=alias, prune=True
        )  # as `rag eval`
        manager = MilvusIndexManager(config.milvus, config.index)
        collection = manager.serving(alias)
        version = manager.index_version(collection)
        rows = manager.consistent_export(
            collection, lambda: [r for batch in manager.iter_rows(collection, [*FIELDS, "vector"]) for r in batch]
        )
        manager.close()
        rows.sort(key=lambda r: (r["doc_id"], r["position"]))
        vectors = np.asarray([r.pop("vector") for r in rows], dtype=np.float32)
        SCRATCH.mkdir(exist_ok=True)
        np.save(cache_vectors, vectors)
        with gzip.open(cache_rows, "wt", encoding="utf-8") as out:
            json.dump(
                {"model": version.model, "dimension": version.dimension, "chunking": version.chunking, "rows": rows},
                out,
            )
    with gzip.open(cache_rows, "rt", encoding="utf-8") as cached:
        saved = json.load(cached)
    return SciFactChunks(saved["rows"], np.load(cache_vectors), saved["model"], saved["dimension"], saved["chunking"])


def scaled_vectors(base: np.ndarray, rows: int) -> np.ndarray:
    """Row i is SciFact chunk ``i % len(base)``; copy 0 exact, later copies with noise, re-normalised."""
    out = np.empty((rows, base.shape[1]), dtype=np.float32)
    rng = np.random.default_rng(SEED)
    for start in range(0, rows, len(base)):
        size = min(len(base), rows - start)
        block = base[:size].copy()
        if start:
            block += rng.normal(scale=NOISE_SIGMA, size=block.shape).astype(np.float32)
            block /= np.linalg.norm(block, axis=1, keepdims=True)
        out[start : start + size] = block
    return out


def scaled_rows(source: SciFactChunks, rows: int, vectors: np.ndarray | None = None) -> Iterator[list[dict[str, Any]]]:
    """Batches of collection rows (with ``vectors`` when given); the same rows on every call."""
    sentences, rng, count = source.sentences, random.Random(SEED), len(source.rows)
    batch: list[dict[str, Any]] = []
    for i in range(rows):
        copy, base = divmod(i, count)
        row = dict(source.rows[base])
        if copy:
            parts = row["text"].split(". ")
            rng.shuffle(parts)
            row["text"] = ". ".join(rng.choice(sentences) if rng.random() < SWAPPED_SENTENCES else p for p in parts)
            row["chunk_id"], row["doc_id"] = f"{row['chunk_id']}~{copy}", f"{row['doc_id']}~{copy}"
        if vectors is not None:
            row["vector"] = vectors[i].tolist()
        batch.append(row)
        if len(batch) == INSERT_BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def folder_mb(folder: Path) -> float:
    return round(sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) / 2**20, 1)


def client_index_in_memory(source: SciFactChunks, vectors: np.ndarray, config: RAGConfig, folder: Path) -> dict:
    """``ClientIndex.build`` over the rows as Milvus would return them, without the export. Run in a process of
    its own (``in_fresh_process``): memory a build freed stays with the process and would hide the next build's."""
    chunks = [
        Chunk(chunk_id=r["chunk_id"], doc_id=r["doc_id"], position=r["position"], text=r["text"])
        for batch in scaled_rows(source, len(vectors))
        for r in batch
    ]
    index_config = config.index

    def build() -> ClientIndex:
        batches = (vectors[s : s + 10_000] for s in range(0, len(vectors), 10_000))
        return ClientIndex.build(
            chunks, batches, collection="in-memory", data_version=1, k1=index_config.bm25_k1, b=index_config.bm25_b
        )

    measured = peak_rss(build)
    index, seconds, growth = measured.result, measured.seconds, measured.growth_mb
    index.save(folder)
    figures = {
        "seconds": round(seconds, 1),
        "peak_rss_growth_mb": round(growth, 1),
        "on_disk_mb": folder_mb(folder),
        "chunks": len(index),
        "documents": len(index.documents),
    }
    return figures


def client_index_from_server(config: RAGConfig, folder: Path) -> dict:
    """``build_client_index`` from the server, what the engine runs on every data version change; its own process
    too (``in_fresh_process``)."""
    manager = MilvusIndexManager(config.milvus, config.index)
    state = manager.state(manager.serving(ALIAS))
    manager.count(state.collection)  # connected and loaded before the baseline
    measured = peak_rss(lambda: build_client_index(manager, state, folder))
    index, seconds, growth = measured.result, measured.seconds, measured.growth_mb
    return {
        "seconds": round(seconds, 1),
        "peak_rss_growth_mb": round(growth, 1),
        "on_disk_mb": folder_mb(folder),
        "chunks": len(index),
    }


def in_fresh_process(rows: int, folder: Path, uri: str | None = None) -> dict:
    """The client-side index built in a child process (``--client-index-only``), from the server at ``uri`` or
    in memory; its figures."""
    command = [
        sys.executable,
        "-m",
        "benchmarks.scale_server",
        "--rows",
        str(rows),
        "--client-index-only",
        str(folder),
        *(["--uri", uri] if uri else []),
    ]
    out = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2), "p99": round(float(p99), 2)}


def server_tree(pid: int) -> list[psutil.Process]:
    root = psutil.Process(pid)
    return [root, *root.children(recursive=True)]


def server_cpu_seconds(pid: int) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in server_tree(pid))


def pin(server_pid: int) -> None:
    """The server's processes (every thread: ``taskset -a``) to SERVER_CORE, every thread of this one to
    CLIENT_CORE; threads started later inherit their creator's affinity."""
    for process in server_tree(server_pid):
        subprocess.run(
            ["taskset", "-a", "-p", "-c", str(SERVER_CORE), str(process.pid)], check=True, capture_output=True
        )
    for thread in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(thread), {CLIENT_CORE})


def past(stop_by: datetime.datetime | None) -> bool:
    return stop_by is not None and datetime.datetime.now(datetime.UTC) >= stop_by


def insert_and_index(
    manager: MilvusIndexManager,
    source: SciFactChunks,
    vectors: np.ndarray,
    server_pid: int,
    stop_by: datetime.datetime | None,
) -> tuple[dict, str | None]:
    """(figures, why the server part stopped short or None). Ingestion's path: a new version, upserts, then the
    data version bumped, marked complete and promoted."""
    version = manager.version_for(source.model, source.dimension, source.chunking)
    collection = manager.create_version(ALIAS, version)
    started, inserted = time.perf_counter(), 0
    for batch in scaled_rows(source, len(vectors), vectors):
        inserted += manager.upsert(collection, batch)
        if past(stop_by):
            return {
                "inserted_rows": inserted,
                "insert_s": round(time.perf_counter() - started),
            }, f"insert stopped at the --stop-by deadline after {inserted} of {len(vectors)} rows"
    figures: dict[str, Any] = {
        "inserted_rows": inserted,
        "insert_s": round(time.perf_counter() - started, 1),
        "insert_rows_per_s": round(inserted / (time.perf_counter() - started)),
    }
    started = time.perf_counter()
    manager.client.flush(collection)
    while time.perf_counter() - started < INDEX_TIMEOUT_S:
        info = manager.client.describe_index(collection, "vector")
        if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= info.get("total_rows", 1):
            break
        if past(stop_by):
            figures["indexed_rows_at_stop"] = info.get("indexed_rows", 0)
            figures["index_s_at_stop"] = round(time.perf_counter() - started)
            return figures, "HNSW build stopped at the --stop-by deadline"
        time.sleep(2)
    figures["index_build_s"] = round(time.perf_counter() - started, 1)
    quiet, quiet_windows = time.perf_counter(), 0
    while quiet_windows < QUIET_WINDOWS:  # compaction and segment handoff follow the build
        quiet_windows = quiet_windows + 1 if server_cpu_percent(server_pid) <= QUIET_CPU_PERCENT else 0
    figures["settle_s"] = round(time.perf_counter() - quiet)
    manager.bump_data_version(collection)
    manager.mark_complete(collection)
    manager.promote(ALIAS, collection)
    figures["server_rss_mb"] = round(sum(p.memory_info().rss for p in server_tree(server_pid)) / 2**20)
    return figures, None


def latency(engine: RetrievalEngine, vectors: np.ndarray, queries: list[str], server_pid: int) -> dict:
    """Per query, one after the other: the encoder, each mode, the limit; so background work on the server (a
    compaction, an index handoff) lands on every figure alike. The server's CPU time during the pass is recorded."""
    lexical = engine.client_index().chunks  # the leg the default (chunk-level) hybrid query ranks
    top = engine.config.retrieval.candidates
    modes: dict[str, dict[str, list[float]]] = {mode: {} for mode in ("dense", "bm25", "hybrid")}
    encoder, limit = [], {"embed": [], "exact_dense": [], "bm25s": [], "total": []}
    for mode in modes:
        engine.search(queries[0], mode=mode)
    server_cpu_before, started = server_cpu_seconds(server_pid), time.perf_counter()
    for query in queries:
        tick = time.perf_counter()
        engine.embedder.encode_queries([query])
        encoder.append((time.perf_counter() - tick) * 1000)
        for mode, stages in modes.items():
            for stage, value in engine.search(query, mode=mode).timings_ms.items():
                stages.setdefault(stage, []).append(value)
        tick = time.perf_counter()
        vector = engine.embedder.encode_queries([query])[0]
        embedded = time.perf_counter()
        np.argpartition(-(vectors @ vector), top)[:top]
        searched = time.perf_counter()
        lexical.search([query], top)
        done = time.perf_counter()
        for part, (start, end) in {
            "embed": (tick, embedded),
            "exact_dense": (embedded, searched),
            "bm25s": (searched, done),
            "total": (tick, done),
        }.items():
            limit[part].append((end - start) * 1000)
    seconds = time.perf_counter() - started
    server_share = (server_cpu_seconds(server_pid) - server_cpu_before) / seconds
    by_mode = {mode: {stage: percentiles(v) for stage, v in stages.items()} for mode, stages in modes.items()}
    encoder_p95, hybrid_p95 = percentiles(encoder)["p95"], by_mode["hybrid"]["retrieval"]["p95"]
    budget = 2 * encoder_p95 + 5
    return {
        "queries": len(queries),
        "lexical_backend": engine.lexical_backend,
        "server_core_busy_during_pass": round(server_share, 2),
        "encoder_ms": percentiles(encoder),
        "modes_ms": by_mode,
        "limit_ms": {k: percentiles(v) for k, v in limit.items()},
        "hybrid_p95_to_limit_p95": round(hybrid_p95 / percentiles(limit["total"])["p95"], 2),
        "goal": {
            "rule": "hybrid p95 <= 2 x encoder p95 + 5 ms",
            "budget_ms": round(budget, 2),
            "hybrid_p95_ms": hybrid_p95,
            "ratio_to_budget": round(hybrid_p95 / budget, 2),
            "met": hybrid_p95 <= budget,
        },
    }


def with_server(
    config: RAGConfig,
    work: Path,
    source: SciFactChunks,
    vectors: np.ndarray,
    queries: list[str],
    stop_by: datetime.datetime | None,
) -> dict:
    from tests.support.milvus_server import running_server

    (work / "server").mkdir()
    with running_server(work / "server") as server:
        config = config.model_copy(update={"milvus": config.milvus.model_copy(update={"uri": server.uri})})
        manager = MilvusIndexManager(config.milvus, config.index)
        figures, stopped = insert_and_index(manager, source, vectors, server.process.pid, stop_by)
        figures["server_cores_during_insert_and_build"] = "both (0,1), shared with the client"
        if stopped:
            return {"server": figures, "not_measured": stopped}
        folder = client_index_dir(config, ALIAS)
        export = in_fresh_process(len(vectors), folder, server.uri)
        tick = time.perf_counter()
        ClientIndex.load(folder)
        export["load_s"] = round(time.perf_counter() - tick, 1)
        gc.collect()
        pin(server.process.pid)
        engine = RagContext(config, manager=manager).engine(ALIAS)
        engine.search(queries[0])  # loads the encoder and the client-side index
        pin(server.process.pid)  # again: the threads they started may have set their own affinity
        measured = latency(engine, vectors, queries, server.process.pid)
        measured["throughput"] = throughput(engine, queries)
        measured["pinning"] = {"server_core": SERVER_CORE, "client_core": CLIENT_CORE}
        return {"server": figures, "client_index_from_server": export, "latency": measured}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=300, help="SciFact test queries, one at a time")
    parser.add_argument("--stop-by", default=None, help="HH:MM UTC: abandon the insert/index build past it")
    parser.add_argument("--client-index-only", metavar="FOLDER", help=argparse.SUPPRESS)  # in_fresh_process
    parser.add_argument("--uri", help=argparse.SUPPRESS)  # with --client-index-only: build it from this server
    args = parser.parse_args()
    config = RAGConfig.model_validate({"retrieval": {"cache_size": 0}, "quality": {"query_log": False}})
    if args.client_index_only and args.uri:
        config = config.model_copy(update={"milvus": config.milvus.model_copy(update={"uri": args.uri})})
        print(json.dumps(client_index_from_server(config, Path(args.client_index_only))))
        return 0
    source = scifact_chunks(config)
    vectors = scaled_vectors(source.vectors, args.rows)
    if args.client_index_only:
        print(json.dumps(client_index_in_memory(source, vectors, config, Path(args.client_index_only))))
        return 0
    queries = list(load_beir(SCIFACT, "test").queries.values())[: args.queries]
    stop_by = None
    if args.stop_by:
        hour, minute = map(int, args.stop_by.split(":"))
        stop_by = datetime.datetime.now(datetime.UTC).replace(hour=hour, minute=minute, second=0)
    with tempfile.TemporaryDirectory(prefix="scale-server-") as tmp:
        work = Path(tmp)
        config = RAGConfig.model_validate(
            {
                "retrieval": {"cache_size": 0, "bm25_dir": str(work / "bm25"), "metrics_dir": str(work / "metrics")},
                "quality": {"query_log": False, "drift_dir": str(work / "drift")},
                "ingestion": {"storage_dir": str(work / "assets")},
            }
        )
        figures: dict[str, Any] = {
            "meta": run_metadata(),
            "rows": args.rows,
            "scifact_chunks": len(source.rows),
            "noise_sigma": NOISE_SIGMA,
            "swapped_sentence_share": SWAPPED_SENTENCES,
            "model": source.model,
            "index": {
                "type": config.index.index_type,
                "metric": config.index.metric_type,
                "M": config.index.M,
                "efConstruction": config.index.efConstruction,
                "ef": config.index.ef,
            },
            "vectors_mb": round(vectors.nbytes / 2**20),
            "client_index_in_memory": in_fresh_process(args.rows, work / "in-memory"),
        }
        save(args.rows, figures | {"not_measured": "the server part did not finish (interrupted or failed)"})
        figures |= with_server(config, work, source, vectors, queries, stop_by)
    save(args.rows, figures)
    return 0


def save(rows: int, figures: dict) -> None:
    """This row count's figures into RESULT, beside the other row counts' (each keeps its own ``meta``)."""
    previous = json.loads(RESULT.read_text()) if RESULT.is_file() else {}
    runs = {**previous.get("runs", {}), str(rows): figures}
    write_report(
        RESULT,
        {
            "server": "Milvus 2.3.5 standalone (loopback)",
            "runs": dict(sorted(runs.items(), key=lambda item: int(item[0]))),
        },
    )


if __name__ == "__main__":
    raise SystemExit(main())
