"""Requests a ``reindex`` run when the latest drift report detected drift, or when the configured model, chunking
or index parameters no longer match what the serving version was built with. Built from the config (its interval
is ``schedules.reindex_sensor_interval_s``); ``rag_assets.definitions`` adds it."""

import dagster as dg

from rag_assets.defs.reindexing.jobs import reindex_job
from rag_assets.resources import MilvusResource, SettingsResource
from rag_core.config import SchedulesConfig
from rag_core.lifecycle.reindex import check_settings

DRIFT_REPORT = dg.AssetKey("drift_report")


def reindex_sensor(config: SchedulesConfig) -> dg.SensorDefinition:
    # Stopped by default: a full re-index embeds the whole corpus again; an operator turns it on deliberately.
    @dg.sensor(
        name="reindex_sensor",
        job=reindex_job,
        minimum_interval_seconds=config.reindex_sensor_interval_s,
        default_status=dg.DefaultSensorStatus.STOPPED,
        description="Requests a quality-gated reindex run once per drift_report that detected drift, and once "
        "per new index fingerprint when the configured model, chunking or index parameters "
        "differ from the serving version's.",
    )
    def _sensor(
        context: dg.SensorEvaluationContext,
        settings: SettingsResource,
        milvus: MilvusResource,
    ) -> dg.SensorResult:
        manager = milvus.manager()
        if manager.resolve(milvus.collection) is None:
            return dg.SensorResult(skip_reason=f"No index {milvus.collection!r} yet: nothing to re-index.")
        check = check_settings(settings.context(), alias=milvus.collection)
        if check.changed:
            return dg.SensorResult(
                run_requests=[
                    dg.RunRequest(
                        run_key=f"settings-{check.configured_fingerprint}", tags={"reindex/reason": "settings"}
                    )
                ]
            )
        latest = context.instance.fetch_materializations(DRIFT_REPORT, limit=1).records
        detected = latest[0].asset_materialization.metadata.get("drift_detected") if latest else None
        if detected is None or not detected.value:
            return dg.SensorResult(
                skip_reason="Index settings unchanged and the latest drift report (if any) detected no drift."
            )
        return dg.SensorResult(
            run_requests=[dg.RunRequest(run_key=f"drift-{latest[0].storage_id}", tags={"reindex/reason": "drift"})]
        )

    return _sensor
