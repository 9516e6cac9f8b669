"""The index stays exactly right under edits, setting changes, interruptions and several ingest paths.

Each test is one of the reproductions users reported; they run on Milvus Lite and on the real server.
"""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pytest

from rag_core.config import RAGConfig
from rag_core.index.delete import delete_from_index
from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import VersionChangeError
from rag_core.lifecycle import direct
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import folder_source, ingest_documents, ingest_path
from rag_core.lifecycle.reindex import reindex
from rag_core.types import Document
from tests.support.configs import make_config
from tests.support.dagster_runs import run_ingestion
from tests.support.engines import engine_for

ZEBRA = "Zebras graze on the open savanna in large herds. " * 3
WHALE = "Whales migrate across the cold northern ocean each spring. " * 3  # the same length in chunks


def three_files(folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    texts = {"a.md": ZEBRA, "b.md": "Compaction merges small segments. " * 3, "c.md": "Aliases point at versions. " * 3}
    for name, text in texts.items():
        (folder / name).write_text(text, encoding="utf-8")
    return {name: folder / name for name in texts}


@pytest.fixture
def settings(tmp_path: Path, milvus_uri: str, collection: str) -> RAGConfig:
    return make_config(
        tmp_path, milvus_uri, collection, milvus={"consistency_level": "Strong"}, retrieval={"bm25_refresh_s": 0}
    )


def manager_of(config: RAGConfig) -> MilvusIndexManager:
    return MilvusIndexManager(config.milvus, config.index)


def ctrl_c_at_the_second_batch(monkeypatch: pytest.MonkeyPatch, embedder) -> None:
    """Ingestion embeds its first batch, then is interrupted as Ctrl-C would (until ``monkeypatch.undo()``)."""
    real, calls = direct.vectorizer(embedder), {"n": 0}

    def interrupted(batch: pa.RecordBatch) -> pa.RecordBatch:
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(batch)

    monkeypatch.setattr(direct, "vectorizer", lambda _: interrupted)


@contextmanager
def lock_held_by_another_process(db_file: str) -> Iterator[int]:
    """A second process holding the Milvus Lite file's lock; yields its pid."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from rag_core.index import lite_lock; "
            "lite_lock.acquire(Path(sys.argv[1]), 5); print('held', flush=True); time.sleep(30)",
            db_file,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_same_count_edit_is_seen_by_a_second_engine_and_the_first(
    settings: RAGConfig, tmp_path: Path, embedder
) -> None:
    files = three_files(tmp_path / "docs")
    ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    first = engine_for(settings, embedder=embedder)
    assert first.search("zebras savanna").results[0].doc_id == "a.md"
    rows_before = manager_of(settings).get_collection_stats(settings.milvus.collection).row_count

    files["a.md"].write_text(WHALE, encoding="utf-8")
    report = ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    assert report.sync.rows == rows_before and report.sync.deleted >= 1, "same chunk count, other chunk ids"

    second = engine_for(settings, embedder=embedder)  # shares the on-disk client-side index with `first`
    for engine in (second, first):
        whales = engine.search("whales ocean migrate")
        assert whales.results[0].doc_id == "a.md" and "Whales" in whales.results[0].text
        assert all("Zebras" not in c.text for c in engine.search("zebras savanna").results)


def test_delete_then_add_and_a_vanished_row_never_fail_a_query(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    three_files(tmp_path / "docs")
    ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    engine = engine_for(settings, embedder=embedder)
    engine.search("zebras savanna")
    # A row deleted behind the engine's back, with no data version recorded (another tool, an old writer).
    manager = manager_of(settings)
    collection = manager.resolve(settings.milvus.collection)
    manager.delete_where(collection, 'doc_id == "a.md"')
    result = engine.search("zebras savanna", mode="bm25")
    assert all(c.doc_id != "a.md" for c in result.results), "a hit whose row is gone is dropped"
    assert all(c.doc_id != "a.md" for c in engine.search("zebras herds", mode="bm25").results)

    deleted = delete_from_index(manager, settings.milvus.collection, source=folder_source(tmp_path / "docs"))
    assert deleted.deleted_chunks >= 2 and manager.count(collection) == 0
    ingest_documents([Document(doc_id="z", text=ZEBRA)], RagContext(settings, embedder=embedder))
    assert engine.search("zebras savanna").results[0].doc_id == "z"


def test_a_setting_change_never_promotes_a_partial_version(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    files = three_files(tmp_path / "docs")
    ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    alias = settings.milvus.collection
    changed = settings.model_copy(update={"chunking": settings.chunking.model_copy(update={"chunk_size": 100})})
    with pytest.raises(VersionChangeError, match="rag reindex"):
        ingest_path(files["a.md"], RagContext(changed, embedder=embedder))
    manager = manager_of(settings)
    assert manager.resolve(alias) == f"{alias}__v1"
    stats = manager.get_collection_stats(alias)
    assert stats.row_count == 3 and stats.incomplete_versions == []

    rebuilt = reindex(RagContext(changed, embedder=embedder))
    assert rebuilt.collection == f"{alias}__v2" and manager.resolve(alias) == f"{alias}__v2"
    assert rebuilt.rows == 3 and manager.state(rebuilt.collection).complete
    engine = engine_for(changed, embedder=embedder)
    assert {c.doc_id for c in engine.search("aliases point at versions").results[:1]} == {"c.md"}
    assert manager.state(rebuilt.collection).version.chunking.endswith("|100|32")


def test_rollback_goes_to_the_newest_complete_older_version(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    three_files(tmp_path / "docs")
    ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    alias = settings.milvus.collection
    reindex(RagContext(settings, embedder=embedder))  # __v2, complete and served
    manager = manager_of(settings)
    broken = manager.create_version(alias, manager.state(f"{alias}__v2").version)  # a sync that died: __v3
    assert manager.rollback(alias) == f"{alias}__v1"
    with pytest.raises(ValueError, match="incomplete build"):
        manager.rollback(alias, to="3")
    assert manager.rollback(alias, to="2") == f"{alias}__v2"
    assert manager.get_collection_stats(alias).incomplete_versions == [broken]
    assert manager.drop_incomplete(alias) == [broken] and manager.versions(alias) == [f"{alias}__v1", f"{alias}__v2"]


def test_sources_own_their_documents(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    for folder in ("unreadable", "brokenlinkdir"):
        (tmp_path / "a" / folder).mkdir(parents=True)
        (tmp_path / "a" / folder / "good.txt").write_text(f"A good file in {folder}.", encoding="utf-8")
    first = ingest_path(tmp_path / "a" / "unreadable", RagContext(settings, embedder=embedder))
    second = ingest_path(tmp_path / "a" / "brokenlinkdir", RagContext(settings, embedder=embedder))
    assert (first.sync.deleted, second.sync.deleted, second.sync.rows) == (0, 0, 2)

    api = ingest_documents(
        [Document(doc_id="faq-1", text="Run compaction weekly.")], RagContext(settings, embedder=embedder)
    )
    assert api.sync.deleted == 0 and api.sync.rows == 3
    (tmp_path / "a" / "unreadable" / "good.txt").unlink()
    (tmp_path / "a" / "unreadable" / "other.txt").write_text("Another file.", encoding="utf-8")
    kept = ingest_path(
        tmp_path / "a" / "unreadable", RagContext(settings, embedder=embedder)
    )  # no --prune: nothing deleted
    assert (kept.sync.deleted, kept.sync.rows) == (0, 4)
    pruned = ingest_path(tmp_path / "a" / "unreadable", RagContext(settings, embedder=embedder), prune=True)
    assert (pruned.sync.deleted, pruned.sync.rows) == (1, 3)


def test_the_dagster_corpus_never_deletes_what_the_api_added(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    three_files(tmp_path / "docs")
    ingest_documents([Document(doc_id="faq-1", text="Run compaction weekly.")], RagContext(settings, embedder=embedder))
    run = run_ingestion(settings)
    assert run.metadata["semantic_index"]["deleted"] == 0 and run.metadata["semantic_index"]["rows"] == 4
    assert all(run.checks.values())
    (tmp_path / "docs" / "b.md").unlink()
    again = run_ingestion(settings)
    assert again.metadata["semantic_index"]["deleted"] == 1 and again.metadata["semantic_index"]["rows"] == 3
    engine = engine_for(settings, embedder=embedder)
    assert engine.search("run compaction weekly").results[0].doc_id == "faq-1"


def test_an_interrupted_first_ingest_converges_on_rerun(
    settings: RAGConfig, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    three_files(tmp_path / "docs")
    small_batches = settings.model_copy(
        update={"ingestion": settings.ingestion.model_copy(update={"record_batch_size": 1})}
    )
    ctrl_c_at_the_second_batch(monkeypatch, embedder)
    with pytest.raises(KeyboardInterrupt):
        ingest_path(tmp_path / "docs", RagContext(small_batches, embedder=embedder))
    alias, manager = settings.milvus.collection, manager_of(settings)
    assert manager.resolve(alias) is None, "nothing is served from a partial first version"
    monkeypatch.undo()
    report = ingest_path(tmp_path / "docs", RagContext(small_batches, embedder=embedder))
    assert manager.versions(alias) == [f"{alias}__v1"] and manager.resolve(alias) == f"{alias}__v1"
    assert report.sync.upserted == 2, "the chunk stored before the interruption is not embedded again"
    uninterrupted = make_config(tmp_path, settings.milvus.uri, f"{alias}_ref")
    reference = ingest_path(tmp_path / "docs", RagContext(uninterrupted, embedder=embedder))
    assert set(manager.list_chunk_ids(reference.sync.collection)) == set(manager.list_chunk_ids(f"{alias}__v1"))


def test_the_parity_check_fails_on_a_missing_plus_an_extra_row_and_blocks(
    settings: RAGConfig, tmp_path: Path, embedder
) -> None:
    """Equal row counts must not pass: one chunk gone and one stranger added."""
    from rag_assets.definitions import build_resources
    from rag_assets.defs.ingestion.checks import milvus_rows_match_embeddings

    three_files(tmp_path / "docs")
    assert all(run_ingestion(settings).checks.values())
    manager = manager_of(settings)
    collection = manager.resolve(settings.milvus.collection)
    victim = next(iter(manager.list_chunk_ids(collection)))
    manager.delete_chunks(collection, [victim])
    stranger = {
        "chunk_id": "stranger",
        "doc_id": "x.md",
        "source": folder_source(tmp_path / "docs"),
        "position": 0,
        "text": "not from the corpus",
        "metadata": {"title": ""},
        "access_groups": ["everyone"],
        "tenant": "default",
        "vector": [0.0] * embedder.dimension,
    }
    manager.upsert(collection, [stranger])
    assert manager.count(collection) == 3

    resources = build_resources(settings)
    evaluation = milvus_rows_match_embeddings(**{k: resources[k] for k in ("storage", "milvus", "corpus")})
    metadata = {k: getattr(v, "value", v) for k, v in evaluation.metadata.items()}
    assert not evaluation.passed
    assert (metadata["missing_in_milvus"], metadata["unexpected_in_milvus"]) == (1, 1)
    assert victim in metadata["examples"] and "stranger" in metadata["examples"]
    assert next(iter(milvus_rows_match_embeddings.check_specs)).blocking, "a drifted index stops what reads it"


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_a_second_process_on_a_lite_file_waits_then_names_the_holder(settings: RAGConfig, tmp_path: Path) -> None:
    from rag_core.index.lite_lock import IndexLockedError

    with lock_held_by_another_process(settings.milvus.uri) as pid:
        waiting = settings.model_copy(update={"milvus": settings.milvus.model_copy(update={"lock_timeout_s": 0.5})})
        with pytest.raises(IndexLockedError, match=rf"in use by pid {pid} .*waited 0.5s"):
            manager_of(waiting).count("anything")
    assert manager_of(settings).health().ok, "the lock is free once its holder is gone"


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_results_show_the_documents_own_text(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    """A file without a heading is titled by its name, which helps ranking but is not shown as its text."""
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "b.md").write_text("Compaction merges small segments into larger ones.", encoding="utf-8")
    ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    hit = engine_for(settings, embedder=embedder).search("compaction segments").results[0]
    assert (hit.doc_id, hit.metadata["title"]) == ("b.md", "b")
    assert hit.text == "Compaction merges small segments into larger ones."


def test_a_file_that_turned_unreadable_is_kept_not_pruned(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    """Reported and left as indexed until fixed or removed: a mirror must not read "skipped" as "deleted"."""
    files = three_files(tmp_path / "docs")
    ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    files["a.md"].write_bytes(b"\x00\x01binary now")
    pruned = ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder), prune=True)
    assert any("a.md" in s for s in pruned.skipped) and pruned.sync.deleted == 0 and pruned.sync.rows == 3

    mirrored = run_ingestion(settings)  # the Dagster corpus is the same folder, mirrored
    assert mirrored.metadata["semantic_index"]["deleted"] == 0
    files["a.md"].unlink()
    assert run_ingestion(settings).metadata["semantic_index"]["deleted"] == 1


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_sync_guards_refuse_an_empty_mirror_and_a_foreign_collection(
    settings: RAGConfig, tmp_path: Path, embedder
) -> None:
    files = three_files(tmp_path / "docs")
    ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder))
    for file in files.values():
        file.unlink()
    with pytest.raises(ValueError, match="refusing to delete them all"):
        ingest_path(tmp_path / "docs", RagContext(settings, embedder=embedder), prune=True)
    assert manager_of(settings).get_collection_stats(settings.milvus.collection).row_count == 3

    manager = manager_of(settings)
    manager.client.create_collection("plain", dimension=embedder.dimension)
    foreign = settings.model_copy(update={"milvus": settings.milvus.model_copy(update={"collection": "plain"})})
    with pytest.raises(ValueError, match="plain collection, not an alias"):
        ingest_documents([Document(doc_id="x", text="text")], RagContext(foreign, embedder=embedder))


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_the_cli_exits_75_with_one_line_when_the_lite_file_is_held(
    settings: RAGConfig, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rag_core.cli.main import main

    monkeypatch.setenv("MILVUS_URI", settings.milvus.uri)
    monkeypatch.setenv("RAG__MILVUS__LOCK_TIMEOUT_S", "0.3")
    with lock_held_by_another_process(settings.milvus.uri) as pid:
        assert main(["stats"]) == 75
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"in use by pid {pid}" in err and "Traceback" not in err


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_an_index_from_before_sources_is_migrated_not_cut_down(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    """Rows written by the previous release carry no source field, only the file path in their metadata."""
    from dataclasses import replace as replaced

    from pymilvus import DataType, MilvusClient

    three_files(tmp_path / "docs")
    alias, manager = settings.milvus.collection, manager_of(settings)
    ingest_path(
        tmp_path / "docs", RagContext(settings, embedder=embedder)
    )  # today's version, whose settings the old one shares
    current = manager.state(manager.resolve(alias)).version
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    for name, kind, options in (
        ("chunk_id", DataType.VARCHAR, {"max_length": 64, "is_primary": True}),
        ("doc_id", DataType.VARCHAR, {"max_length": 1024}),
        ("position", DataType.INT64, {}),
        ("text", DataType.VARCHAR, {"max_length": 65535}),
        ("metadata", DataType.JSON, {}),
        ("vector", DataType.FLOAT_VECTOR, {"dim": embedder.dimension}),
    ):
        schema.add_field(name, kind, **options)
    index = manager.client.prepare_index_params()
    index.add_index(
        field_name="vector", index_type="HNSW", metric_type="COSINE", params={"M": 16, "efConstruction": 64}
    )
    old = f"{alias}_old__v1"
    manager.client.create_collection(
        old, schema=schema, index_params=index, properties=replaced(current, schema=1).to_properties()
    )
    rows = [
        {
            "chunk_id": f"c{i}",
            "doc_id": name,
            "position": 0,
            "text": text,
            "metadata": {"title": "", "source": path},
            "vector": embedder.encode_documents([text])[0].tolist(),
        }
        for i, (name, text, path) in enumerate(
            (("a.md", ZEBRA, str(tmp_path / "docs" / "a.md")), ("faq-1", "Run compaction weekly.", ""))
        )
    ]
    manager.upsert(old, rows)
    manager.client.create_alias(old, f"{alias}_old")
    legacy = settings.model_copy(update={"milvus": settings.milvus.model_copy(update={"collection": f"{alias}_old"})})

    with pytest.raises(VersionChangeError, match="rag reindex"):  # a mirror of docs/ would drop faq-1
        ingest_path(tmp_path / "docs", RagContext(legacy, embedder=embedder), prune=True)
    rebuilt = reindex(RagContext(legacy, embedder=embedder))
    sources = {
        r["doc_id"]: r["source"] for batch in manager.iter_rows(rebuilt.collection, ["doc_id", "source"]) for r in batch
    }
    assert sources == {"a.md": folder_source(tmp_path / "docs"), "faq-1": "api"}


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_an_interrupted_first_build_continued_after_a_file_was_removed(
    settings: RAGConfig, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = three_files(tmp_path / "docs")
    one_per_batch = settings.model_copy(
        update={"ingestion": settings.ingestion.model_copy(update={"record_batch_size": 1})}
    )
    ctrl_c_at_the_second_batch(monkeypatch, embedder)
    with pytest.raises(KeyboardInterrupt):
        ingest_path(tmp_path / "docs", RagContext(one_per_batch, embedder=embedder))  # a.md stored, then Ctrl-C
    monkeypatch.undo()
    files["a.md"].unlink()
    report = ingest_path(tmp_path / "docs", RagContext(one_per_batch, embedder=embedder))
    alias = settings.milvus.collection
    assert (report.sync.collection, report.sync.rows, report.sync.deleted) == (f"{alias}__v1", 2, 1)
    assert manager_of(settings).resolve(alias) == f"{alias}__v1"
