"""The ``rag`` command: what a user types and reads."""

import json
from pathlib import Path

import pytest

from rag_core.cli.main import main
from tests.support.corpus import write_corpus


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("MILVUS_URI", "MILVUS_HOST", "MILVUS_PORT", "RAG_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    write_corpus(tmp_path / "docs")
    (tmp_path / "docs" / "empty.txt").write_text("")
    return tmp_path


def test_ingest_then_reingest_then_stats_and_health(workdir: Path, embedder, capsys: pytest.CaptureFixture) -> None:
    assert main(["ingest", "docs"]) == 0
    out, err = capsys.readouterr()
    assert "ingested 5 documents" in out and "semantic_index -> semantic_index__v1" in out
    assert "docs/empty.txt: empty file" in err

    assert main(["ingest", "docs"]) == 0
    out, _ = capsys.readouterr()
    assert "0 embedded and upserted" in out and "0 stale deleted" in out

    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["collection"] == "semantic_index__v1" and stats["row_count"] > 5
    assert stats["index_version"]["model"] == "bundled:all-MiniLM-L6-v2"

    assert main(["health"]) == 0
    assert "ok: data/milvus.db (Milvus milvus_lite-" in capsys.readouterr().out

    assert main(["compact"]) == 0
    assert "compacted semantic_index__v1" in capsys.readouterr().out


def test_stats_lists_each_source_with_its_documents_and_rows(
    workdir: Path, embedder, capsys: pytest.CaptureFixture
) -> None:
    """The README said `rag stats` shows the sources (the folders given to `rag ingest`); it showed none."""
    (workdir / "notes").mkdir()
    (workdir / "notes" / "one.txt").write_text("A single note about aliases.\n")
    assert main(["ingest", "docs"]) == 0 and main(["ingest", "notes"]) == 0
    capsys.readouterr()

    assert main(["stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    docs, notes = str((workdir / "docs").resolve()), str((workdir / "notes").resolve())
    by_name = {s["source"]: s for s in stats["sources"]}
    assert set(by_name) == {docs, notes}
    assert by_name[docs]["documents"] == 5 and by_name[docs]["rows"] > 5, "long.md is several chunks"
    assert by_name[notes] == {"source": notes, "documents": 1, "rows": 1}
    assert sum(s["rows"] for s in stats["sources"]) == stats["row_count"]

    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert f"source {docs}: 5 documents, {by_name[docs]['rows']} rows" in out
    assert f"source {notes}: 1 documents, 1 rows" in out


def test_ingest_into_a_named_collection(workdir: Path, embedder, capsys: pytest.CaptureFixture) -> None:
    assert main(["ingest", "docs/bm25.txt", "--collection", "notes"]) == 0
    assert "ingested 1 documents" in capsys.readouterr().out
    assert main(["stats", "--collection", "notes"]) == 0
    assert "notes -> notes__v1" in capsys.readouterr().out


def test_errors_name_what_to_fix(workdir: Path, capsys: pytest.CaptureFixture, monkeypatch) -> None:
    assert main(["ingest", "missing-folder"]) == 2
    assert "missing-folder does not exist" in capsys.readouterr().err
    assert main(["stats"]) == 2
    assert "run the ingestion first" in capsys.readouterr().err
    monkeypatch.setenv("MILVUS_URI", "http://127.0.0.1:1")
    monkeypatch.setenv("RAG__MILVUS__RETRY_ATTEMPTS", "1")
    assert main(["health"]) == 1
    assert "http://127.0.0.1:1" in capsys.readouterr().err
    (workdir / "config.yaml").write_text("pipeline:\n  top_k: -1\n")
    assert main(["health"]) == 2
    assert "pipeline.top_k" in capsys.readouterr().err


def write_beir(folder: Path) -> Path:
    """A tiny BEIR dataset: each query is answered by one document; q3 is also a corpus id (self-hits ignored)."""
    corpus = {
        "d1": ("Compaction", "Compaction merges segments and purges deleted rows."),
        "d2": ("Sensors", "A sensor requests a run when files change in a folder."),
        "d3": ("HNSW", "The ef parameter of HNSW trades accuracy for speed."),
        "q3": ("Decoy", "This document has the id of a query and must be ignored as a self-hit."),
    }
    queries = {"q1": "how are deleted rows purged", "q2": "run when files change", "q3": "HNSW ef accuracy speed"}
    folder.mkdir()
    (folder / "corpus.jsonl").write_text(
        "\n".join(json.dumps({"_id": k, "title": t, "text": x}) for k, (t, x) in corpus.items())
    )
    (folder / "queries.jsonl").write_text("\n".join(json.dumps({"_id": k, "text": t}) for k, t in queries.items()))
    (folder / "qrels").mkdir()
    (folder / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t1\nq3\td3\t1\n")
    return folder


def test_query_prints_ranked_chunks_and_json(workdir: Path, embedder, capsys: pytest.CaptureFixture) -> None:
    assert main(["ingest", "docs"]) == 0
    capsys.readouterr()
    assert main(["query", "How are deleted rows purged in Milvus?", "--top-k", "2"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("1. [") and "milvus.md" in out.splitlines()[0] and "BM25 local" in out
    assert main(["query", "sensors watch for new files", "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["results"][0]["doc_id"] == "dagster.md" and payload["timings_ms"]["retrieval"] > 0


def test_eval_scores_a_beir_dataset_and_writes_a_trec_run(
    workdir: Path, embedder, capsys: pytest.CaptureFixture
) -> None:
    dataset = write_beir(workdir / "tiny")
    assert main(["eval", "--dataset", str(dataset), "--json", "--run-out", "run.trec"]) == 0
    scores = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert scores["queries"] == 3 and scores["ndcg@10"] == pytest.approx(1.0) and scores["recall@100"] == 1.0
    assert set(scores["latency_ms"]) == {"p50", "p95"} and scores["mrr@10"] == 1.0
    lines = (workdir / "run.trec").read_text().splitlines()
    assert lines[0].split()[:4] == ["q1", "Q0", "d1", "1"] and len(lines[0].split()) == 6
    assert not any(line.startswith("q3 Q0 q3 ") for line in lines), "a hit on the query's own id is ignored"
    assert main(["eval", "--dataset", str(dataset), "--mode", "bm25"]) == 0
    captured = capsys.readouterr()
    assert "bm25 (weighted" in captured.out and "nDCG@10 1.0000" in captured.out


def test_versions_reindex_rollback_delete_and_prune(
    workdir: Path, embedder, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["ingest", "docs"]) == 0
    monkeypatch.setenv("RAG__CHUNKING__CHUNK_SIZE", "100")
    assert main(["ingest", "docs/milvus.md"]) == 2
    assert "rag reindex" in capsys.readouterr().err
    assert main(["reindex"]) == 0
    assert "into semantic_index__v2" in capsys.readouterr().out
    assert main(["versions"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("semantic_index__v1: complete") and lines[1].startswith("semantic_index__v2: serving")
    assert main(["rollback"]) == 0 and capsys.readouterr().out.strip() == "semantic_index -> semantic_index__v1"
    assert main(["rollback", "2"]) == 0 and capsys.readouterr().out.strip() == "semantic_index -> semantic_index__v2"

    (workdir / "docs" / "bm25.txt").unlink()
    assert main(["ingest", "docs", "--prune"]) == 0
    assert "1 stale deleted" in capsys.readouterr().out
    assert main(["ingest", "docs/milvus.md", "--prune"]) == 2
    assert "--prune needs a folder" in capsys.readouterr().err
    assert main(["delete", "--doc-id", "milvus.md"]) == 0
    assert "deleted 1 chunks" in capsys.readouterr().out
    assert main(["delete", "--source", str((workdir / "docs").resolve())]) == 0
    assert "deleted 0 chunks" not in capsys.readouterr().out
    assert main(["stats", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["row_count"] == 0
