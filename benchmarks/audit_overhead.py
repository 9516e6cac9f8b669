"""What the audit write costs a query, measured in one run: the same engine answers the same queries in
alternation, once bare and once followed by the RETRIEVAL record the API writes (SQLite WAL, synchronous commit,
the default store). The ``AuditTrail.record`` call alone is timed too, on SQLite and on PostgreSQL.

    python -m benchmarks.audit_overhead     # writes benchmarks/out/audit_overhead.json
"""

import tempfile
import time
from pathlib import Path

from benchmarks.query_log_overhead import DOCS, QUERIES, percentiles
from benchmarks.report import OUT, write_report
from rag_core.compliance.audit import AuditTrail, audit_trail
from rag_core.compliance.audit_store import AuditStore
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.lifecycle.audit_details import retrieval_details
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.models.embedder import shared_embedder
from tests.support.engines import engine_for
from tests.support.postgres_server import running_postgres

ROUNDS = 400
RECORD_CALLS = 2000


def record_call_us(trail: AuditTrail) -> dict[str, float]:
    samples = []
    for i in range(RECORD_CALLS):
        started = time.perf_counter()
        trail.record(
            AuditEventType.RETRIEVAL,
            actor="bench@api",
            details=retrieval_details(
                query_id=f"q{i}",
                collection="c_v1",
                data_version=1,
                mode="hybrid",
                result_ids=["a", "b", "c", "d", "e"],
                cached=False,
            ),
        )
        samples.append((time.perf_counter() - started) * 1e6)
    return percentiles(samples)


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="audit-overhead-"))
    config = RAGConfig.model_validate(
        {
            "milvus": {"uri": str(work / "milvus.db")},
            "retrieval": {"cache_size": 0, "bm25_dir": str(work / "bm25"), "metrics_dir": str(work / "metrics")},
            "quality": {"query_log_dir": str(work / "query_log")},
            "compliance": {"database_url": f"sqlite:///{work / 'audit.db'}"},
        }
    )
    embedder = shared_embedder(config.embedding)
    ingest_path(DOCS, RagContext(config, embedder=embedder))
    engine = engine_for(config, embedder=embedder)
    trail = audit_trail(config)
    engine.search(QUERIES[0])  # cold start (model, client-side index) out of the way

    def audited(query: str) -> None:
        result = engine.search(query)
        trail.record(
            AuditEventType.RETRIEVAL,
            details=retrieval_details(
                query_id=result.query_id,
                collection=result.collection,
                data_version=result.data_version,
                mode="hybrid",
                result_ids=[c.doc_id for c in result.results],
                cached=result.cached,
            ),
        )

    latency: dict[str, list[float]] = {"with_audit": [], "without_audit": []}
    for i in range(ROUNDS):
        runs = [("with_audit", audited), ("without_audit", engine.search)]
        for name, run in runs if i % 2 == 0 else runs[::-1]:
            started = time.perf_counter()
            run(QUERIES[i % len(QUERIES)])
            latency[name].append((time.perf_counter() - started) * 1000)
    engine.query_log.close()
    on, off = percentiles(latency["with_audit"]), percentiles(latency["without_audit"])
    sqlite_call = record_call_us(AuditTrail(AuditStore(f"sqlite:///{work / 'calls.db'}")))
    with running_postgres(fsync=True) as server:
        postgres_call = record_call_us(AuditTrail(AuditStore(server.new_database())))
    write_report(
        OUT / "audit_overhead.json",
        {
            "setup": f"{ROUNDS} queries each way, alternating, one engine, cache off, Milvus Lite, "
            "this project's docs/; "
            f"record() alone: {RECORD_CALLS} calls per store (PostgreSQL 15 on loopback, fsync on)",
            "query_ms": {"with_audit": on, "without_audit": off},
            "overhead_ms": {q: round(on[q] - off[q], 4) for q in on},
            "record_call_us": {"sqlite": sqlite_call, "postgresql": postgres_call},
        },
    )


if __name__ == "__main__":
    main()
