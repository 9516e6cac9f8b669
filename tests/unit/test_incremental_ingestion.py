"""The asset chain on Milvus Lite and on the real server: incremental, idempotent, verifiable."""

from pathlib import Path

import pytest

from rag_core.index.manager import MilvusIndexManager
from tests.support.configs import make_config
from tests.support.corpus import paragraphs, write_corpus
from tests.support.dagster_runs import run_ingestion

SMALL_CHUNKS = {"chunk_size": 48, "chunk_overlap": 8}


def doc_rows(manager: MilvusIndexManager, alias: str, doc_id: str) -> list[dict]:
    collection = manager.resolve(alias)
    return manager.client.query(
        collection, filter=f'doc_id == "{doc_id}"', output_fields=["chunk_id", "position"], consistency_level="Strong"
    )


def test_unchanged_edit_and_delete_each_touch_only_what_changed(
    tmp_path: Path, milvus_uri: str, collection: str, embedder
) -> None:
    files = write_corpus(tmp_path / "docs")
    config = make_config(tmp_path, milvus_uri, collection, chunking=SMALL_CHUNKS)
    manager = MilvusIndexManager(config.milvus, config.index)

    first = run_ingestion(config)
    total = first.metadata["chunks"]["chunks"]
    assert first.metadata["raw_documents"]["documents"] == 5
    assert first.metadata["embeddings"]["embedded_chunks"] == total
    assert first.metadata["semantic_index"]["upserted"] == total
    assert first.metadata["semantic_index"]["rows"] == total == manager.count(manager.resolve(collection))
    assert all(first.checks.values()) and len(first.checks) == 4
    long_chunks = len(doc_rows(manager, collection, "long.md"))
    assert long_chunks >= 4, "the long document must span several chunks for the edit test to mean anything"

    again = run_ingestion(config)
    assert again.metadata["chunks"]["rechunked_documents"] == 0
    assert again.metadata["embeddings"]["embedded_chunks"] == 0
    assert again.metadata["semantic_index"]["upserted"] == 0
    assert again.metadata["semantic_index"]["deleted"] == 0
    assert again.metadata["semantic_index"]["new_version"] is False

    files["long.md"].write_text(
        "# Operations\n\n" + paragraphs("operations", 7) + "\n\nA new closing paragraph.\n", encoding="utf-8"
    )
    edited = run_ingestion(config)
    assert edited.metadata["chunks"]["rechunked_documents"] == 1
    embedded = edited.metadata["embeddings"]["embedded_chunks"]
    assert 1 <= embedded < long_chunks, "only the chunks the edit touched are embedded again"
    assert edited.metadata["semantic_index"]["deleted"] >= 1
    assert edited.metadata["semantic_index"]["rows"] == edited.metadata["embeddings"]["rows"]
    assert all(edited.checks.values())

    files["bm25.txt"].unlink()
    removed = run_ingestion(config)
    assert removed.metadata["raw_documents"]["documents"] == 4
    assert removed.metadata["embeddings"]["embedded_chunks"] == 0
    assert removed.metadata["semantic_index"]["deleted"] >= 1
    assert doc_rows(manager, collection, "bm25.txt") == []
    assert all(removed.checks.values())


def test_new_index_parameters_build_a_new_version_and_keep_the_old(
    tmp_path: Path, milvus_uri: str, collection: str, embedder
) -> None:
    write_corpus(tmp_path / "docs")
    run_ingestion(make_config(tmp_path, milvus_uri, collection))
    rebuilt = run_ingestion(make_config(tmp_path, milvus_uri, collection, index={"M": 8}))
    manager = MilvusIndexManager(make_config(tmp_path, milvus_uri, collection).milvus)
    assert rebuilt.metadata["semantic_index"]["new_version"] is True
    assert rebuilt.metadata["embeddings"]["embedded_chunks"] == 0, "vectors do not depend on index parameters"
    assert manager.resolve(collection) == f"{collection}__v2"
    assert manager.versions(collection) == [f"{collection}__v1", f"{collection}__v2"]
    assert manager.index_version(f"{collection}__v2").M == 8
    assert manager.rollback(collection) == f"{collection}__v1"
    assert manager.resolve(collection) == f"{collection}__v1"


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_bad_inputs_are_reported_in_metadata_and_good_ones_ingested(
    tmp_path: Path, milvus_uri: str, collection: str, embedder
) -> None:
    docs = tmp_path / "docs"
    write_corpus(docs)
    (docs / "empty.txt").write_text("")
    (docs / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    (docs / "notes.docx").write_bytes(b"PK\x03\x04")
    run = run_ingestion(make_config(tmp_path, milvus_uri, collection))
    raw = run.metadata["raw_documents"]
    assert raw["documents"] == 5 and raw["skipped_inputs"] == 3
    for name in ("empty.txt", "binary.txt", "notes.docx"):
        assert name in raw["skipped"]
    assert run.metadata["semantic_index"]["rows"] == run.metadata["chunks"]["chunks"]
