"""The ``rag`` command: what a user types and reads."""

import json
from pathlib import Path

import pytest

from rag_core.cli import main
from tests.corpus import write_corpus


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
