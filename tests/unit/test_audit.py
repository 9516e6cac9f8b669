"""The audit trail on SQLite and PostgreSQL: recording, queries, tamper evidence, concurrent appends."""

import datetime
import json
import multiprocessing
import random
from pathlib import Path

import pytest
from sqlalchemy import delete, update

from rag_core.cli.main import main
from rag_core.compliance.audit import AuditTrail
from rag_core.compliance.audit_store import (
    HMAC_KEY_VARIABLE,
    AuditStore,
    AuditStoreError,
    MalformedRecordError,
    head_table,
    records_table,
)
from rag_core.compliance.events import AuditEventType
from rag_core.compliance.integrity import verify_chain
from rag_core.config import RAGConfig
from rag_core.lifecycle.compliance_manager import ComplianceManager
from rag_core.security.actor import acting_through, current_actor
from tests.support.audit_tampering import (
    NAMED_EXACTLY,
    TAMPERINGS,
    drop_head_table,
    drop_records_table,
    insert_beyond_head,
    malform_details,
    malform_time,
)

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


def rag_audit(tmp_path: Path, url: str, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``rag audit ARGS`` on the store at ``url`` (opened afresh, as a new process would): exit status, out, err."""
    config_file = tmp_path / "audit-config.json"
    config_file.write_text(json.dumps({"compliance": {"database_url": url, "checkpoint_every": 25}}), encoding="utf-8")
    capsys.readouterr()
    status = main(["audit", *args, "--config", str(config_file)])
    out, err = capsys.readouterr()
    return status, out, err


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
def test_every_tampering_is_detected_and_named(
    database_url: str, tampering: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(HMAC_KEY_VARIABLE, "test-key")
    trail = filled(database_url)
    assert verify_chain(trail.store).intact
    seq = TAMPERINGS[tampering](trail.store, random.Random(7))
    report = verify_chain(AuditStore(database_url))  # as the next `rag audit verify` opens it
    assert not report.intact and report.first_bad_seq is not None
    assert report.problem
    if tampering in NAMED_EXACTLY:
        assert report.first_bad_seq == seq, report.problem
    if tampering == "inserted_in_middle":
        assert seq <= report.first_bad_seq <= seq + 1, report.problem


def test_forgery_goes_unnoticed_only_without_the_key_and_verification_warns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_verifying_while_another_process_appends_reports_intact(database_url: str) -> None:
    """Verification reads one snapshot: a record appended meanwhile is never seen beyond the head it read."""
    url = database_url
    filled(url, 50)
    writer = multiprocessing.get_context("spawn").Process(target=_append_many, args=(url, 9, 300))
    writer.start()
    store = AuditStore(url)
    verdicts = []
    while writer.is_alive():
        verdicts.append(verify_chain(store))
    writer.join()
    assert verdicts and all(v.intact for v in verdicts), next(v.problem for v in verdicts if not v.intact)


def test_a_record_inserted_beyond_the_head_breaks_the_chain_and_is_never_counted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    filled(url)
    rng = random.Random()
    rng.choice = lambda options: options[-1]  # the far-away seq, as in the report: 9999999
    assert insert_beyond_head(AuditStore(url), rng) == 9_999_999
    status, _, err = rag_audit(tmp_path, url, capsys, "verify")
    assert status == 1 and "BROKEN at record 9999999" in err and "beyond the chain head" in err
    status, out, _ = rag_audit(tmp_path, url, capsys, "query", "--json")
    listed = json.loads(out)
    assert status == 0 and len(listed) == 120 and "mallory@cli" not in out
    status, out, _ = rag_audit(tmp_path, url, capsys, "report", "--month", "2026-11", "--json")
    report = json.loads(out)
    assert status == 1 and report["integrity"]["first_bad_seq"] == 9_999_999
    assert report["total_events"] == 120 and "mallory@cli" not in report["actors"]
    assert report["erasures"] == sum(1 for r in listed if r["event_type"] == "erasure")


@pytest.mark.parametrize(("malform", "named"), [(malform_details, "details"), (malform_time, "time")])
def test_a_malformed_record_is_a_broken_chain_naming_it_not_a_crash(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], malform, named: str
) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    filled(url)
    seq = malform(AuditStore(url), random.Random(5))
    status, _, err = rag_audit(tmp_path, url, capsys, "verify")
    assert status == 1 and f"BROKEN at record {seq}: its {named}" in err, err
    status, _, err = rag_audit(tmp_path, url, capsys, "report", "--month", "2026-11")
    assert status == 1
    with pytest.raises(MalformedRecordError, match=f"audit record {seq} cannot be read: its {named}"):
        ComplianceManager(RAGConfig.model_validate({"compliance": {"database_url": url}})).query_audit_logs()


def test_a_head_moved_back_one_record_is_named_for_what_it_is(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = filled(url).store
    with store.engine.begin() as conn:
        conn.execute(update(head_table).values(seq=119))
    report = verify_chain(AuditStore(url))
    assert not report.intact and report.first_bad_seq == 119
    assert report.problem == (
        "the chain head says the chain ends at record 119, but its hash is not record 119's (the head was rewritten)"
    )


def test_limit_keeps_the_newest_records_listed_oldest_first(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    compliance = manager(url, filled(url))
    assert [r.seq for r in compliance.query_audit_logs(limit=3)] == [118, 119, 120]
    assert [r.seq for r in compliance.query_audit_logs(actor="user0@cli", limit=2)] == [115, 118]
    status, out, _ = rag_audit(tmp_path, url, capsys, "query", "--limit", "3", "--json")
    assert status == 0 and [r["seq"] for r in json.loads(out)] == [118, 119, 120]


def test_a_dropped_head_table_is_not_restarted_over_the_records(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    drop_head_table(filled(url).store, random.Random())
    trail = AuditTrail(AuditStore(url))  # opening it again creates the table, but no genesis head
    report = verify_chain(trail.store)
    assert not report.intact and report.first_bad_seq == 120 and "head is missing" in report.problem
    with pytest.raises(AuditStoreError, match="chain head is missing"):
        trail.record(AuditEventType.RETRIEVAL, actor="svc")


def test_records_removed_up_to_a_periodic_checkpoint_are_not_a_retention_cut(tmp_path: Path) -> None:
    """A chain may start after record 1 only where a RETENTION event cut it: a prefix deleted up to a periodic
    checkpoint, or a dropped table the trail then goes on appending to, is tampering."""
    url = f"sqlite:///{tmp_path / 'audit.db'}"
    store = filled(url, 100).store  # checkpoints at 25, 50, 75, 100
    with store.engine.begin() as conn:
        conn.execute(delete(records_table).where(records_table.c.seq <= 50))
    report = verify_chain(store)
    assert not report.intact and report.first_bad_seq == 51 and "RETENTION" in report.problem
    drop_records_table(store, random.Random())
    trail = AuditTrail(AuditStore(url))
    trail.record(AuditEventType.RETRIEVAL, actor="svc")  # record 101, linked to the head at checkpoint 100
    report = verify_chain(trail.store)
    assert not report.intact and report.first_bad_seq == 101 and "RETENTION" in report.problem
