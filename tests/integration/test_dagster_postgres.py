"""Dagster on PostgreSQL for real: the instance of deploy/dagster.yaml (what docker compose and the image use)
against Debian's PostgreSQL, started on loopback by tests/support/postgres_server.py.

The ingestion job runs on that instance; then the test reads PostgreSQL itself, as an operator would with psql,
and finds the run (SUCCESS) in `runs` and one ASSET_MATERIALIZATION per asset of the job in `event_logs`.
"""

import contextlib
import os
import shutil
from pathlib import Path
from urllib.parse import urlparse

import dagster as dg
import psycopg2
import pytest

from rag_assets.definitions import build_definitions
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.paths import REPO

ROOT = REPO
INSTANCE_YAML = ROOT / "deploy" / "dagster.yaml"


@pytest.fixture
def dagster_home(tmp_path: Path, postgres, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A DAGSTER_HOME holding deploy/dagster.yaml unchanged, its DAGSTER_POSTGRES_* pointing at a fresh database."""
    database = urlparse(postgres.new_database())
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_POSTGRES_HOST", database.hostname)
    monkeypatch.setenv("DAGSTER_POSTGRES_PORT", str(database.port))
    monkeypatch.setenv("DAGSTER_POSTGRES_USER", database.username)
    monkeypatch.setenv("DAGSTER_POSTGRES_PASSWORD", "unused")  # the test server trusts loopback connections
    monkeypatch.setenv("DAGSTER_POSTGRES_DB", database.path.lstrip("/"))
    return home


def _query(sql: str, *params: object) -> list[tuple]:
    with (
        contextlib.closing(
            psycopg2.connect(
                host=os.environ["DAGSTER_POSTGRES_HOST"],
                port=int(os.environ["DAGSTER_POSTGRES_PORT"]),
                user=os.environ["DAGSTER_POSTGRES_USER"],
                dbname=os.environ["DAGSTER_POSTGRES_DB"],
            )
        ) as conn,
        conn.cursor() as cur,
    ):
        cur.execute(sql, params)
        return cur.fetchall()


@pytest.mark.slow
def test_ingestion_run_and_materializations_are_stored_in_postgres(
    tmp_path: Path, dagster_home: Path, embedder
) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    documents = write_corpus(Path(config.ingestion.docs_dir))
    job = build_definitions(config).resolve_job_def("ingestion")

    with dg.DagsterInstance.get() as instance:
        # the file's `storage: postgres` block, not a silent SQLite fallback
        for storage in (instance.run_storage, instance.event_log_storage, instance.schedule_storage):
            assert type(storage).__module__.startswith("dagster_postgres"), type(storage)
        result = job.execute_in_process(instance=instance)
    assert result.success

    runs = _query("SELECT run_id, pipeline_name, status FROM runs")
    assert runs == [(result.run_id, "ingestion", "SUCCESS")]

    materialized = _query(
        "SELECT asset_key FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_MATERIALIZATION'",
        result.run_id,
    )
    keys = sorted(dg.AssetKey.from_db_string(key).to_user_string() for (key,) in materialized)
    expected = sorted(key.to_user_string() for key in job.asset_layer.selected_asset_keys)
    assert keys == expected, "one materialization per asset of the ingestion job"
    assert "semantic_index" in keys

    checks = _query(
        "SELECT count(*) FROM event_logs WHERE run_id = %s AND dagster_event_type = 'ASSET_CHECK_EVALUATION'",
        result.run_id,
    )
    assert checks[0][0] == len(result.get_asset_check_evaluations()) > 0

    # what the UI reads back through a fresh instance on the same database: the index's metadata
    with dg.DagsterInstance.get() as instance:
        event = instance.get_latest_materialization_event(dg.AssetKey("semantic_index"))
    assert event is not None and event.run_id == result.run_id
    rows = event.asset_materialization.metadata["rows"].value
    assert rows >= len(documents), "every document gave at least one chunk"
