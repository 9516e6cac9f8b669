"""Weekly compaction: every complete version compacted, what it purged recorded, on a schedule users can set."""

import datetime
from pathlib import Path

import dagster as dg
import pytest

from rag_assets.definitions import build_definitions
from rag_core.config import RAGConfig
from rag_core.index import compaction
from rag_core.index.compaction import compact_versions
from rag_core.index.manager import CompactionResult, MilvusIndexManager, StorageStats
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.types import Document
from tests.support.configs import make_config


@pytest.fixture
def indexed(tmp_path: Path, milvus_uri: str, collection: str, embedder) -> RAGConfig:
    """Twenty documents, then 30 % of them deleted: rows a compaction should purge."""
    config = make_config(tmp_path, milvus_uri, collection, milvus={"consistency_level": "Strong"})
    documents = [
        Document(doc_id=f"d{i}", text=f"Document {i} talks about topic {i % 5} at some length.") for i in range(20)
    ]
    ingest_documents(documents, RagContext(config, embedder=embedder))
    ingest_documents(documents[6:], RagContext(config, embedder=embedder), prune=True)
    return config


def test_compaction_job_purges_deleted_rows_and_records_it(indexed: RAGConfig) -> None:
    manager = MilvusIndexManager(indexed.milvus, indexed.index)
    collection = manager.resolve(indexed.milvus.collection)
    if not manager.capabilities.is_lite:
        manager.client.flush(collection)  # sealed segments, as a week of writes leaves them
        assert manager.storage_stats(collection).deleted_rows == 6
    result = (
        build_definitions(indexed)
        .resolve_job_def("compaction")
        .execute_in_process(instance=dg.DagsterInstance.ephemeral())
    )
    assert result.success
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
    assert metadata["versions"] == 1 and metadata["deleted_rows_after"] == 0
    assert f"`{collection}`" in metadata["report"]
    if manager.capabilities.is_lite:
        assert "Milvus Lite" in metadata["report"] and metadata["deleted_rows_before"] == 0
    else:
        assert metadata["deleted_rows_before"] == 6
    assert manager.count(collection) == 14


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_only_complete_versions_are_compacted(indexed: RAGConfig) -> None:
    manager = MilvusIndexManager(indexed.milvus, indexed.index)
    alias = indexed.milvus.collection
    manager.create_version(alias, manager.state(manager.resolve(alias)).version)  # an unfinished build
    assert [r.collection for r in compact_versions(manager, alias)] == [f"{alias}__v1"]
    with pytest.raises(LookupError, match="No complete version"):
        compact_versions(manager, "nothing_here")


def test_the_schedule_runs_weekly_in_the_configured_timezone(tmp_path: Path) -> None:
    config = RAGConfig.model_validate({"schedules": {"timezone": "Europe/Berlin", "compaction_cron": "0 3 * * 0"}})
    schedule = build_definitions(config).resolve_schedule_def("compaction_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 3 * * 0", "Europe/Berlin")
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING and schedule.job_name == "compaction"
    sunday = datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    with dg.build_schedule_context(scheduled_execution_time=sunday) as context:
        requests = schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1 and requests[0].job_name in (None, "compaction")
    with pytest.raises(ValueError, match="unknown timezone 'Mars/Olympus'"):
        RAGConfig.model_validate({"schedules": {"timezone": "Mars/Olympus"}})


class ServerPurgingOnJob:
    """A server whose manual compaction purges deleted rows only from its ``purges_on``-th job on (the ones before
    found the segments held by its own automatic compaction); None: never (too few deletions to bother)."""

    def __init__(self, purges_on: int | None) -> None:
        self.purges_on, self.jobs = purges_on, 0
        self.capabilities = type("Capabilities", (), {"is_lite": False})()

    def wait_for_index(self, collection: str, *, wait_s: float) -> int:
        return 0

    def compact(self, collection: str, *, wait_s: float) -> CompactionResult:
        self.jobs += 1
        return CompactionResult(collection=collection, job_id=self.jobs, state="Completed")

    def storage_stats(self, collection: str) -> StorageStats:
        purged = self.purges_on is not None and self.jobs >= self.purges_on
        return StorageStats(segments=2, stored_rows=14 if purged else 20, live_rows=14)


def test_deleted_rows_a_first_job_left_are_taken_by_another_and_the_retries_are_bounded(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(compaction, "SETTLE_S", 0.1)
    second = ServerPurgingOnJob(purges_on=2)
    report = compaction._compact(second, "c", wait_s=60)
    assert (second.jobs, report.before.deleted_rows, report.after.deleted_rows) == (2, 6, 0)
    never = ServerPurgingOnJob(purges_on=None)
    report = compaction._compact(never, "c", wait_s=60)
    assert never.jobs == compaction.ATTEMPTS and report.after.deleted_rows == 6 and report.state == "Completed"
