"""Every path that serves a new version (here the Dagster ingestion after a settings change) promotes it the same
way: the alias moves, index.keep_versions is applied, and drift is measured against the version now serving."""

from pathlib import Path

from rag_core.index.manager import MilvusIndexManager
from rag_core.quality.drift import detect_drift
from rag_core.quality.drift_snapshot import DriftSnapshot, snapshot_path
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.dagster_runs import run_ingestion
from tests.support.engines import engine_for


def test_dagster_promotion_applies_keep_versions_and_takes_the_drift_snapshot(tmp_path: Path, embedder) -> None:
    write_corpus(tmp_path / "docs")
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        "promoted",
        index={"keep_versions": 1},
        chunking={"chunk_size": 48, "chunk_overlap": 8},
    )
    manager = MilvusIndexManager(config.milvus, config.index)

    run_ingestion(config)
    assert DriftSnapshot.load(snapshot_path(config, "promoted__v1")).collection == "promoted__v1"

    rechunked = config.model_copy(update={"chunking": config.chunking.model_copy(update={"chunk_size": 64})})
    run_ingestion(rechunked)
    assert manager.resolve("promoted") == "promoted__v2"
    assert manager.versions("promoted") == ["promoted__v2"], "keep_versions 1 drops the version served before"
    assert DriftSnapshot.load(snapshot_path(config, "promoted__v2")).collection == "promoted__v2"
    assert not snapshot_path(config, "promoted__v1").exists(), "a dropped version's snapshot goes with it"
    assert not detect_drift(rechunked, engine=engine_for(rechunked)).drift_detected
