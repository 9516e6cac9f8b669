"""Backup and restore (issue 9, part 9): the same 100 queries rank the same ids with the same scores afterwards,
every kept version comes back, the audit chain verifies, and a bad snapshot or a non-empty target is refused."""

import json
import re
from pathlib import Path

import pytest

from rag_core.backup.manifest import SnapshotError
from rag_core.backup.restore import restore_backup
from rag_core.backup.snapshot import create_backup
from rag_core.cli.main import main
from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.reindex import reindex
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.engines import engine_for
from tests.support.milvus_server import MilvusServer

QUERIES = 100


def queries() -> list[str]:
    """100 distinct queries made of the corpus' own words, so each one finds something to rank."""
    words = sorted({w for text in RETRIEVAL_DOCS.values() for w in re.findall(r"[a-z]{4,}", text.lower())})
    return [f"{words[i % len(words)]} {words[(7 * i + 3) % len(words)]}" for i in range(QUERIES)]


def site(root: Path, uri: str | None = None, alias: str = "semantic_index") -> RAGConfig:
    """Everything one deployment keeps (Milvus Lite file or server alias, client index, audit db) under ``root``."""
    return make_config(
        root,
        uri or str(root / "milvus.db"),
        alias,
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0, "cache_size": 0},
        compliance={"database_url": f"sqlite:///{root / 'audit.db'}"},
    )


def rankings(config: RAGConfig, embedder) -> list[list[tuple[str, float]]]:
    engine = engine_for(config, embedder=embedder)
    results = engine.search_many(queries(), engine.options())
    engine.manager.close()
    return [[(chunk.chunk_id, score) for chunk, score in zip(r.results, r.scores, strict=True)] for r in results]


def build_source(root: Path, embedder, uri: str | None = None, alias: str = "semantic_index") -> RAGConfig:
    """Two kept versions (an ingestion, then a re-index that moved the alias) and their audit records."""
    config = site(root, uri, alias)
    ingest(config, RETRIEVAL_DOCS, embedder)
    reindex(RagContext(config, embedder=embedder))
    manager = MilvusIndexManager(config.milvus, config.index)
    for version in manager.versions(alias):  # settled, as a serving index is: sealed and indexed, as restored
        manager.client.flush(version)
    manager.close()
    trail = audit_trail(config)
    trail.record(AuditEventType.INGESTION, actor="test", details={"documents": len(RETRIEVAL_DOCS)})
    trail.record(AuditEventType.REINDEX, actor="test", details={"alias": alias})
    return config


def assert_same_rankings(before: list, after: list, tolerance: float = 0.0) -> None:
    """Identical ranked ids; identical scores on the same kind of store, within ``tolerance`` across kinds (Lite
    and the server compute float32 distances in their own order: the last digits differ)."""
    assert len(before) == len(after) == QUERIES
    for expected, got in zip(before, after, strict=True):
        assert [c for c, _ in got] == [c for c, _ in expected]
        assert [s for _, s in got] == pytest.approx([s for _, s in expected], abs=tolerance, rel=0)


@pytest.fixture
def source(tmp_path: Path, embedder) -> RAGConfig:
    return build_source(tmp_path / "source", embedder)


def test_lite_to_lite_same_rankings_versions_and_audit_chain(tmp_path: Path, source: RAGConfig, embedder) -> None:
    before = rankings(source, embedder)
    manager = MilvusIndexManager(source.milvus, source.index)
    versions, serving = manager.versions("semantic_index"), manager.resolve("semantic_index")
    manager.close()
    assert len(versions) == 2

    backup = create_backup(source, tmp_path / "snapshot")
    assert backup.versions == versions and backup.rows > 0
    target = site(tmp_path / "target")
    restored = restore_backup(target, tmp_path / "snapshot")

    assert restored.versions == versions and restored.rows == backup.rows and restored.serving == serving
    manager = MilvusIndexManager(target.milvus, target.index)
    assert manager.versions("semantic_index") == versions and manager.resolve("semantic_index") == serving
    for version in versions:
        assert manager.state(version) == MilvusIndexManager(source.milvus, source.index).state(version)
    manager.close()
    assert_same_rankings(before, rankings(target, embedder))
    report = ComplianceManager(target).verify_integrity()
    assert report.intact and report.records_checked == ComplianceManager(source).verify_integrity().records_checked
    assert report.records_checked >= 2


def test_snapshot_has_checksums_and_no_secrets(tmp_path: Path, source: RAGConfig) -> None:
    source.milvus.password = "s3cret-password"  # type: ignore[assignment] - pydantic turns it into a SecretStr
    create_backup(source, tmp_path / "snapshot")
    manifest = json.loads((tmp_path / "snapshot" / "manifest.json").read_text())
    assert {"config.json", "audit/audit.db"} <= set(manifest["files"])
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())
    assert any(name.startswith("client_index/") for name in manifest["files"])
    assert "s3cret-password" not in "".join(
        p.read_text(errors="ignore")
        for p in (tmp_path / "snapshot").rglob("*")
        if p.is_file() and p.suffix in {".json", ""}
    )
    assert "password" not in json.loads((tmp_path / "snapshot" / "config.json").read_text())["milvus"]


@pytest.mark.parametrize("damage", ["corrupt", "truncate", "missing_manifest"])
def test_damaged_snapshot_is_refused_before_the_target_is_touched(
    tmp_path: Path, source: RAGConfig, damage: str
) -> None:
    snapshot = tmp_path / "snapshot"
    create_backup(source, snapshot)
    rows = next((snapshot / "collections").glob("*.parquet"))
    if damage == "corrupt":
        data = bytearray(rows.read_bytes())
        data[len(data) // 2] ^= 0xFF
        rows.write_bytes(bytes(data))
    elif damage == "truncate":
        rows.write_bytes(rows.read_bytes()[:-100])
    else:
        (snapshot / "manifest.json").unlink()
    target = site(tmp_path / "target")
    with pytest.raises(
        SnapshotError,
        match={"corrupt": "SHA-256", "truncate": "truncated", "missing_manifest": "did not finish"}[damage],
    ):
        restore_backup(target, snapshot)
    assert not Path(target.milvus.uri).exists()
    assert not (tmp_path / "target" / "audit.db").exists()


def test_non_empty_target_is_refused_unless_forced(tmp_path: Path, source: RAGConfig, embedder) -> None:
    create_backup(source, tmp_path / "snapshot")
    target = site(tmp_path / "target")
    ingest(target, {"other": "Something else entirely lives in this index."}, embedder)
    with pytest.raises(SnapshotError, match="is not empty"):
        restore_backup(target, tmp_path / "snapshot")
    restored = restore_backup(target, tmp_path / "snapshot", force=True)
    assert restored.rows == create_backup(source, tmp_path / "again").rows


@pytest.mark.server
def test_lite_to_server_and_back(tmp_path: Path, milvus_server: MilvusServer, collection: str, embedder) -> None:
    lite = build_source(tmp_path / "lite", embedder, alias=collection)
    before = rankings(lite, embedder)
    create_backup(lite, tmp_path / "to_server")
    server = site(tmp_path / "server", milvus_server.uri, collection)
    restored = restore_backup(server, tmp_path / "to_server")
    assert_same_rankings(before, rankings(server, embedder), tolerance=1e-5)
    assert ComplianceManager(server).verify_integrity().intact

    create_backup(server, tmp_path / "to_lite")
    back = site(tmp_path / "back", alias=collection)
    assert restore_backup(back, tmp_path / "to_lite").rows == restored.rows
    assert_same_rankings(before, rankings(back, embedder), tolerance=1e-5)
    assert ComplianceManager(back).verify_integrity().intact


def test_cli_backup_and_restore(tmp_path: Path, source: RAGConfig, capsys: pytest.CaptureFixture) -> None:
    def config_file(config: RAGConfig, name: str) -> str:
        path = tmp_path / name
        path.write_text(json.dumps(config.model_dump(mode="json")), encoding="utf-8")  # JSON is YAML
        return str(path)

    assert main(["--config", config_file(source, "source.yaml"), "backup", str(tmp_path / "snapshot")]) == 0
    assert "2 versions" in capsys.readouterr().out
    target = config_file(site(tmp_path / "target"), "target.yaml")
    assert main(["--config", target, "restore", str(tmp_path / "snapshot"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["serving"] == "semantic_index__v2"
    assert main(["--config", target, "restore", str(tmp_path / "snapshot")]) == 2
    assert "pass --force" in capsys.readouterr().err
