"""Every path that acts leaves an audit record: the Python API and the CLI (Dagster:
tests/unit/test_compliance_dagster.py), with ids and counts but never the query or document text."""

import asyncio
import json
import random
from pathlib import Path

import pytest

from rag_core import AdvancedRAGPipeline, AuditEventType, ComplianceManager
from rag_core.cli.main import main
from tests.support.audit_tampering import edit_field
from tests.support.configs import make_config

SECRET_QUERY = "which zebra purges deleted rows"
SECRET_TEXT = "Run compaction weekly to purge deleted rows, says the quagga manual."


def test_api_and_cli_actions_are_audited_without_text(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("RAG_ACTOR", raising=False)
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    pipeline = AdvancedRAGPipeline(config)
    asyncio.run(
        pipeline.ingest_documents(
            [
                {"id": "guide", "text": SECRET_TEXT, "title": "ops"},
                {"id": "faq", "text": "Drift compares query distributions."},
            ]
        )
    )
    _, metrics = asyncio.run(pipeline.retrieve(SECRET_QUERY))
    asyncio.run(pipeline.delete_documents(["faq"]))

    compliance = ComplianceManager(config)
    records = compliance.query_audit_logs()
    assert [r.event_type for r in records] == [
        AuditEventType.INGESTION,
        AuditEventType.VERSION_UPDATE,
        AuditEventType.RETRIEVAL,
        AuditEventType.DELETION,
    ]
    ingestion, promotion, retrieval, deletion = records  # the first ingestion built and promoted version 1
    assert promotion.details["alias"] == "semantic_index" and promotion.details["cause"] == "ingestion"
    assert ingestion.details["documents"] == 2 and ingestion.details["upserted"] == 2
    assert retrieval.details["query_id"] == metrics.query_id and retrieval.details["result_ids"][0] == "guide"
    assert deletion.details["doc_ids"] == ["faq"] and deletion.details["deleted_chunks"] >= 1
    assert all(r.actor.endswith("@api") for r in records)

    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(json.loads(config.model_dump_json())), encoding="utf-8")
    assert main(["query", SECRET_QUERY, "--config", str(config_file)]) == 0
    cli_record = compliance.query_audit_logs(event_type="retrieval")[-1]
    assert cli_record.actor.endswith("@cli") and cli_record.details["mode"] == "hybrid"

    stored = json.dumps([r.as_dict() for r in compliance.query_audit_logs()])
    assert "zebra" not in stored and "quagga" not in stored
    capsys.readouterr()
    assert main(["audit", "verify", "--config", str(config_file)]) == 0
    edit_field(compliance.trail.store, random.Random(3))
    assert main(["audit", "verify", "--json", "--config", str(config_file)]) == 1
    verdict = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert verdict["intact"] is False and verdict["first_bad_seq"] >= 1


def test_a_command_that_fails_leaves_a_failure_record(tmp_path: Path) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(json.loads(config.model_dump_json())), encoding="utf-8")
    assert main(["rollback", "--config", str(config_file)]) != 0  # nothing to roll back to
    [record] = ComplianceManager(config).query_audit_logs(event_type=AuditEventType.ROLLBACK)
    assert record.outcome == "failure" and record.details["command"] == "rollback" and record.details["error"]
