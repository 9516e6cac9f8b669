"""Role-based access to compliance data (issue 9, part 6): hashed tokens, permissions, audited denials."""

import io
from pathlib import Path

import pytest

from rag_core.actions import action, action_table, role_table
from rag_core.cli.main import main
from rag_core.compliance.access import denials_audited
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.security.actor import current_actor
from rag_core.security.rbac import (
    ROLE_PERMISSIONS,
    TOKEN_VARIABLE,
    Permission,
    Role,
    authorize,
    hash_token,
    identify,
)
from tests.support.configs import make_config, secured_config
from tests.support.paths import REPO

TOKENS = {
    "admin": "admin-token-1",
    "auditor": "auditor-token-2",
    "operator": "operator-token-3",
    "reader": "reader-token-4",
}


@pytest.fixture
def secured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> RAGConfig:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)
    return secured_config(tmp_path, TOKENS)


def denials(config: RAGConfig) -> list[dict]:
    records = ComplianceManager(config, token=TOKENS["admin"]).query_audit_logs(event_type=AuditEventType.ACCESS)
    return [r.details | {"actor": r.actor} for r in records if r.outcome == "denied"]


def test_the_role_matrix() -> None:
    assert ROLE_PERMISSIONS[Role.ADMIN] == set(Permission)
    assert ROLE_PERMISSIONS[Role.AUDITOR] == {Permission.READ_AUDIT, Permission.GENERATE_REPORTS}
    assert ROLE_PERMISSIONS[Role.OPERATOR] == {Permission.QUERY, Permission.INGEST, Permission.ENFORCE_RETENTION}
    assert ROLE_PERMISSIONS[Role.READER] == {Permission.QUERY}


def test_tokens_are_kept_as_sha256_only(secured: RAGConfig) -> None:
    assert hash_token("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    dumped = secured.model_dump_json()
    assert not any(token in dumped for token in TOKENS.values())
    assert identify(secured, TOKENS["auditor"]).role is Role.AUDITOR


def test_without_tokens_the_local_user_acts_as_admin(tmp_path: Path) -> None:
    identity = identify(make_config(tmp_path, str(tmp_path / "milvus.db")))
    assert identity.local and identity.role is Role.ADMIN


def test_missing_and_unknown_tokens_are_refused_and_audited(
    secured: RAGConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(PermissionError, match=TOKEN_VARIABLE), denials_audited(secured):
        identify(secured)
    monkeypatch.setenv(TOKEN_VARIABLE, "not-a-known-token")
    with pytest.raises(PermissionError, match="matches no entry of security.tokens"), denials_audited(secured):
        identify(secured)
    assert [d["reason"] for d in denials(secured)] == ["no token", "unknown token"]


def test_the_environment_token_identifies_the_caller(secured: RAGConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKENS["operator"])
    assert authorize(secured, Permission.ENFORCE_RETENTION, action="test").name == "operator"


@pytest.mark.parametrize(
    ("role", "call", "permission"),
    [
        ("reader", lambda m: m.query_audit_logs(), "read_audit"),
        ("operator", lambda m: m.verify_integrity(), "read_audit"),
        ("reader", lambda m: m.generate_compliance_report("2026-11-01", "2026-11-30"), "generate_reports"),
        ("auditor", lambda m: m.enforce_retention_policy(), "enforce_retention"),
        ("auditor", lambda m: m._enforce_retention_policy(), "enforce_retention"),
        ("operator", lambda m: m.erase_document("any"), "erase"),
    ],
)
def test_every_compliance_entry_checks_its_permission(secured: RAGConfig, role: str, call, permission: str) -> None:
    with pytest.raises(PermissionError, match=f"lacks the '{permission}' permission"):
        call(ComplianceManager(secured, token=TOKENS[role]))
    [denial] = denials(secured)
    assert denial["permission"] == permission and denial["role"] == role and denial["actor"].startswith(role)


def test_allowed_roles_get_through_and_act_under_their_name(secured: RAGConfig) -> None:
    auditor = ComplianceManager(secured, token=TOKENS["auditor"])
    assert auditor.verify_integrity() is not None
    report = auditor.generate_compliance_report("2026-01-01", "2099-12-31")
    assert report is not None
    ComplianceManager(secured, token=TOKENS["operator"]).enforce_retention_policy()
    retention = ComplianceManager(secured, token=TOKENS["admin"]).query_audit_logs(event_type=AuditEventType.RETENTION)
    assert retention and retention[-1].actor.startswith("operator@")
    assert not current_actor().startswith("operator@")  # the identity acts for its own calls only


def test_cli_commands_check_permissions(
    secured: RAGConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(secured.model_dump_json())  # JSON is YAML
    monkeypatch.setenv(TOKEN_VARIABLE, TOKENS["reader"])
    assert main(["erase", "--doc-id", "x", "--config", str(config_file)]) == 2
    assert "lacks the 'erase' permission" in capsys.readouterr().err
    assert main(["ingest", str(tmp_path), "--config", str(config_file)]) == 2
    assert "lacks the 'ingest' permission" in capsys.readouterr().err
    assert [d["permission"] for d in denials(secured)] == ["erase", "ingest"]


def test_unlisted_commands_need_every_permission() -> None:
    assert action("some-new-command").permissions == tuple(Permission)
    assert action("audit", "report").permissions == (Permission.GENERATE_REPORTS,)
    assert action("token").permissions == ()


def test_token_hash_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("sys.stdin", io.StringIO("abc\n"))
    assert main(["token", "hash"]) == 0
    assert capsys.readouterr().out.strip() == hash_token("abc")


def test_the_permission_tables_in_the_docs_are_the_declared_ones() -> None:
    """docs/security.md shows what rag_core.actions declares (regenerate: python -m rag_core.actions)."""
    doc = (REPO / "docs" / "security.md").read_text(encoding="utf-8")
    assert role_table() in doc and action_table() in doc
