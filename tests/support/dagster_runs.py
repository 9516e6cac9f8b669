"""Runs the ingestion job in process and gathers what a user would read in the UI."""

from dataclasses import dataclass
from typing import Any

import dagster as dg

from rag_assets.definitions import build_definitions
from rag_core.config import RAGConfig


@dataclass
class IngestionRun:
    success: bool
    metadata: dict[str, dict[str, Any]]
    checks: dict[str, bool]
    errors: dict[str, str]


def run_ingestion(config: RAGConfig, *, expect_success: bool = True) -> IngestionRun:
    defs = build_definitions(config)
    result = defs.resolve_job_def("ingestion").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=expect_success
    )
    assert result.success == expect_success
    errors = {e.step_key: _messages(e.step_failure_data.error) for e in result.all_events if e.is_step_failure}
    materializations = [e.event_specific_data.materialization for e in result.all_events if e.is_step_materialization]
    metadata = {m.asset_key.to_user_string(): {k: v.value for k, v in m.metadata.items()} for m in materializations}
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
    return IngestionRun(success=result.success, metadata=metadata, checks=checks, errors=errors)


def _messages(error) -> str:  # noqa: ANN001 - dagster SerializableErrorInfo
    """The error and every cause under it: Dagster wraps the user's exception in its own."""
    parts = []
    while error is not None:
        parts.append(error.message)
        error = error.cause
    return "\n".join(parts)
