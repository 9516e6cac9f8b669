"""Backup and restore of the SciFact index: time and size, and whether 100 test queries rank the same afterwards.

Backs up the SciFact collection `rag eval` keeps in data/milvus.db (building it on first use, as `rag eval` does)
with its client-side index, restores the snapshot into a fresh Milvus Lite file under benchmarks/scratch/, and runs
the first 100 test queries on both: Milvus's dense top 10 (ids and raw cosine, decided by the stored vectors) and the
full hybrid ranking (the shipped defaults). The fused scores also depend on the approximate HNSW candidate tail,
and a rebuilt HNSW graph is not the same graph. Heavy: run under the shared lock.

    .venv/bin/python -m benchmarks.backup_restore
"""

import shutil
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.backup.restore import restore_backup
from rag_core.backup.snapshot import create_backup
from rag_core.config import RAGConfig, load_config
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.models.embedder import shared_embedder
from rag_core.quality.evaluation import dataset_alias, load_beir
from tests.support.engines import engine_for

WORK = Path(__file__).resolve().parent / "scratch" / "backup_restore"
QUERIES = 100


def rankings(config: RAGConfig, alias: str, queries: list[str]) -> list[list[tuple[str, float]]]:
    engine = engine_for(
        config.model_copy(update={"quality": config.quality.model_copy(update={"query_log": False})}), alias=alias
    )
    results = engine.search_many(queries, engine.options())
    engine.manager.close()
    return [[(c.chunk_id, s) for c, s in zip(r.results, r.scores, strict=True)] for r in results]


def dense_leg(config: RAGConfig, alias: str, vectors: np.ndarray) -> list[list[tuple[str, float]]]:
    """Milvus's own top 10 per query (ids and raw cosine): what the stored vectors alone decide."""
    manager = MilvusIndexManager(config.milvus, config.index)
    hits = manager.search(alias, vectors, limit=10, output_fields=["doc_id"])
    manager.close()
    return [[(h.chunk_id, h.score) for h in query] for query in hits]


def main() -> None:
    source, alias = load_config(), dataset_alias(SCIFACT)
    test = load_beir(SCIFACT, "test")
    ingest_path(test.corpus, RagContext(source), collection=alias, prune=True)  # no-op when `rag eval` built it already
    queries = list(test.queries.values())[:QUERIES]
    before = rankings(source, alias, queries)
    vectors = shared_embedder(source.embedding).encode_queries(queries)
    dense_before = dense_leg(source, alias, vectors)

    shutil.rmtree(WORK, ignore_errors=True)
    backup = create_backup(source, WORK / "snapshot", alias=alias)
    target = RAGConfig.model_validate(
        source.model_dump()
        | {
            "milvus": source.milvus.model_dump() | {"uri": str(WORK / "restored" / "milvus.db")},
            "retrieval": source.retrieval.model_dump()
            | {"bm25_dir": str(WORK / "restored" / "bm25"), "metrics_dir": str(WORK / "restored" / "metrics")},
            "compliance": source.compliance.model_dump() | {"database_url": f"sqlite:///{WORK / 'restored' / 'a.db'}"},
        }
    )
    restored = restore_backup(target, WORK / "snapshot")
    after = rankings(target, alias, queries)
    dense_pairs = list(zip(dense_before, dense_leg(target, alias, vectors), strict=True))
    dense_ids = sum([c for c, _ in a] == [c for c, _ in b] for a, b in dense_pairs)
    # The same chunk's cosine before and after (the chunks both top 10s hold): the stored vectors' fidelity.
    dense_gap = max(abs(score - dict(b)[chunk]) for a, b in dense_pairs for chunk, score in a if chunk in dict(b))
    same_ids = sum([c for c, _ in a] == [c for c, _ in b] for a, b in zip(before, after, strict=True))
    same_scores = sum(a == b for a, b in zip(before, after, strict=True))
    pairs = [(a, b) for a, b in zip(before, after, strict=True) if [c for c, _ in a] == [c for c, _ in b]]
    score_gap = max(abs(x[1] - y[1]) for a, b in pairs for x, y in zip(a, b, strict=True))
    write_report(
        OUT / "backup_restore.json",
        {
            "dataset": "SciFact (BEIR) corpus, test queries",
            "source": "Milvus Lite",
            "target": "Milvus Lite",
            "versions": backup.versions,
            "rows": backup.rows,
            "snapshot_bytes": backup.bytes,
            "backup_s": round(backup.seconds, 2),
            "restore_s": round(restored.seconds, 2),
            "queries": len(queries),
            "identical_ids": same_ids,
            "identical_scores": same_scores,
            "max_score_difference": score_gap,
            "dense_top10_identical_ids": dense_ids,
            "dense_max_score_difference": dense_gap,
            "notes": restored.notes,
        },
    )
    shutil.rmtree(WORK, ignore_errors=True)


if __name__ == "__main__":
    main()
