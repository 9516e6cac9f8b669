"""Retention with a fake clock: nothing younger than its period is deleted, everything older is, and the chain
still verifies from the signed checkpoint at the cut."""

import datetime
from pathlib import Path

import pytest
from sqlalchemy import update

from rag_core.compliance.audit import AuditTrail
from rag_core.compliance.audit_store import HMAC_KEY_VARIABLE, AuditStore, records_table
from rag_core.compliance.events import AuditEventType
from rag_core.compliance.integrity import verify_chain
from rag_core.config import RAGConfig
from rag_core.lifecycle.compliance_manager import ComplianceManager

NOW = datetime.datetime(2026, 11, 26, 12, tzinfo=datetime.UTC)


class FakeClock:
    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


def _config(tmp_path: Path, url: str | None = None) -> RAGConfig:
    return RAGConfig.model_validate(
        {
            "compliance": {"database_url": url or f"sqlite:///{tmp_path / 'audit.db'}", "checkpoint_every": 10},
            "quality": {"query_log_dir": str(tmp_path / "query_log")},
        }
    )


def test_retention_deletes_exactly_what_is_due_and_the_chain_still_verifies(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HMAC_KEY_VARIABLE, "retention-key")
    config = _config(tmp_path, database_url)
    clock = FakeClock(NOW - datetime.timedelta(days=400))
    trail = AuditTrail(AuditStore(config.compliance.database_url, checkpoint_every=10), clock=clock)
    ages = [400, 300, 200, 91, 90, 89, 30, 1]  # days before NOW
    for age in ages:
        clock.now = NOW - datetime.timedelta(days=age, seconds=-1)  # a second younger than `age` days
        for kind in (AuditEventType.RETRIEVAL, AuditEventType.VERSION_UPDATE):
            trail.record(kind, actor="svc", details={"age_days": age})
    for age in (120, 91, 90, 10):
        (tmp_path / "query_log" / f"date={(NOW - datetime.timedelta(days=age)).date()}").mkdir(parents=True)
    clock.now = NOW
    result = ComplianceManager(config, trail=trail)._enforce_retention_policy()

    live = [r for r in trail.store.records() if not r.purged]
    kept_retrievals = sorted(r.details["age_days"] for r in live if r.event_type is AuditEventType.RETRIEVAL)
    assert kept_retrievals == [1, 30, 89, 90]  # 90 days old minus a second: not yet due
    assert sorted(r.details["age_days"] for r in live if r.event_type is AuditEventType.VERSION_UPDATE) == ages[::-1]
    assert result.purged_records == 4
    assert result.query_log_days_deleted == [str((NOW - datetime.timedelta(days=a)).date()) for a in (120, 91)]
    assert sorted(p.name for p in (tmp_path / "query_log").iterdir()) == [
        f"date={(NOW - datetime.timedelta(days=a)).date()}" for a in (90, 10)
    ]
    assert result.event.event_type is AuditEventType.RETENTION and result.event.details["purged_records"] == 4
    report = verify_chain(trail.store)
    assert report.intact and report.signed, report.problem


def test_the_purged_prefix_is_removed_behind_a_signed_checkpoint(
    tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HMAC_KEY_VARIABLE, "retention-key")
    config = _config(tmp_path, database_url)
    clock = FakeClock(NOW - datetime.timedelta(days=200))
    trail = AuditTrail(AuditStore(config.compliance.database_url, checkpoint_every=10), clock=clock)
    for _ in range(25):
        trail.record(AuditEventType.RETRIEVAL, actor="svc")
    clock.now = NOW - datetime.timedelta(days=1)
    trail.record(AuditEventType.INGESTION, actor="svc", details={"documents": 3})
    clock.now = NOW
    result = ComplianceManager(config, trail=trail).enforce_retention_policy()
    assert result.removed_records == 25
    records = list(trail.store.records())
    assert [r.event_type for r in records] == [AuditEventType.INGESTION, AuditEventType.RETENTION]
    anchor = next(c for c in trail.store.checkpoints() if c.reason == "retention")
    assert anchor.seq == 25 and anchor.signature
    assert verify_chain(trail.store).intact
    monkeypatch.setenv(HMAC_KEY_VARIABLE, "another-key")  # a forged anchor cannot be signed without the key
    assert not verify_chain(trail.store).intact


def test_a_record_purged_without_a_retention_event_is_tampering(tmp_path: Path) -> None:
    config = _config(tmp_path)
    trail = AuditTrail(AuditStore(config.compliance.database_url), clock=FakeClock(NOW))
    for _ in range(3):
        trail.record(AuditEventType.RETRIEVAL, actor="svc")
    with trail.store.engine.begin() as conn:
        conn.execute(update(records_table).where(records_table.c.seq == 2).values(actor="", purged=True))
    report = verify_chain(trail.store)
    assert not report.intact and report.first_bad_seq == 2 and "RETENTION" in report.problem
