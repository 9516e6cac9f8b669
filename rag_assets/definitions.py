"""The code location: assets, checks, jobs, sensors and resources, configured from rag_core's config."""

import os

import dagster as dg

from rag_assets import assets, checks, retrieval
from rag_assets.io_manager import ParquetIOManager
from rag_assets.jobs import ingestion_job
from rag_assets.resources import (AssetStorage, CorpusResource, EmbedderResource, MilvusResource,
                                  RetrievalEngineResource)
from rag_assets.sensors import raw_documents_sensor
from rag_core.config import RAGConfig, load_config


def _secret(variable: str) -> dg.EnvVar | None:
    """Secrets stay environment references in Dagster, resolved at run time and never shown in run config."""
    return dg.EnvVar(variable) if os.environ.get(variable) else None


def build_resources(config: RAGConfig) -> dict[str, object]:
    storage = AssetStorage(base_dir=config.ingestion.storage_dir)
    embedder = EmbedderResource(**config.embedding.model_dump(), **config.chunking.model_dump())
    milvus = MilvusResource(**config.milvus.model_dump(exclude={"password", "token"}),
                            **config.index.model_dump(exclude={"index_type"}),
                            password=_secret("MILVUS_PASSWORD"), token=_secret("MILVUS_TOKEN"))
    return {
        "storage": storage,
        "io_manager": ParquetIOManager(storage=storage),
        "corpus": CorpusResource(docs_dir=config.ingestion.docs_dir, max_file_bytes=config.ingestion.max_file_bytes,
                                 record_batch_size=config.ingestion.record_batch_size),
        "embedder": embedder,
        "milvus": milvus,
        "retrieval": RetrievalEngineResource(
            milvus=milvus, embedder=embedder, **config.pipeline.model_dump(), **config.retrieval.model_dump(),
            **{f"reranking_{name}": value for name, value in config.reranking.model_dump().items()}),
    }


def build_definitions(config: RAGConfig) -> dg.Definitions:
    return dg.Definitions(
        assets=dg.load_assets_from_modules([assets, retrieval]),
        asset_checks=dg.load_asset_checks_from_modules([checks]),
        jobs=[ingestion_job, retrieval.query_job],
        sensors=[raw_documents_sensor],
        resources=build_resources(config),
    )


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_config())
