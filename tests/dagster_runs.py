"""Runs the ingestion job in process and gathers what a user would read in the UI."""

from dataclasses import dataclass
from typing import Any

import dagster as dg

from rag_assets.definitions import build_definitions
from rag_core.config import RAGConfig


@dataclass
class IngestionRun:
    metadata: dict[str, dict[str, Any]]
    checks: dict[str, bool]


def run_ingestion(config: RAGConfig, instance: dg.DagsterInstance | None = None) -> IngestionRun:
    defs = build_definitions(config)
    result = defs.resolve_job_def("ingestion").execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=True)
    assert result.success
    materializations = [e.event_specific_data.materialization for e in result.all_events if e.is_step_materialization]
    metadata = {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()} for m in materializations}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return IngestionRun(metadata=metadata, checks=checks)
