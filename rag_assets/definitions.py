"""The code location: everything under ``defs/`` plus what the config shapes: resources, schedules and the
reindex sensor (whose interval is configured).

Those are not ``defs/`` modules of their own: tests and the demo build the same definitions from a config they
choose (``build_definitions(config)``), while Dagster's loader reads ``config.yaml`` / ``.env`` / environment.
"""

from pathlib import Path

import dagster as dg

from rag_assets.defs.compliance.schedules import compliance_report_schedule, retention_schedule
from rag_assets.defs.compliance.sensors import audit_run_sensors
from rag_assets.defs.drift.schedules import drift_schedule
from rag_assets.defs.ingestion.partitioned import with_partitioned_ingestion
from rag_assets.defs.maintenance.schedules import compaction_schedule
from rag_assets.defs.observability.sensors import pushgateway_sensors
from rag_assets.defs.performance.schedules import performance_schedule
from rag_assets.defs.reindexing.sensors import reindex_sensor
from rag_assets.io_manager import ParquetIOManager
from rag_assets.resources import (
    AssetStorage,
    CorpusResource,
    EmbedderResource,
    MilvusResource,
    RetrievalEngineResource,
    SettingsResource,
)
from rag_core.config import RAGConfig, load_config
from rag_core.security.pii import install_log_redaction


def build_resources(config: RAGConfig) -> dict[str, object]:
    settings = SettingsResource.from_config(config)
    storage = AssetStorage(settings=settings)
    return {
        "settings": settings,
        "storage": storage,
        "io_manager": ParquetIOManager(storage=storage),
        "corpus": CorpusResource(settings=settings),
        "embedder": EmbedderResource(settings=settings),
        "milvus": MilvusResource(settings=settings),
        "retrieval": RetrievalEngineResource(settings=settings),
    }


def build_definitions(config: RAGConfig) -> dg.Definitions:
    install_log_redaction()  # the Dagster code location's entry point: run logs carry no personal data
    folder = dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
    return dg.Definitions.merge(
        with_partitioned_ingestion(folder, config.ingestion.partitions),
        dg.Definitions(
            resources=build_resources(config),
            schedules=[
                compaction_schedule(config.schedules),
                drift_schedule(config.schedules),
                performance_schedule(config.schedules),
                compliance_report_schedule(config),
                retention_schedule(config),
            ],
            sensors=[reindex_sensor(config.schedules), *audit_run_sensors(config), *pushgateway_sensors(config)],
            # Runs launched from the UI ("Materialize all", an asset's "Materialize") in one process, like the jobs:
            # the chain has no steps to run side by side, and a process per step would import torch and load the
            # model again for each.
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_config())
