"""The right to erasure (issue 9, part 7): after `erase`, no mode finds the document in any kept version."""

import json
from pathlib import Path

import pytest

from rag_core.cli import main
from rag_core.compliance.events import AuditEventType
from rag_core.compliance.manager import ComplianceManager
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.ingest.direct import ingest_path
from rag_core.ingest.parquet_store import BatchStream, ParquetStore
from rag_core.ingest.reindex import reindex
from rag_core.ingest.tables import DOCUMENTS_SCHEMA, documents_to_batch
from rag_core.observability.query_log import read_query_log
from rag_core.retrieval.engine import RetrievalEngine
from rag_core.types import Document
from tests.conftest import make_config
from tests.corpus import RETRIEVAL_DOCS, ingest

PHRASE = "quorble flanges recalibrate the ostrich observatory"
SECRET = {"customer-42": f"Customer file of Jane Roe: {PHRASE} every Tuesday."}
MODES = ("dense", "bm25", "hybrid")


@pytest.fixture
def settings(tmp_path: Path, milvus_uri: str, collection: str) -> RAGConfig:
    """Milvus Lite, and the real server (``-m slow``): erasure must purge every version on both."""
    return make_config(tmp_path, milvus_uri, collection, milvus={"consistency_level": "Strong"},
                       retrieval={"bm25_refresh_s": 0}, pipeline={"top_k": 10, "rerank_top_k": 10})


def found(engine: RetrievalEngine, doc_id: str) -> dict[str, bool]:
    """Per mode: does the phrase query return the document, or any chunk holding the phrase?"""
    hits = {}
    for mode in MODES:
        results = engine.search(PHRASE, mode=mode, top_k=10).results
        hits[mode] = any(r.doc_id == doc_id or "ostrich observatory" in r.text for r in results)
    return hits


def test_an_erased_document_is_found_by_no_mode_in_any_version(settings: RAGConfig, embedder) -> None:
    ingest(settings, RETRIEVAL_DOCS | SECRET, embedder)  # __v1
    reindex(settings, embedder=embedder)  # __v2 serves, __v1 is kept for rollback
    manager = MilvusIndexManager(settings.milvus, settings.index)
    versions = manager.versions(settings.milvus.collection)
    assert len(versions) == 2
    store = ParquetStore(settings.ingestion.storage_dir)  # the Dagster assets' table of documents
    documents = [Document(doc_id=k, text=v, title=k) for k, v in (RETRIEVAL_DOCS | SECRET).items()]
    store.write("raw_documents", BatchStream(DOCUMENTS_SCHEMA, [documents_to_batch(documents)]))
    engine = RetrievalEngine(settings, embedder=embedder, manager=manager)
    assert found(engine, "customer-42") == dict.fromkeys(MODES, True)  # cached and logged from here on
    engine.query_log.flush()
    logged = {i for ids in read_query_log(Path(settings.quality.query_log_dir)).column("result_ids").to_pylist()
              for i in ids}

    report = ComplianceManager(settings).erase_document("customer-42", engine=engine)

    assert set(report.milvus_chunks) == set(versions) and all(report.milvus_chunks.values())
    assert report.asset_rows == {"raw_documents": 1} and report.query_log_rows == len(MODES)
    assert report.source_file is None  # an API document has no file to come back from
    assert found(engine, "customer-42") == dict.fromkeys(MODES, False)  # the same engine: cache and index renewed
    for version in versions:
        assert manager.count(version, filter='doc_id == "customer-42"') == 0
        pinned = RetrievalEngine(settings, embedder=embedder, manager=manager, alias=version)
        assert found(pinned, "customer-42") == dict.fromkeys(MODES, False), version
    manager.rollback(settings.milvus.collection)  # back to __v1: it must not bring the document back
    assert found(RetrievalEngine(settings, embedder=embedder, manager=manager), "customer-42") == \
        dict.fromkeys(MODES, False)
    assert "customer-42" not in store.get("raw_documents").read_column("doc_id").to_pylist()
    assert store.get("raw_documents").num_rows == len(RETRIEVAL_DOCS)
    remaining = {i for ids in read_query_log(Path(settings.quality.query_log_dir)).column("result_ids").to_pylist()
                 for i in ids}
    assert report.chunk_ids & logged and not report.chunk_ids & remaining
    [record] = ComplianceManager(settings).query_audit_logs(event_type=AuditEventType.ERASURE)
    assert record.details["doc_id"] == "customer-42" and record.details["chunks"] == len(report.chunk_ids)
    assert "ostrich" not in json.dumps(record.details) and "Jane Roe" not in json.dumps(record.details)


def test_a_source_file_still_present_is_reported_and_an_unknown_id_exits_1(
        settings: RAGConfig, embedder, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "jane.txt").write_text(f"{PHRASE}.\n", encoding="utf-8")
    ingest_path(folder, settings, embedder=embedder)
    config_file = tmp_path / "config.yaml"
    config_file.write_text(settings.model_dump_json())
    assert main(["erase", "--doc-id", "jane.txt", "--config", str(config_file)]) == 0
    captured = capsys.readouterr()
    assert "erased jane.txt" in captured.out
    assert f"its source file {folder.resolve() / 'jane.txt'} still exists" in captured.err
    assert main(["erase", "--doc-id", "no-such-doc", "--config", str(config_file)]) == 1
    assert "not found" in capsys.readouterr().err
    outcomes = [r.outcome for r in ComplianceManager(settings).query_audit_logs(event_type="erasure")]
    assert outcomes == ["success", "not_found"]
