"""`rag eval`'s evaluation: batched for the quality figures, a seeded sample timed one at a time for latency."""

import io
import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from rag_core.cli.main import build_parser, main
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.observability.progress import ProgressReporter
from rag_core.quality.evaluation import (
    BeirDataset,
    dataset_alias,
    evaluate,
    evaluation_options,
    latency_sample_ids,
    load_beir,
)
from rag_core.retrieval.cache import CacheStats
from rag_core.retrieval.engine import RetrievalEngine
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS

QUERIES = {
    "q1": "how are deleted rows purged",
    "q2": "ef trades accuracy for speed",
    "q3": "folder sensor run",
    "q4": "term frequency scoring",
    "q5": "cross-encoder relevance",
    "q6": "swap the collection version",
    "q7": "cosine equals inner product",
}
ANSWERS = {
    "q1": "compaction",
    "q2": "hnsw",
    "q3": "sensor",
    "q4": "bm25",
    "q5": "rerank",
    "q6": "alias",
    "q7": "cosine",
}


def write_dataset(folder: Path) -> Path:
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": "", "text": v}) for k, v in RETRIEVAL_DOCS.items())
    )
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": k, "text": t}) for k, t in QUERIES.items()))
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, d in ANSWERS.items())
    )
    return folder


@pytest.fixture
def indexed(tmp_path: Path, embedder) -> Iterator[tuple[BeirDataset, MilvusIndexManager, RAGConfig]]:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    dataset = load_beir(write_dataset(tmp_path / "tiny"))
    manager = MilvusIndexManager(config.milvus, config.index)
    ingest_path(
        dataset.corpus,
        RagContext(config, embedder=embedder, manager=manager),
        collection=dataset_alias(dataset.root),
        prune=True,
    )
    yield dataset, manager, config
    manager.close()


def engine_for(indexed, embedder) -> RetrievalEngine:
    """A fresh engine (its own empty query cache) on the shared Lite client: one process per .db file."""
    dataset, manager, config = indexed
    return RetrievalEngine(config, embedder=embedder, manager=manager, alias=dataset_alias(dataset.root))


def ranked(run: dict) -> dict[str, list[str]]:
    return {q: [doc for doc, _ in hits] for q, hits in run.items()}


def test_batched_evaluation_gives_the_one_at_a_time_run_and_scores(indexed, embedder) -> None:
    dataset = indexed[0]
    passes = {}
    for label, settings in {
        "one at a time": {"latency_sample": 0},
        "batched": {"batch_size": 3, "latency_sample": 2},
    }.items():
        engine = engine_for(indexed, embedder)
        seen: list[str] = []
        log = io.StringIO()
        report, run = evaluate(
            engine,
            dataset,
            evaluation_options(engine),
            on_result=lambda qid, _, seen=seen: seen.append(qid),
            progress=ProgressReporter(stream=log, interval_s=0),
            **settings,
        )
        passes[label] = (report, run, seen, re.findall(r"^eval: (\d+)/7 queries", log.getvalue(), re.MULTILINE))
    (one, one_run, one_seen, _), (batched, batched_run, batched_seen, counts) = (
        passes["one at a time"],
        passes["batched"],
    )
    assert counts == [str(n) for n in range(len(QUERIES) + 1)], "progress advances per query, not per batch"
    assert ranked(batched_run) == ranked(one_run) and len(one_run) == len(QUERIES)
    # Scores agree to rounding: a batch's dense scores (Lite's float32 in-process copy) and corpus moments come from
    # matrix products, whose sums run in another order than one query's product; standardised, ~1e-6 apart.
    assert {q: [s for _, s in hits] for q, hits in batched_run.items()} == {
        q: pytest.approx([s for _, s in hits], abs=1e-4) for q, hits in one_run.items()
    }
    assert (batched.ndcg_at_10, batched.recall_at_100, batched.mrr_at_10) == (
        one.ndcg_at_10,
        one.recall_at_100,
        one.mrr_at_10,
    )
    assert one.ndcg_at_10 > 0.8, "the tiny dataset is answerable: an empty run would also be 'identical'"
    assert batched_seen == one_seen == list(QUERIES), "on_result sees every query once, in order"
    assert (one.latency_queries, batched.latency_queries) == (len(QUERIES), 2)
    assert batched.queries == one.queries == len(QUERIES)


def test_latency_sample_times_real_searches_not_cache_hits(indexed, embedder, monkeypatch) -> None:
    engine = engine_for(indexed, embedder)
    calls: list[int] = []
    encode = embedder.encode_queries
    monkeypatch.setattr(embedder, "encode_queries", lambda texts: calls.append(len(texts)) or encode(texts))
    report, _ = evaluate(engine, indexed[0], evaluation_options(engine), batch_size=4, latency_sample=3)
    assert calls == [4, 3, 1, 1, 1], "two batches embedded at once, then three queries embedded one by one"
    assert report.latency_queries == 3 and 0 < report.latency_p50_ms <= report.latency_p95_ms
    assert engine.cache.stats == CacheStats(hits=0, misses=len(QUERIES), size=len(QUERIES)), (
        "the timed pass never hit the cache, and the engine's own cache is back afterwards"
    )


def test_latency_sample_is_fixed_whatever_the_order_of_the_queries() -> None:
    ids = [f"q{i}" for i in range(50)]
    sample = latency_sample_ids(ids, 10)
    assert sample == latency_sample_ids(list(reversed(ids)), 10) and len(set(sample)) == 10
    assert set(sample) <= set(ids) and sample == sorted(sample)
    assert latency_sample_ids(ids, 50) == latency_sample_ids(ids, 500) == sorted(ids)


def test_a_sync_that_changes_rows_flushes_once_and_an_unchanged_one_does_not(indexed, embedder, monkeypatch) -> None:
    dataset, manager, config = indexed
    flushed: list[str] = []
    flush = manager.flush
    monkeypatch.setattr(manager, "flush", lambda collection: (flushed.append(collection), flush(collection)))
    alias = dataset_alias(dataset.root)
    ingest_path(dataset.corpus, RagContext(config, embedder=embedder, manager=manager), collection=alias, prune=True)
    assert flushed == [], "nothing changed: nothing to seal"
    (dataset.root / "corpus.jsonl").write_text(json.dumps({"_id": "new", "text": "A document added later."}))
    report = ingest_path(
        dataset.corpus, RagContext(config, embedder=embedder, manager=manager), collection=alias, prune=True
    )
    assert report.sync.upserted == 1 and report.sync.deleted == len(RETRIEVAL_DOCS)
    assert flushed == [report.sync.collection], "one flush at the end of the sync, not one per batch"


def test_rag_eval_reports_how_many_queries_its_latency_comes_from(
    tmp_path: Path, monkeypatch, embedder, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("MILVUS_URI", "MILVUS_HOST", "MILVUS_PORT", "RAG_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    dataset = write_dataset(tmp_path / "tiny")
    assert main(["eval", "--dataset", str(dataset), "--json", "--latency-sample", "2", "--quiet"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["latency_queries"] == 2 and scores["queries"] == len(QUERIES) and scores["ndcg@10"] > 0.8
    assert main(["eval", "--dataset", str(dataset), "--quiet"]) == 0
    assert f"({len(QUERIES)} queries one at a time)" in capsys.readouterr().out, "the default sample exceeds 7"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["eval", "--dataset", str(dataset), "--latency-sample", "-1"])
    assert "--latency-sample: must be an integer >= 0, got -1" in capsys.readouterr().err
