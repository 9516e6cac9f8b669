"""The query log: every retrieval leaves one record, written off the query's path, safe with several writers."""

import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag_core.config import RAGConfig
from rag_core.observability.query_log import QueryLog, QueryLogError, read_query_log
from tests.support.engines import engine_for
from tests.support.paths import REPO


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_every_retrieval_is_logged_with_a_hash_not_the_text(config: RAGConfig, embedder) -> None:
    engine = engine_for(config, embedder=embedder)
    first = engine.search("alias swaps indexes")
    again = engine.search("  Alias swaps INDEXES ")  # a cache hit, logged all the same
    engine.search("bm25 term frequency", mode="bm25")
    assert engine.query_log.flush() == 3
    table = read_query_log(Path(config.quality.query_log_dir)).to_pylist()
    assert [r["query_id"] for r in table] == [first.query_id, again.query_id, table[2]["query_id"]]
    logged, hit, lexical = table
    assert logged["query_text"] is None and "alias" not in str(logged).lower()
    assert logged["query_hash"] == hit["query_hash"] != lexical["query_hash"], "the same query hashes alike"
    assert (logged["cache_hit"], hit["cache_hit"]) == (False, True)
    assert np.allclose(logged["query_vector"], first.query_vector, atol=1e-6) and lexical["query_vector"] is None
    assert logged["result_ids"] == [c.chunk_id for c in first.results]
    assert logged["collection"] == first.collection and logged["data_version"] == first.data_version >= 1
    assert dict(logged["latency_ms"])["retrieval"] > 0 and dict(logged["settings"])["mode"] == "hybrid"
    assert dict(logged["signals"])["top_score"] == pytest.approx(first.results[0].fused_score, rel=1e-6)
    today = datetime.datetime.now(datetime.UTC).date()
    assert logged["time"].tzinfo is not None and logged["time"].date() == today
    day = f"date={logged['time'].date().isoformat()}"
    assert [p.parent.name for p in Path(config.quality.query_log_dir).glob("date=*/*.parquet")] == [day]


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_the_text_is_kept_only_when_asked_and_the_log_can_be_off(config: RAGConfig, embedder) -> None:
    keeping = config.model_copy(update={"quality": config.quality.model_copy(update={"log_query_text": True})})
    engine = engine_for(keeping, embedder=embedder)
    engine.search("alias swaps indexes")
    engine.query_log.flush()
    assert read_query_log(Path(config.quality.query_log_dir)).column("query_text").to_pylist() == [
        "alias swaps indexes"
    ]
    off = config.model_copy(update={"quality": config.quality.model_copy(update={"query_log": False})})
    quiet = engine_for(off, embedder=embedder)
    assert quiet.query_log is None and quiet.search("alias swaps indexes").query_id == ""


def test_several_processes_append_at_once_and_lose_nothing(tmp_path: Path) -> None:
    writer = (
        "import sys; from pathlib import Path; from rag_core.observability.query_log import QueryLog\n"
        "log = QueryLog(Path(sys.argv[1]), flush_s=0.01)\n"
        "for i in range(300):\n"
        "    log.record(normalised_query=f'q{i}', query=f'q{i}', query_vector=None, mode='bm25', settings={},\n"
        "               collection='c', data_version=1, result_ids=[], result_scores=[], latency_ms={},\n"
        "               cache_hit=False, signals={})\n"
    )
    processes = [subprocess.Popen([sys.executable, "-c", writer, str(tmp_path / "log")], cwd=REPO) for _ in range(4)]
    assert [p.wait(timeout=120) for p in processes] == [0] * 4
    table = read_query_log(tmp_path / "log")
    assert table.num_rows == 1200 and len(set(table.column("query_id").to_pylist())) == 1200
    assert len(set(table.column("query_hash").to_pylist())) == 300, "one salt for every writer of the folder"


def test_an_unusable_folder_is_named_and_reading_bounds_days(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(QueryLogError, match=r"file/log cannot be used .*quality.query_log_dir"):
        QueryLog(tmp_path / "file" / "log")
    log = QueryLog(tmp_path / "log")
    log.record(
        normalised_query="q",
        query="q",
        query_vector=None,
        mode="bm25",
        settings={},
        collection="c",
        data_version=1,
        result_ids=["a"],
        result_scores=[1.0],
        latency_ms={"retrieval": 2.0},
        cache_hit=False,
        signals={},
    )
    log.close()
    today = datetime.datetime.now(datetime.UTC).date()
    assert read_query_log(tmp_path / "log", start=today, end=today).num_rows == 1
    assert read_query_log(tmp_path / "log", end=today - datetime.timedelta(days=1)).num_rows == 0
    assert read_query_log(tmp_path / "empty").num_rows == 0


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_performance_report_reads_the_log(
    config: RAGConfig, embedder, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from rag_core.observability.performance import performance_report

    engine = engine_for(config, embedder=embedder)
    for query in ("alias swaps indexes", "alias swaps indexes", "bm25 term frequency", "cosine similarity"):
        engine.search(query)
    engine.query_log.flush()
    report = performance_report(Path(config.quality.query_log_dir), period="monthly", target_latency_ms=1e9)
    assert (report.queries, report.cache_hit_rate, report.sla_compliance) == (4, 0.25, 1.0)
    assert len(report.days) == 1 and report.days[0].queries == 4 and "top_score" in report.days[0].signals
    assert report.latency_ms["retrieval"].p50 > 0 and report.slowest[0].retrieval_ms >= report.slowest[-1].retrieval_ms
    later = datetime.date.today() + datetime.timedelta(days=40)
    assert (
        performance_report(
            Path(config.quality.query_log_dir), period="monthly", target_latency_ms=80, today=later
        ).queries
        == 0
    )
    with pytest.raises(ValueError, match="Unknown period 'yearly'"):
        performance_report(Path(config.quality.query_log_dir), period="yearly", target_latency_ms=80)

    script = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "analyze_performance.py"), "--period", "monthly", "--json"],
        env={**os.environ, "RAG__QUALITY__QUERY_LOG_DIR": config.quality.query_log_dir},
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert script.returncode == 0, script.stderr
    assert json.loads(script.stdout)["queries"] == 4
