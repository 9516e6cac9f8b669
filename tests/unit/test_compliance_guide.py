"""The guide's compliance snippets, exactly as docs/compliance.md shows them, on a fresh working directory."""

import re
from pathlib import Path

import pytest

from rag_core import AuditEventType, ComplianceManager
from tests.support.paths import REPO

DOC = REPO / "docs" / "compliance.md"


def test_the_guide_snippets_run_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("RAG_CONFIG", raising=False)
    snippet = re.search(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S).group(1)
    assert "compliance._enforce_retention_policy()" in snippet
    exec(compile(snippet, str(DOC), "exec"), {})  # noqa: S102 - the documented snippet is the test
    assert capsys.readouterr().out.split() == ["0", "0"]  # nothing happened in January 2024
    assert (tmp_path / "data" / "compliance" / "audit.db").is_file()
    retention = ComplianceManager().query_audit_logs(event_type=AuditEventType.RETENTION)
    assert len(retention) == 1 and ComplianceManager().verify_integrity().intact
