"""Zero downtime, measured: 8 threads query without pause while ``reindex`` builds ``NAME__vN+1`` and moves the
alias; every answer must succeed and come from one complete version (its collection and data version are those of
a version that was complete, and every chunk it returned is in that version).

    python -m benchmarks.zero_downtime     # writes benchmarks/out/zero_downtime.json (this project's docs/, Lite)

``tests/unit/test_zero_downtime.py`` runs the same ``under_load`` on Milvus Lite and on the real server.
"""

import tempfile
import threading
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path

from benchmarks.report import OUT, write_report
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.lifecycle.reindex import reindex
from rag_core.models.embedder import Embedder, shared_embedder
from rag_core.retrieval.engine import RetrievalEngine

DOCS = Path(__file__).resolve().parents[1] / "docs"
THREADS = 8
SETTLE_S = 2.0  # querying goes on this long before the re-index and after the alias moved
QUERIES = [
    "How do I check that Milvus is healthy?",
    "rollback to the previous version",
    "what does compaction do",
    "BM25 client-side index",
    "interrupting a run",
    "which files are read",
    "query cache key",
    "corpus normalisation of the dense leg",
    "drift snapshot",
    "quality gate of a re-index",
]


@dataclass(frozen=True)
class Answer:
    collection: str
    data_version: int
    chunk_ids: tuple[str, ...]
    at: float


@dataclass(frozen=True)
class LoadRun:
    threads: int
    answered: int
    errors: list[str]
    versions_seen: dict[str, int]  # collection -> answers it gave
    complete_versions: dict[str, int]  # collection -> its data version once complete
    inconsistent: int  # answers from no complete version, or with a chunk that version does not hold
    served_before: str
    served_after: str
    answers_during_reindex: int
    reindex_seconds: float
    seconds: float


def under_load(config: RAGConfig, *, embedder: Embedder, threads: int = THREADS) -> LoadRun:
    """Query ``config``'s alias from ``threads`` threads while it is re-indexed (the cache off: every answer is a
    real search), then check every answer against the versions that were complete."""
    config = config.model_copy(update={"retrieval": config.retrieval.model_copy(update={"cache_size": 0})})
    manager = MilvusIndexManager(config.milvus, config.index)
    engine = RetrievalEngine(config, embedder=embedder, manager=manager)
    alias = config.milvus.collection
    before = manager.resolve(alias)
    answers: list[Answer] = []
    errors: list[str] = []
    stop = threading.Event()

    def ask(worker: int) -> None:
        turn = worker
        while not stop.is_set():
            try:
                result = engine.search(QUERIES[turn % len(QUERIES)])
                answers.append(
                    Answer(
                        result.collection,
                        result.data_version,
                        tuple(c.chunk_id for c in result.results),
                        time.perf_counter(),
                    )
                )
            except Exception as error:  # noqa: BLE001 - every failure is a figure of this benchmark
                errors.append(f"{type(error).__name__}: {error}")
            turn += 1

    started = time.perf_counter()
    pool = [threading.Thread(target=ask, args=(i,), daemon=True) for i in range(threads)]
    for thread in pool:
        thread.start()
    time.sleep(SETTLE_S)
    reindex_started = time.perf_counter()
    reindex(RagContext(config, embedder=embedder, manager=manager))
    reindex_ended = time.perf_counter()
    time.sleep(SETTLE_S)
    stop.set()
    for thread in pool:
        thread.join()
    if engine.query_log:
        engine.query_log.close()
    complete = {v: manager.state(v) for v in manager.versions(alias)}
    complete = {v: s for v, s in complete.items() if s.complete}
    held = {v: set(manager.list_chunk_ids(v)) for v in complete}
    inconsistent = sum(
        a.collection not in complete
        or a.data_version != complete[a.collection].data_version
        or not set(a.chunk_ids) <= held[a.collection]
        or not a.chunk_ids
        for a in answers
    )
    return LoadRun(
        threads=threads,
        answered=len(answers),
        errors=errors[:20],
        versions_seen=dict(Counter(a.collection for a in answers)),
        complete_versions={v: s.data_version for v, s in complete.items()},
        inconsistent=inconsistent,
        served_before=before or "",
        served_after=manager.resolve(alias) or "",
        answers_during_reindex=sum(reindex_started <= a.at <= reindex_ended for a in answers),
        reindex_seconds=round(reindex_ended - reindex_started, 2),
        seconds=round(time.perf_counter() - started, 2),
    )


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="zero-downtime-"))
    config = RAGConfig.model_validate(
        {
            "milvus": {"uri": str(work / "milvus.db")},
            "retrieval": {"bm25_dir": str(work / "bm25"), "metrics_dir": str(work / "metrics")},
            "quality": {"query_log_dir": str(work / "query_log"), "drift_dir": str(work / "drift")},
        }
    )
    embedder = shared_embedder(config.embedding)
    ingest_path(DOCS, RagContext(config, embedder=embedder))
    run = under_load(config, embedder=embedder)
    figures = {
        "backend": "milvus-lite",
        "corpus": "docs/ of this project",
        "rows": MilvusIndexManager(config.milvus, config.index).count(run.served_after),
        **asdict(run),
    }
    write_report(OUT / "zero_downtime.json", figures)
    print(
        f"{run.answered} answers from {run.threads} threads ({run.answers_during_reindex} during the "
        f"{run.reindex_seconds}s re-index), {len(run.errors)} errors, {run.inconsistent} inconsistent; "
        f"versions seen {run.versions_seen}; {run.served_before} -> {run.served_after}"
    )


if __name__ == "__main__":
    main()
