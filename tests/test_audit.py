"""The audit trail on SQLite and PostgreSQL: recording, queries, tamper evidence, concurrent appends."""

import datetime
import multiprocessing
import random
from pathlib import Path

import pytest

from rag_core.compliance.audit import AuditTrail, acting_through, current_actor
from rag_core.compliance.audit_store import HMAC_KEY_VARIABLE, AuditStore, AuditStoreError
from rag_core.compliance.events import AuditEventType
from rag_core.compliance.integrity import verify_chain
from rag_core.compliance.manager import ComplianceManager
from rag_core.config import RAGConfig
from tests.audit_tampering import TAMPERINGS

START = datetime.datetime(2026, 11, 1, tzinfo=datetime.UTC)


class StepClock:
    """A fake clock: each call is one minute after the last."""

    def __init__(self, start: datetime.datetime = START) -> None:
        self.now = start

    def __call__(self) -> datetime.datetime:
        self.now += datetime.timedelta(minutes=1)
        return self.now


def filled(url: str, count: int = 120, *, checkpoint_every: int = 25) -> AuditTrail:
    trail = AuditTrail(AuditStore(url, checkpoint_every=checkpoint_every), clock=StepClock())
    types = list(AuditEventType)
    for index in range(count):
        trail.record(types[index % len(types)], actor=f"user{index % 3}@cli", details={"n": index})
    return trail


def manager(url: str, trail: AuditTrail) -> ComplianceManager:
    return ComplianceManager(RAGConfig.model_validate({"compliance": {"database_url": url}}), trail=trail)


def test_records_are_chained_and_queryable_by_type_time_and_actor(database_url: str) -> None:
    trail = filled(database_url)
    compliance = manager(database_url, trail)
    everything = compliance.query_audit_logs()
    assert [r.seq for r in everything] == list(range(1, 121))
    assert all(b.prev_hash == a.record_hash for a, b in zip(everything, everything[1:], strict=False))
    retrievals = compliance.query_audit_logs(event_type=AuditEventType.RETRIEVAL)
    assert retrievals and all(r.event_type is AuditEventType.RETRIEVAL for r in retrievals)
    assert compliance.query_audit_logs(event_type="retrieval") == retrievals
    window = compliance.query_audit_logs(start_time="2026-11-01T00:10:00", end_time="2026-11-01T00:20:00+00:00")
    assert [r.details["n"] for r in window] == list(range(9, 19))  # minute 10 (n=9) up to, not including, 20
    assert all(r.actor == "user1@cli" for r in compliance.query_audit_logs(actor="user1@cli"))
    assert len(compliance.query_audit_logs(limit=7)) == 7
    assert compliance.query_audit_logs(start_time="2026-11-02") == []
    assert len(compliance.query_audit_logs(end_time="2026-11-01")) == 120  # a date as end: the whole day
    assert verify_chain(trail.store).intact


def test_bad_dates_and_reversed_ranges_are_clear_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    compliance = manager(url, filled(url, 3))
    with pytest.raises(ValueError, match="start_time='2026-13-01' is not an ISO date"):
        compliance.query_audit_logs(start_time="2026-13-01")
    with pytest.raises(ValueError, match="end_time .* is not after start_time"):
        compliance.query_audit_logs(start_time="2026-11-05", end_time="2026-11-01")
    with pytest.raises(ValueError, match="unknown audit event type 'search'"):
        compliance.query_audit_logs(event_type="search")
    with pytest.raises(ValueError, match="end_date .* is not after start_date"):
        compliance.generate_compliance_report("2026-11-30", "2026-11-01")


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
def test_every_tampering_is_detected_and_named(database_url: str, tampering: str,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HMAC_KEY_VARIABLE, "test-key")
    trail = filled(database_url)
    assert verify_chain(trail.store).intact
    seq = TAMPERINGS[tampering](trail.store, random.Random(7))
    report = verify_chain(trail.store)
    assert not report.intact and report.first_bad_seq is not None
    assert report.problem
    if tampering in ("edited_field", "deleted_record"):
        assert report.first_bad_seq == seq


def test_forgery_goes_unnoticed_only_without_the_key_and_verification_warns(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without AUDIT_HMAC_KEY a full rehash cannot be told apart from the original: the report says so."""
    monkeypatch.delenv(HMAC_KEY_VARIABLE, raising=False)
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    trail = filled(url)
    clean = verify_chain(trail.store)
    assert clean.intact and not clean.signed and "unsigned" in clean.warnings[0]
    TAMPERINGS["recomputed_hash_forgery"](trail.store, random.Random(1))
    assert verify_chain(trail.store).intact  # the documented limit of an unsigned chain


def test_a_wrong_key_breaks_verification(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(HMAC_KEY_VARIABLE, "right")
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    trail = filled(url, 60)
    monkeypatch.setenv(HMAC_KEY_VARIABLE, "wrong")
    assert "HMAC" in verify_chain(trail.store).problem


def _append_many(url: str, worker: int, count: int) -> None:
    trail = AuditTrail(AuditStore(url, checkpoint_every=50))
    for index in range(count):
        trail.record(AuditEventType.RETRIEVAL, actor=f"worker{worker}", details={"n": index})


@pytest.mark.slow
def test_four_processes_appending_500_each_keep_one_valid_chain(database_url: str) -> None:
    AuditStore(database_url)  # the tables exist before the workers race
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_many, args=(database_url, w, 500)) for w in range(4)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=600)
        assert process.exitcode == 0
    store = AuditStore(database_url)
    records = list(store.records())
    assert len(records) == 2000
    for worker in range(4):
        assert sorted(r.details["n"] for r in records if r.actor == f"worker{worker}") == list(range(500))
    report = verify_chain(store)
    assert report.intact, report.problem


def test_current_actor_names_who_acts_and_through_what(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG_ACTOR", raising=False)
    assert current_actor().endswith("@api")
    with acting_through("dagster"):  # an in-process Dagster run
        assert current_actor().endswith("@dagster")
    assert current_actor().endswith("@api"), "the run's channel does not stick to what the process records next"
    monkeypatch.setenv("RAG_ACTOR", "svc-ingest")
    assert current_actor() == "svc-ingest"


def test_an_unreachable_database_is_a_clear_error_without_its_password() -> None:
    with pytest.raises(AuditStoreError, match="compliance.database_url") as error:
        AuditStore("postgresql+psycopg2://nobody:secret@127.0.0.1:1/none")
    assert "127.0.0.1:1" in str(error.value) and "secret" not in str(error.value)


def test_verifying_while_another_process_appends_reports_intact(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    filled(url, 50)
    writer = multiprocessing.get_context("spawn").Process(target=_append_many, args=(url, 9, 300))
    writer.start()
    store = AuditStore(url)
    verdicts = []
    while writer.is_alive():
        verdicts.append(verify_chain(store))
    writer.join()
    assert verdicts and all(v.intact for v in verdicts), next(v.problem for v in verdicts if not v.intact)
