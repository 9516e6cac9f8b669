"""The right to erasure (issue 9, part 7): after `erase`, no mode finds the document in any kept version."""

import json
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rag_core.cli.main import main
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.ingest.parquet_store import BatchStream, ParquetStore
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents, ingest_path
from rag_core.lifecycle.reindex import reindex
from rag_core.observability.query_log import read_query_log
from rag_core.quality.drift_snapshot import DriftSnapshot, snapshot_path
from rag_core.retrieval.engine import RetrievalEngine
from rag_core.tables import (
    DOCUMENTS_SCHEMA,
    chunks_to_batch,
    documents_to_batch,
    embeddings_schema,
    with_vectors,
)
from rag_core.types import Chunk, Document
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest

PHRASE = "quorble flanges recalibrate the ostrich observatory"
SECRET = {"customer-42": f"Customer file of Jane Roe: {PHRASE} every Tuesday."}
MODES = ("dense", "bm25", "hybrid")


@pytest.fixture
def settings(tmp_path: Path, milvus_uri: str, collection: str) -> RAGConfig:
    """Milvus Lite, and the real server (``-m slow``): erasure must purge every version on both."""
    return make_config(
        tmp_path,
        milvus_uri,
        collection,
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        pipeline={"top_k": 10, "rerank_top_k": 10},
    )


def found(engine: RetrievalEngine, doc_id: str) -> dict[str, bool]:
    """Per mode: does the phrase query return the document, or any chunk holding the phrase?"""
    hits = {}
    for mode in MODES:
        results = engine.search(PHRASE, mode=mode, top_k=10).results
        hits[mode] = any(r.doc_id == doc_id or "ostrich observatory" in r.text for r in results)
    return hits


def test_an_erased_document_is_found_by_no_mode_in_any_version(settings: RAGConfig, embedder) -> None:
    ingest(settings, RETRIEVAL_DOCS | SECRET, embedder)  # __v1
    reindex(RagContext(settings, embedder=embedder))  # __v2 serves, __v1 is kept for rollback
    manager = MilvusIndexManager(settings.milvus, settings.index)
    versions = manager.versions(settings.milvus.collection)
    assert len(versions) == 2
    store = ParquetStore(settings.ingestion.storage_dir)  # the Dagster assets' table of documents
    documents = [Document(doc_id=k, text=v, title=k) for k, v in (RETRIEVAL_DOCS | SECRET).items()]
    store.write("raw_documents", BatchStream(DOCUMENTS_SCHEMA, [documents_to_batch(documents)]))
    engine = RetrievalEngine(settings, embedder=embedder, manager=manager)
    assert found(engine, "customer-42") == dict.fromkeys(MODES, True)  # cached and logged from here on
    engine.query_log.flush()
    logged = {
        i for ids in read_query_log(Path(settings.quality.query_log_dir)).column("result_ids").to_pylist() for i in ids
    }

    report = ComplianceManager(settings).erase_document("customer-42", engine=engine)

    assert set(report.milvus_chunks) == set(versions) and all(report.milvus_chunks.values())
    assert report.asset_rows == {"raw_documents": 1} and report.query_log_rows == len(MODES)
    assert report.source_file is None  # an API document has no file to come back from
    assert found(engine, "customer-42") == dict.fromkeys(MODES, False)  # the same engine: cache and index renewed
    for version in versions:
        assert manager.count(version, filter='doc_id == "customer-42"') == 0
        assert manager.storage_stats(version).deleted_rows == 0, "purged from storage, not only from results"
        pinned = RetrievalEngine(settings, embedder=embedder, manager=manager, alias=version)
        assert found(pinned, "customer-42") == dict.fromkeys(MODES, False), version
    manager.rollback(settings.milvus.collection)  # back to __v1: it must not bring the document back
    assert found(RetrievalEngine(settings, embedder=embedder, manager=manager), "customer-42") == dict.fromkeys(
        MODES, False
    )
    assert "customer-42" not in store.get("raw_documents").read_column("doc_id").to_pylist()
    assert store.get("raw_documents").num_rows == len(RETRIEVAL_DOCS)
    remaining = {
        i for ids in read_query_log(Path(settings.quality.query_log_dir)).column("result_ids").to_pylist() for i in ids
    }
    assert report.chunk_ids & logged and not report.chunk_ids & remaining
    [record] = ComplianceManager(settings).query_audit_logs(event_type=AuditEventType.ERASURE)
    assert record.details["doc_id"] == "customer-42" and record.details["chunks"] == len(report.chunk_ids)
    assert "ostrich" not in json.dumps(record.details) and "Jane Roe" not in json.dumps(record.details)


def test_a_source_file_still_present_is_reported_and_an_unknown_id_exits_1(
    settings: RAGConfig, embedder, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "jane.txt").write_text(f"{PHRASE}.\n", encoding="utf-8")
    ingest_path(folder, RagContext(settings, embedder=embedder))
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


# Made-up words the stemmer leaves whole, so the client-side BM25 vocabulary keeps them as written too.
ERASED_WORD, CONTROL_WORD = "quorblix", "zibblux"
ERASED = Document(
    doc_id="customer-43", text=f"{ERASED_WORD} flanges recalibrate the ostrich observatory for Jane Roe every Tuesday."
)
CONTROL = Document(
    doc_id="control-7", text=f"{CONTROL_WORD} sprockets harmonise the walrus planetarium for John Poe every Friday."
)
ENCODINGS = ("utf-8", "utf-16-le", "utf-32-le")  # numpy keeps str arrays (a drift snapshot's) as UTF-32


def views(path: Path) -> Iterator[bytes]:
    """A file's raw bytes, and what compression or encoding could hide in them: a Parquet file's values read back
    (text joined, float vectors as float32 bytes), each member of a zip (an .npz) inflated."""
    raw = path.read_bytes()
    yield raw
    if raw[:4] == b"PAR1":
        for column in pq.read_table(path).columns:
            values = column.combine_chunks()
            while (
                pa.types.is_list(values.type)
                or pa.types.is_fixed_size_list(values.type)
                or pa.types.is_large_list(values.type)
            ):
                values = values.flatten()
            if pa.types.is_floating(values.type):
                yield values.to_numpy(zero_copy_only=False).astype(np.float32).tobytes()
            else:
                yield "\n".join(map(str, values.to_pylist())).encode("utf-8")
    elif raw[:4] == b"PK\x03\x04":
        with zipfile.ZipFile(path) as archive:
            yield from (archive.read(name) for name in archive.namelist())


def holders(folder: Path, needles: Iterable[bytes]) -> set[str]:
    """The files under ``folder`` (every one, relative paths) holding any needle in any of their ``views``."""
    needles = list(needles)
    return {
        str(p.relative_to(folder))
        for p in folder.rglob("*")
        if p.is_file() and any(n in view for view in views(p) for n in needles)
    }


def text_needles(word: str) -> list[bytes]:
    return [word.encode(encoding) for encoding in ENCODINGS]


def vector_needles(manager: MilvusIndexManager, alias: str, doc_id: str) -> list[bytes]:
    """The document's chunk vectors in every version, as the float32 bytes stored."""
    return [
        np.asarray(row["vector"], dtype=np.float32).tobytes()
        for version in manager.versions(alias)
        for batch in manager.iter_rows(version, ["vector"], filter=f'doc_id == "{doc_id}"')
        for row in batch
    ]


def in_each(places: Iterable[str], files: set[str]) -> dict[str, bool]:
    return {place: any(f.startswith(place) for f in files) for place in places}


def build_client_indexes(engines: Iterable[RetrievalEngine]) -> None:
    """Queries in every mode make each engine save its client-side index (per alias, and per pinned version)."""
    for engine in engines:
        for word in (ERASED_WORD, CONTROL_WORD):
            for mode in MODES:
                engine.search(word, mode=mode, top_k=5)


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_erasure_leaves_no_byte_of_the_document_in_any_file_under_the_data_folder(
    tmp_path: Path, milvus_uri: str, collection: str, embedder
) -> None:
    """Milvus Lite keeps a deleted row in its Parquet segment (only a tombstone is written): the erased text and
    vector must be gone from every file, while a control document's are found by the same scan in each place."""
    data = tmp_path / "data"
    settings = make_config(
        data,
        str(data / "milvus.db"),
        collection,
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        pipeline={"top_k": 10, "rerank_top_k": 10},
    )
    documents = [Document(doc_id=k, text=v, title=k) for k, v in RETRIEVAL_DOCS.items()] + [ERASED, CONTROL]
    ingest_documents(documents, RagContext(settings, embedder=embedder))  # __v1 and a drift snapshot of it
    reindex(RagContext(settings, embedder=embedder))  # __v2 serves (and a snapshot of it), __v1 is kept for rollback
    manager = MilvusIndexManager(settings.milvus, settings.index)
    v1, v2 = manager.versions(collection)
    states = {v: manager.state(v) for v in (v1, v2)}
    store = ParquetStore(settings.ingestion.storage_dir)
    store.write("raw_documents", BatchStream(DOCUMENTS_SCHEMA, [documents_to_batch(documents)]))
    rows = [r for batch in manager.iter_rows(v2, ["chunk_id", "doc_id", "position", "text", "vector"]) for r in batch]
    chunks = chunks_to_batch([Chunk(**{k: r[k] for k in ("chunk_id", "doc_id", "position", "text")}) for r in rows])
    vectors = np.asarray([r["vector"] for r in rows], dtype=np.float32)
    store.write("embeddings", BatchStream(embeddings_schema(vectors.shape[1]), [with_vectors(chunks, vectors)]))
    engine = RetrievalEngine(settings, embedder=embedder, manager=manager)
    pinned = RetrievalEngine(settings, embedder=embedder, manager=manager, alias=v1)
    build_client_indexes([engine, pinned])
    engine.query_log.flush()
    places = [
        f"milvus.db/collections/{v1}/",
        f"milvus.db/collections/{v2}/",
        "assets/raw_documents.parquet",
        "assets/embeddings.parquet",
        f"bm25/{collection}/",
        f"bm25/{v1}/",
        f"drift/{v1}.npz",
        f"drift/{v2}.npz",
    ]
    vector_places = [f"milvus.db/collections/{v1}/", f"milvus.db/collections/{v2}/", "assets/embeddings.parquet"]
    erased_vectors = vector_needles(manager, collection, ERASED.doc_id)
    control_vectors = vector_needles(manager, collection, CONTROL.doc_id)
    assert len(erased_vectors) == len(control_vectors) == 2  # one chunk each, in each version
    # The scan finds the document in every place before: a scan that found nothing would prove nothing.
    assert in_each(places, holders(data, text_needles(ERASED_WORD))) == dict.fromkeys(places, True)
    assert in_each(vector_places, holders(data, erased_vectors)) == dict.fromkeys(vector_places, True)

    report = ComplianceManager(settings).erase_document(ERASED.doc_id, engine=engine)

    assert holders(data, text_needles(ERASED_WORD)) == set()
    assert holders(data, erased_vectors) == set()
    build_client_indexes([engine, RetrievalEngine(settings, embedder=embedder, manager=manager, alias=v1)])
    engine.query_log.flush()
    assert holders(data, text_needles(ERASED_WORD)) == set()  # nor in what was rebuilt from Milvus since
    assert holders(data, erased_vectors) == set()
    assert in_each(places, holders(data, text_needles(CONTROL_WORD))) == dict.fromkeys(places, True)
    assert in_each(vector_places, holders(data, control_vectors)) == dict.fromkeys(vector_places, True)
    # The versions are the same ones, alias and all, with their index version kept and their data version moved on.
    assert manager.versions(collection) == [v1, v2] and manager.resolve(collection) == v2
    for version, before in states.items():
        after = manager.state(version)
        assert (after.version, after.complete) == (before.version, True)
        assert after.data_version > before.data_version
        assert manager.count(version) == len(documents) - 1
    # Every other document still answers, in every mode, on the served version and on the one kept for rollback.
    for answering in (engine, RetrievalEngine(settings, embedder=embedder, manager=manager, alias=v1)):
        for mode in MODES:
            assert answering.search(CONTROL.text, mode=mode, top_k=3).results[0].doc_id == CONTROL.doc_id
            assert answering.search(RETRIEVAL_DOCS["hnsw"], mode=mode, top_k=3).results[0].doc_id == "hnsw"
    assert report.milvus_chunks == {v1: 1, v2: 1} and report.purged == {v1: "Rebuilt", v2: "Rebuilt"}
    assert report.drift_snapshots == 2 and report.asset_rows == {"raw_documents": 1, "embeddings": 1}
    for version in (v1, v2):  # the one kept for rollback is what drift compares with after `rag rollback`
        snapshot = DriftSnapshot.load(snapshot_path(settings, version))
        assert not any(ERASED.doc_id in ids for ids in snapshot.probe_ids)
        assert len(snapshot.probe_queries) == len(snapshot.reference_vectors) == len(documents) - 1


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_a_rebuild_stopped_before_its_rename_is_finished_by_the_next_erasure(
    settings: RAGConfig, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between dropping a version and renaming its copy, the copy (complete, serving) is the only one left: the next
    `rag erase` gives it its name back instead of losing the version."""
    ingest(settings, RETRIEVAL_DOCS | {ERASED.doc_id: ERASED.text}, embedder)
    manager = MilvusIndexManager(settings.milvus, settings.index)
    [version] = manager.versions(settings.milvus.collection)

    def stopped(*_: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(MilvusIndexManager, "rename_collection", stopped)
        with pytest.raises(KeyboardInterrupt):
            ComplianceManager(settings).erase_document(ERASED.doc_id)
    assert manager.versions(settings.milvus.collection) == [] and manager.resolve(settings.milvus.collection)

    ComplianceManager(settings).erase_document(ERASED.doc_id)

    assert manager.versions(settings.milvus.collection) == [version]
    assert manager.resolve(settings.milvus.collection) == version
    assert manager.count(version) == len(RETRIEVAL_DOCS)
    engine = RetrievalEngine(settings, embedder=embedder, manager=manager)
    assert engine.search(RETRIEVAL_DOCS["hnsw"], mode="hybrid", top_k=3).results[0].doc_id == "hnsw"
    assert holders(Path(settings.milvus.uri), text_needles(ERASED_WORD)) == set()
