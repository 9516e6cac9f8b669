"""Every face takes the caller as the principal: the HTTP service's bearer token, the command line (and an admin's
``--as``), the Python API's token and the Dagster query job. 401 and 403 are unchanged."""

import asyncio
import io
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from rag_assets.definitions import build_definitions
from rag_core.api import AdvancedRAGPipeline
from rag_core.cli.main import main
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.security.rbac import TOKEN_VARIABLE, AccessDenied, hash_token
from rag_core.serve.app import create_app
from rag_core.types import Document
from tests.support.configs import make_config

TOKENS = {
    "hr-reader": "t-hr",
    "legal-reader": "t-legal",
    "globex-reader": "t-globex",
    "admin": "t-admin",
    "staff": "t-staff",
}
LABELS = {  # token name -> role, groups, tenant
    "hr-reader": ("reader", ["hr"], "acme"),
    "legal-reader": ("reader", ["legal"], "acme"),
    "globex-reader": ("reader", ["hr"], "globex"),
    "admin": ("admin", None, "acme"),
    "staff": ("admin", None, None),  # of the deployment's own tenant: reads the audit trail
}
DOCUMENTS = {  # doc id -> groups, tenant, text
    "payroll": (["hr"], "acme", "Payroll runs on the last working day of each month for acme staff."),
    "contract": (["legal"], "acme", "The acme supplier contract renews each January unless cancelled."),
    "globex-payroll": (["hr"], "globex", "Payroll for globex staff runs every second Friday."),
}


@pytest.fixture(scope="module")
def secured(tmp_path_factory: pytest.TempPathFactory, embedder) -> RAGConfig:
    tmp = tmp_path_factory.mktemp("faces")
    tokens = [
        {"name": name, "role": role, "token_sha256": hash_token(TOKENS[name])}
        | ({"groups": groups} if groups else {})
        | ({"tenant": tenant} if tenant else {})
        for name, (role, groups, tenant) in LABELS.items()
    ]
    config = make_config(tmp, str(tmp / "milvus.db"), retrieval={"bm25_refresh_s": 0}, security={"tokens": tokens})
    context = RagContext(config, embedder=embedder)
    for doc_id, (groups, tenant, text) in DOCUMENTS.items():
        ingest_documents([Document(doc_id, text)], context, source=doc_id, groups=groups, tenant=tenant)
    return config


@pytest.fixture(scope="module")
def client(secured: RAGConfig) -> Iterator[TestClient]:
    with TestClient(create_app(secured)) as client:
        yield client


def found(client: TestClient, token: str | None, query: str = "when does payroll run") -> tuple[int, set[str]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = client.post("/query", json={"query": query, "top_k": 5}, headers=headers)
    return response.status_code, {r["doc_id"] for r in response.json().get("results", [])}


def test_the_http_service_answers_each_token_from_its_own_documents(client: TestClient) -> None:
    assert found(client, TOKENS["hr-reader"]) == (200, {"payroll"})
    assert found(client, TOKENS["legal-reader"]) == (200, {"contract"})
    assert found(client, TOKENS["globex-reader"]) == (200, {"globex-payroll"})
    assert found(client, TOKENS["admin"]) == (200, {"payroll", "contract"}), "an admin of acme: every acme group"
    assert found(client, None)[0] == 401
    assert found(client, "not-a-token")[0] == 401
    widened = client.post(
        "/query",
        json={"query": "payroll", "filter": 'doc_id != "") or (doc_id != ""'},
        headers={"Authorization": f"Bearer {TOKENS['hr-reader']}"},
    )
    assert widened.status_code == 422 and widened.json()["field"] == "filter", widened.text
    assert "globex" not in widened.text


def test_the_python_api_takes_its_token_as_the_principal(secured: RAGConfig, embedder) -> None:
    context = RagContext(secured, embedder=embedder)
    for name, expected in (("legal-reader", {"contract"}), ("globex-reader", {"globex-payroll"})):
        results, _ = asyncio.run(
            AdvancedRAGPipeline(context=context, token=TOKENS[name]).retrieve("payroll contract staff", top_k=5)
        )
        assert {r.doc_id for r in results} == expected


def test_an_admin_queries_as_another_principal_and_a_reader_may_not(
    secured: RAGConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(secured.model_dump_json())  # JSON is YAML
    ask = ["query", "payroll contract staff", "--top-k", "5", "--config", str(config_file)]
    monkeypatch.setenv(TOKEN_VARIABLE, TOKENS["admin"])
    assert main([*ask, "--as", "legal-reader"]) == 0
    shown = capsys.readouterr().out
    assert "contract" in shown and "payroll" not in shown
    assert main([*ask, "--as", "globex-reader"]) == 2, "an admin of acme may not act as globex's principals"
    assert "admin of tenant 'acme' only" in capsys.readouterr().err
    monkeypatch.setenv(TOKEN_VARIABLE, TOKENS["hr-reader"])
    assert main([*ask, "--as", "legal-reader"]) == 2
    assert "only admins may" in capsys.readouterr().err
    records = ComplianceManager(secured, token=TOKENS["staff"]).query_audit_logs(event_type=AuditEventType.ACCESS)
    denied = [(r.details["action"], r.details["reason"]) for r in records if r.outcome == "denied"]
    assert denied[-2:] == [("query --as", "another tenant"), ("query --as", "not an admin")], "refusals are audited"


def test_token_new_prints_the_principal_and_refuses_bad_labels(
    secured: RAGConfig, tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert main(["token", "new", "--name", "ann", "--role", "reader", "--groups", "hr,legal", "--tenant", "acme"]) == 0
    assert "groups: [hr, legal], tenant: acme}" in capsys.readouterr().out
    assert main(["token", "new", "--name", "bob", "--role", "reader", "--groups", "h r"]) == 2
    assert "group 'h r' is not a label" in capsys.readouterr().err
    assert main(["token", "new", "--name", "eve", "--role", "reader", "--all-tenants"]) == 2


def test_the_dagster_query_job_needs_a_principal_once_tokens_are_configured(secured: RAGConfig) -> None:
    job = build_definitions(secured).resolve_job_def("query_job")

    def run(principal: str) -> dg.ExecuteInProcessResult:
        config = {"query": "payroll contract staff", "top_k": 5} | ({"principal": principal} if principal else {})
        return job.execute_in_process(
            instance=dg.DagsterInstance.ephemeral(),
            run_config={"ops": {"answer_query": {"config": config}}},
            raise_on_error=False,
        )

    assert not run("").success
    result = run("legal-reader")
    assert result.success
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    table = output.step_output_data.metadata["results"].value
    assert "`contract`" in table and "payroll" not in table


def test_a_principal_bound_to_a_tenant_writes_and_deletes_only_there(tmp_path: Path, embedder) -> None:
    """Forged records: an operator of acme plants a document labelled globex, and deletes globex's by id."""
    tokens = [
        {"name": "acme-ops", "role": "operator", "token_sha256": hash_token("t-ops"), "tenant": "acme"},
        {"name": "globex", "role": "reader", "token_sha256": hash_token("t-g"), "tenant": "globex"},
        {"name": "acme", "role": "reader", "token_sha256": hash_token("t-a"), "tenant": "acme"},
        {"name": "root", "role": "admin", "token_sha256": hash_token("t-root"), "all_tenants": True},
    ]
    config = make_config(
        tmp_path, str(tmp_path / "milvus.db"), retrieval={"bm25_refresh_s": 0}, security={"tokens": tokens}
    )
    context = RagContext(config, embedder=embedder)
    root, ops = (AdvancedRAGPipeline(context=context, token=t) for t in ("t-root", "t-ops"))
    asyncio.run(
        root.ingest_documents([{"id": "q3", "text": "Globex revenue rose in the third quarter."}], tenant="globex")
    )

    report = asyncio.run(
        ops.ingest_documents(
            [
                {"id": "q3-forged", "text": "Globex revenue fell sharply this quarter.", "tenant": "globex"},
                {"id": "memo", "text": "Acme revenue memo for the third quarter."},
            ]
        )
    )
    assert any("'q3-forged'" in s and "not the writer's" in s for s in report.skipped), report.skipped
    deleted = asyncio.run(ops.delete_documents(["q3"]))
    assert deleted.deleted_chunks == 0, "another tenant's document is absent to this writer"

    def seen(token: str) -> set[str]:
        results, _ = asyncio.run(AdvancedRAGPipeline(context=context, token=token).retrieve("revenue quarter", top_k=5))
        return {r.doc_id for r in results}

    assert seen("t-g") == {"q3"}
    assert seen("t-a") == {"memo"}, "a document given no tenant lands in its writer's"


def test_a_guest_tenants_principal_runs_nothing_that_reads_every_tenant(
    tmp_path: Path, embedder, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """An admin of acme (not the deployment's own tenant) may query and ingest acme's documents, but not read the
    audit trail, back up, erase or list what every tenant holds; an admin of the default tenant still may."""
    tokens = [
        {"name": "acme-admin", "role": "admin", "token_sha256": hash_token("t-acme"), "tenant": "acme"},
        {"name": "staff", "role": "admin", "token_sha256": hash_token("t-staff")},
    ]
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), security={"tokens": tokens})
    context = RagContext(config, embedder=embedder)
    asyncio.run(AdvancedRAGPipeline(context=context, token="t-acme").ingest_documents([{"id": "a", "text": "Acme."}]))
    with pytest.raises(AccessDenied, match="only principals of access.default_tenant"):
        ComplianceManager(config, token="t-acme").query_audit_logs()
    assert ComplianceManager(config, token="t-staff").query_audit_logs()
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config.model_dump_json())
    monkeypatch.setenv(TOKEN_VARIABLE, "t-acme")
    for command in (["stats"], ["versions"], ["backup", str(tmp_path / "b")], ["erase", "--doc-id", "a"]):
        assert main([*command, "--config", str(config_file)]) == 2, command
        assert "tenant 'acme'" in capsys.readouterr().err
    monkeypatch.setenv(TOKEN_VARIABLE, "t-staff")
    assert main(["stats", "--config", str(config_file)]) == 0
