"""One audited action layer (issue 18): every face runs an action through ``rag_core.actions.perform``, which checks
the caller's permissions against the action's declaration, runs it and records what it did or why it failed."""

import asyncio
from pathlib import Path

import pytest
import yaml

from rag_core.actions import ACTIONS, perform
from rag_core.api import AdvancedRAGPipeline
from rag_core.cli.main import main
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.lifecycle.context import RagContext
from rag_core.security.rbac import TOKEN_VARIABLE, AccessDenied
from tests.support.configs import make_config, secured_config

TOKENS = {"admin": "admin-token-1", "operator": "operator-token-3", "reader": "reader-token-4"}
DOCS = [{"id": "a", "text": "Drift compares query distributions."}, {"id": "b", "text": "Compaction purges rows."}]


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder) -> RAGConfig:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    return secured_config(tmp_path, TOKENS)


def records(config: RAGConfig, event_type: AuditEventType) -> list:
    return ComplianceManager(config, token=TOKENS["admin"]).query_audit_logs(event_type=event_type)


def test_the_python_api_is_authorized_and_audited_like_the_cli(secured: RAGConfig, embedder) -> None:
    context = RagContext(secured, embedder=embedder)
    reader = AdvancedRAGPipeline(context=context, token=TOKENS["reader"])
    with pytest.raises(AccessDenied, match="reader .*lacks the 'ingest' permission"):
        asyncio.run(reader.ingest_documents(DOCS))
    denied = [r for r in records(secured, AuditEventType.ACCESS) if r.outcome == "denied"]
    assert [(r.actor, r.details["action"]) for r in denied] == [("reader@api", "ingest")]
    assert context.manager.resolve("semantic_index") is None, "a denied ingestion writes nothing"

    asyncio.run(AdvancedRAGPipeline(context=context, token=TOKENS["operator"]).ingest_documents(DOCS))
    results, metrics = asyncio.run(reader.retrieve("drift"))
    assert results[0].doc_id == "a"
    (ingestion,) = records(secured, AuditEventType.INGESTION)
    (retrieval,) = records(secured, AuditEventType.RETRIEVAL)
    assert ingestion.actor == "operator@api" and ingestion.details["upserted"] == 2
    assert retrieval.actor == "reader@api" and retrieval.details["query_id"] == metrics.query_id


def test_a_failure_is_recorded_with_its_type_and_what_the_error_adds(tmp_path: Path, embedder) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))

    class Refused(RuntimeError):
        audit_details = {"candidate": "semantic_index__v2", "gate": "failed"}

    def fail() -> None:
        raise Refused("the text of this message may quote a document")

    with pytest.raises(Refused):
        perform(RagContext(config, embedder=embedder), "reindex", fail)
    (record,) = records(config, AuditEventType.REINDEX)
    assert record.outcome == "failure"
    assert record.details == {
        "command": "reindex",
        "error": "Refused",
        "candidate": "semantic_index__v2",
        "gate": "failed",
    }


def test_dropping_incomplete_versions_needs_ingest_and_is_audited(
    secured: RAGConfig, embedder, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The action added through one declaration: before it, `rag versions --drop-incomplete` needed only the
    query permission (a reader could drop collections) and left no record."""
    context = RagContext(secured, embedder=embedder)
    asyncio.run(AdvancedRAGPipeline(context=context, token=TOKENS["operator"]).ingest_documents(DOCS))
    manager = context.manager
    stale = manager.create_version("semantic_index", manager.state("semantic_index__v1").version)
    assert not manager.state(stale).complete
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(secured.model_dump(mode="json")))
    argv = ["--config", str(config_file), "versions", "--drop-incomplete"]

    monkeypatch.setenv(TOKEN_VARIABLE, TOKENS["reader"])
    assert main(argv) == 2
    assert stale in manager.versions("semantic_index")
    monkeypatch.setenv(TOKEN_VARIABLE, TOKENS["operator"])
    assert main(argv) == 0
    assert stale not in manager.versions("semantic_index")
    (deletion,) = records(secured, AuditEventType.DELETION)
    assert deletion.actor == "operator@cli"
    assert deletion.details == {"alias": "semantic_index", "dropped_versions": [stale]}
    denied = [r for r in records(secured, AuditEventType.ACCESS) if r.outcome == "denied"]
    # Listing versions is an operator's view too since issue 20 (a reader sees only what its queries return).
    assert [(r.actor, r.details["action"]) for r in denied] == [("reader@cli", "rag versions")]


def test_every_action_that_changes_the_index_records_its_success() -> None:
    changes = {"ingest", "delete", "reindex", "rollback", "compact", "eval", "backup", "restore"}
    audited = {a.name for a in ACTIONS if a.audited is not None}
    assert changes <= audited
