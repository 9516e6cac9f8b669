"""A sync that fails part-way, or meets links it must not follow, leaves a state the next sync repairs, and every
query path serves the same complete state meanwhile (the reproductions of issue 17, items 3 to 6)."""

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.retrieval.engine import IncompleteVersionError, RetrievalEngine
from tests.support.configs import make_config
from tests.support.engines import engine_for

ZEBRA = "Zebras graze on the open savanna in large herds. " * 3
WHALE = "Whales migrate across the cold northern ocean each spring. " * 3
OTTER = "Otters crack shellfish on their bellies while floating in kelp. " * 3


@pytest.fixture
def settings(tmp_path: Path, milvus_uri: str, collection: str) -> RAGConfig:
    return make_config(
        tmp_path, milvus_uri, collection, milvus={"consistency_level": "Strong"}, retrieval={"bm25_refresh_s": 0}
    )


def corpus(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "a.md").write_text(ZEBRA, encoding="utf-8")
    (folder / "b.md").write_text(OTTER, encoding="utf-8")
    (folder / "c.md").write_text("Aliases point at versions of a collection. " * 3, encoding="utf-8")
    return folder


def texts(engine: RetrievalEngine, query: str, **options) -> set[str]:  # noqa: ANN003 - engine.search's
    return {hit.text for hit in engine.search(query, top_k=10, **options).results}


def dies_once(real: Callable) -> Callable:
    """A method that raises the first time it is called, as a process killed at that point would stop."""
    died = []

    def method(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202
        if not died:
            died.append(True)
            raise RuntimeError("killed here")
        return real(self, *args, **kwargs)

    return method


def test_a_sync_that_died_before_its_data_version_is_published_by_the_next(
    settings: RAGConfig, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The edit's rows were written and the old ones deleted, then the run died: the next sync finds nothing to
    write, and must still publish the new state, or every reader keeps serving the old text."""
    docs = corpus(tmp_path / "docs")
    ingest_path(docs, RagContext(settings, embedder=embedder))
    engine = engine_for(settings, embedder=embedder)
    assert ZEBRA.strip() in texts(engine, "zebras savanna")
    (docs / "a.md").write_text(WHALE, encoding="utf-8")
    monkeypatch.setattr(MilvusIndexManager, "bump_data_version", dies_once(MilvusIndexManager.bump_data_version))
    with pytest.raises(RuntimeError, match="killed here"):
        ingest_path(docs, RagContext(settings, embedder=embedder))
    before = MilvusIndexManager(settings.milvus, settings.index).state(f"{settings.milvus.collection}__v1")

    repaired = ingest_path(docs, RagContext(settings, embedder=embedder))
    assert (repaired.sync.upserted, repaired.sync.deleted) == (0, 0), "the dead run had written everything"
    assert repaired.sync.data_version > before.data_version, "yet the next sync publishes it"
    for mode in ("hybrid", "dense", "bm25"):
        found = texts(engine, "whales ocean zebras savanna", mode=mode)
        assert WHALE.strip() in found and ZEBRA.strip() not in found, mode


def test_every_query_path_serves_the_last_published_state_while_a_sync_is_unfinished(
    settings: RAGConfig, tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run killed after writing an edit's new rows, before deleting the old ones: with or without a filter, in
    every mode, queries answer from the state the last finished sync published, and the next sync repairs it."""
    docs = corpus(tmp_path / "docs")
    ingest_path(docs, RagContext(settings, embedder=embedder))
    engine = engine_for(settings, embedder=embedder)
    assert texts(engine, "zebras")
    (docs / "a.md").write_text(WHALE, encoding="utf-8")
    monkeypatch.setattr(MilvusIndexManager, "delete_chunks", dies_once(MilvusIndexManager.delete_chunks))
    with pytest.raises(RuntimeError, match="killed here"):
        ingest_path(docs, RagContext(settings, embedder=embedder))
    manager = MilvusIndexManager(settings.milvus, settings.index)
    assert manager.count(f"{settings.milvus.collection}__v1", filter='doc_id == "a.md"') == 2, "old and new rows"

    for mode in ("hybrid", "dense", "bm25"):
        for where in ("", 'doc_id == "a.md"'):
            found = texts(engine, "whales ocean zebras savanna", mode=mode, filter=where)
            assert ZEBRA.strip() in found and WHALE.strip() not in found, (mode, where)
    ingest_path(docs, RagContext(settings, embedder=embedder))
    for mode in ("hybrid", "dense", "bm25"):
        found = texts(engine, "whales ocean zebras savanna", mode=mode, filter='doc_id == "a.md"')
        assert found == {WHALE.strip()}, mode


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_a_symlink_loop_is_reported_and_the_rest_still_syncs(settings: RAGConfig, tmp_path: Path, embedder) -> None:
    docs = corpus(tmp_path / "docs")
    ingest_path(docs, RagContext(settings, embedder=embedder))
    os.symlink("loopB", docs / "loopA")
    os.symlink("loopA", docs / "loopB")
    (docs / "a.md").write_text(WHALE, encoding="utf-8")
    (docs / "c.md").unlink()

    for prune in (False, True):
        report = ingest_path(docs, RagContext(settings, embedder=embedder), prune=prune)
        assert {Path(s.split(":")[0]).name for s in report.skipped} == {"loopA", "loopB"}
        assert all("symbolic link loop" in s for s in report.skipped), report.skipped
    engine = engine_for(settings, embedder=embedder)
    found = texts(engine, "whales ocean zebras savanna aliases versions")
    assert WHALE.strip() in found and ZEBRA.strip() not in found
    assert not any(t.startswith("Aliases") for t in found), "the deleted file is pruned"


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
@pytest.mark.parametrize("link", ["sub/self", "self"])
def test_a_link_to_a_folder_above_does_not_stop_pruning(
    settings: RAGConfig, tmp_path: Path, embedder, link: str
) -> None:
    """``sub/self -> ..`` (or ``self -> .``) is reported and not followed; it must not shield the whole corpus."""
    docs = corpus(tmp_path / "docs")
    (docs / "sub").mkdir()
    (docs / link).symlink_to(".." if link.startswith("sub/") else ".")
    ingest_path(docs, RagContext(settings, embedder=embedder))
    (docs / "c.md").unlink()
    (docs / "a.md").write_text(WHALE, encoding="utf-8")

    pruned = ingest_path(docs, RagContext(settings, embedder=embedder), prune=True)
    assert pruned.sync.deleted == 2, "c.md's chunk and a.md's old one"
    assert any(link in s and "not followed" in s for s in pruned.skipped)
    found = texts(engine_for(settings, embedder=embedder), "whales zebras aliases versions")
    assert WHALE.strip() in found and ZEBRA.strip() not in found
    assert not any(t.startswith("Aliases") for t in found)


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_an_incomplete_version_asked_for_by_name_is_refused_not_served_partially(
    settings: RAGConfig, tmp_path: Path, embedder
) -> None:
    docs = corpus(tmp_path / "docs")
    ingest_path(docs, RagContext(settings, embedder=embedder))
    manager = MilvusIndexManager(settings.milvus, settings.index)
    alias = settings.milvus.collection
    served = manager.state(manager.resolve(alias))
    partial = manager.create_version(alias, served.version)
    assert engine_for(settings, embedder=embedder).search("zebras").results, "the alias still serves"
    with pytest.raises(IncompleteVersionError, match=rf"{partial} is an incomplete version .*drop-incomplete"):
        engine_for(settings, embedder=embedder, alias=partial).search("zebras")
