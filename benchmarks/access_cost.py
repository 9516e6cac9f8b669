"""What access labels cost and change, side by side in one run: SciFact on Milvus Lite, and 100k rows on the real
2.3.5 server (issue 20).

Rows: the SciFact chunks as the project embeds them (``benchmarks.scale_server``'s cache), each document given one
of three groups by a seeded hash, all in one tenant; on the server, repeated to ``--server-rows`` as
``scale_server`` does (every copy a document of its own, labelled by its own hash). Three callers ask the 300 test
queries, one at a time, alternating which goes first, with the query cache and the query log off:

- ``unfiltered``: no principal (what evaluation and the gate use);
- ``everyone``: a reader of all three groups: every document readable, through the same filter path;
- ``third``: a reader of one group, about a third of the documents.

Reported: wall p50/p95 per caller and the p95 ratios to unfiltered; nDCG@10 of unfiltered and everyone (the same
ranking must come back) and of third against the qrels restricted to what it may read; results outside a
caller's access; answers short of the top 10. The first query of each caller (Milvus evaluating its filter, the
legs' masks built) is reported apart and left out of the percentiles.

Usage: python -m benchmarks.access_cost [--server-rows 100000] [--queries 300]   (--server-rows 0: Lite only)
"""

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, run_metadata, write_report
from benchmarks.scale_server import SciFactChunks, scaled_rows, scaled_vectors, scifact_chunks
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import finish_version
from rag_core.lifecycle.context import RagContext
from rag_core.quality.evaluation import load_beir, ndcg_at_k
from rag_core.retrieval.engine import RetrievalEngine
from rag_core.security.principals import reads
from rag_core.security.rbac import Identity, Role
from rag_core.types import GROUPS_FIELD, TENANT_FIELD

GROUPS = ("g0", "g1", "g2")
TENANT = "default"
TOP_K = 10
INDEX_TIMEOUT_S = 1800
CALLERS: dict[str, Identity | None] = {
    "unfiltered": None,
    "everyone": Identity(name="everyone", role=Role.READER, groups=frozenset(GROUPS), tenant=TENANT),
    "third": Identity(name="third", role=Role.READER, groups=frozenset({"g0"}), tenant=TENANT),
}


def group_of(doc_id: str) -> str:
    return GROUPS[hashlib.sha256(f"access-cost:{doc_id}".encode()).digest()[0] % len(GROUPS)]


def readable(principal: Identity | None, doc_id: str) -> bool:
    return principal is None or reads(principal, (group_of(doc_id),), TENANT)


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95 = np.percentile(values, [50, 95])
    return {"p50": round(float(p50), 2), "p95": round(float(p95), 2)}


def config_for(work: Path, uri: str) -> RAGConfig:
    return RAGConfig.model_validate(
        {
            "milvus": {"uri": uri, "collection": "access_cost"},
            "retrieval": {"cache_size": 0, "bm25_dir": str(work / "bm25"), "metrics_dir": str(work / "metrics")},
            "quality": {"query_log": False, "drift_dir": str(work / "drift")},
            "ingestion": {"storage_dir": str(work / "assets")},
        }
    )


def load_labelled(manager: MilvusIndexManager, source: SciFactChunks, rows: int, *, server: bool) -> dict[str, Any]:
    """A labelled version of ``rows`` rows, served by the alias; with ``server``, waited on until HNSW is built."""
    version = manager.version_for(source.model, source.dimension, source.chunking)
    collection = manager.create_version("access_cost", version)
    started, ids = time.perf_counter(), set()
    for batch in scaled_rows(source, rows, scaled_vectors(source.vectors, rows)):
        for row in batch:
            row[GROUPS_FIELD], row[TENANT_FIELD] = [group_of(row["doc_id"])], TENANT
            ids.add(row["chunk_id"])
        manager.upsert(collection, batch)
    manager.flush(collection)
    figures: dict[str, Any] = {"rows": rows, "insert_s": round(time.perf_counter() - started, 1)}
    if server:
        tick = time.perf_counter()
        while time.perf_counter() - tick < INDEX_TIMEOUT_S:
            info = manager.client.describe_index(collection, "vector")
            if info.get("pending_index_rows", 0) == 0 and info.get("indexed_rows", 0) >= info.get("total_rows", 1):
                break
            time.sleep(2)
        figures["index_build_s"] = round(time.perf_counter() - tick, 1)
    manager.bump_data_version(collection)
    finish_version(manager, "access_cost", collection, ids)
    return figures


def measure(engine: RetrievalEngine, queries: dict[str, str], qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
    options = engine.options(top_k=max(TOP_K, engine.config.pipeline.top_k), rerank_top_k=TOP_K, document_level=True)
    engine.search_many(["warm up the encoder and the client-side index"], options)
    first = {}
    for name, principal in CALLERS.items():
        tick = time.perf_counter()
        engine.search_many(["warm up this caller's filter"], options, principal=principal)
        first[name] = round((time.perf_counter() - tick) * 1000, 1)
    wall: dict[str, list[float]] = {name: [] for name in CALLERS}
    ndcg: dict[str, list[float]] = {name: [] for name in CALLERS}
    outside = dict.fromkeys(CALLERS, 0)
    short = dict.fromkeys(CALLERS, 0)
    for number, (qid, query) in enumerate(queries.items()):
        names = list(CALLERS) if number % 2 == 0 else list(reversed(CALLERS))
        for name in names:
            principal = CALLERS[name]
            tick = time.perf_counter()
            (result,) = engine.search_many([query], options, principal=principal)
            wall[name].append((time.perf_counter() - tick) * 1000)
            found = [c.doc_id for c in result.results]
            outside[name] += sum(not readable(principal, d) for d in found)
            short[name] += len(found) < TOP_K
            judged = {d: g for d, g in qrels.get(qid, {}).items() if readable(principal, d)}
            if any(g > 0 for g in judged.values()):
                ndcg[name].append(ndcg_at_k(found, judged, 10))
    latency = {name: percentiles(values) for name, values in wall.items()}
    return {
        "queries": len(queries),
        "dense_search": "the client's copy of the vectors (mask before top)"
        if engine.dense_mirror_metric
        else "Milvus (the filter expression inside the HNSW search)",
        "lexical": f"{engine.lexical_backend} (mask before top)",
        "first_query_ms": first,
        "latency_ms": latency,
        "p95_ratio_to_unfiltered": {
            name: round(latency[name]["p95"] / latency["unfiltered"]["p95"], 3) for name in CALLERS
        },
        "ndcg_at_10": {name: round(float(np.mean(v)), 4) if v else None for name, v in ndcg.items()},
        "ndcg_queries": {name: len(v) for name, v in ndcg.items()},
        "results_outside_access": outside,
        "answers_short_of_top_10": short,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server-rows", type=int, default=100_000, help="0: Milvus Lite only")
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--out", default=str(OUT / "access_cost.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    source = scifact_chunks(RAGConfig.model_validate({"retrieval": {"cache_size": 0}, "quality": {"query_log": False}}))
    test = load_beir(SCIFACT, "test")
    queries = dict(list(test.queries.items())[: args.queries])
    documents = {r["doc_id"] for r in source.rows}
    figures: dict[str, Any] = {
        "meta": run_metadata(),
        "scifact_documents": len(documents),
        "group_shares": {g: round(sum(group_of(d) == g for d in documents) / len(documents), 3) for g in GROUPS},
    }
    with tempfile.TemporaryDirectory(prefix="access-cost-") as tmp:
        work = Path(tmp)
        config = config_for(work / "lite", str(work / "lite" / "milvus.db"))
        (work / "lite").mkdir()
        context = RagContext(config)
        lite = load_labelled(context.manager, source, len(source.rows), server=False)
        figures["lite"] = lite | measure(context.engine(), queries, test.qrels)
        print(json.dumps(figures["lite"]["p95_ratio_to_unfiltered"]), flush=True)
        context.manager.close()
        if args.server_rows:
            from tests.support.milvus_server import running_server

            (work / "server").mkdir()
            with running_server(work / "server") as server:
                config = config_for(work / "srv", server.uri)
                context = RagContext(config)
                loaded = load_labelled(context.manager, source, args.server_rows, server=True)
                figures["server"] = loaded | measure(context.engine(), queries, test.qrels)
                context.manager.close()
    figures["seconds"] = round(time.perf_counter() - started, 1)
    write_report(args.out, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
