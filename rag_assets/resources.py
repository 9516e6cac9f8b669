"""Dagster resources, all derived from one ``SettingsResource`` that mirrors rag_core's config tree.

The config classes here are generated from ``rag_core.config`` (field types, Literal choices as launchpad enums,
defaults, constraints, descriptions), so a setting is declared once and the CLI and Dagster can never disagree.
Secrets are ``dg.EnvVar`` references, or read from the environment at run time when left unset, never values.
"""

import json
import os
from functools import lru_cache
from pathlib import Path
from types import UnionType
from typing import Any, Optional, Union, get_args, get_origin

import dagster as dg
from pydantic import BaseModel, Field, SecretStr, create_model

from rag_core.config import SECRET_VARIABLES, AccessConfig, RAGConfig, secrets_from_environment
from rag_core.index.manager import MilvusIndexManager
from rag_core.ingest.chunking import TokenChunker
from rag_core.ingest.parquet_store import ParquetStore
from rag_core.lifecycle.context import RagContext
from rag_core.models.embedder import Embedder
from rag_core.retrieval.engine import RetrievalEngine
from rag_core.security.labels import AccessLabels


def _dagster_config(section: type[BaseModel]) -> type[dg.Config]:
    """A ``dg.Config`` with the section's fields; a secret becomes an optional string (an ``EnvVar`` in practice)."""
    fields = {}
    for name, info in section.model_fields.items():
        if info.annotation is SecretStr:
            fields[name] = (
                Optional[str],
                Field(default=None, description="An EnvVar; unset: read from the environment at run time."),
            )
        else:
            fields[name] = (_dagster_type(info.annotation), info)
    return create_model(section.__name__.replace("Config", "Settings"), __base__=dg.Config, **fields)


def _dagster_type(annotation: object) -> object:
    """Dagster reads plain types and its own ``Config`` classes: a list of rag_core models becomes a list of the
    matching generated ``Config``, and a union Dagster cannot express (a weight or ``"auto"``) takes any value,
    which rag_core's own config then validates."""
    if get_origin(annotation) in (Union, UnionType) and type(None) not in get_args(annotation):
        return Any
    if get_origin(annotation) is list:
        (item,) = get_args(annotation)
        if isinstance(item, type) and issubclass(item, BaseModel):
            return list[_dagster_config(item)]
    return annotation


# One Dagster config class per section of rag_core's config tree, named after it (MilvusSettings, ...).
SECTION_SETTINGS = {name: _dagster_config(info.annotation) for name, info in RAGConfig.model_fields.items()}


class _Settings(dg.ConfigurableResource):
    """The whole configuration, editable in the launchpad section by section and validated by rag_core."""

    @classmethod
    def from_config(cls, config: RAGConfig) -> "SettingsResource":
        sections = config.model_dump(exclude={"milvus": {"password", "token"}})
        secrets = {field: _env_reference(variables) for field, variables in SECRET_VARIABLES.items()}
        sections["milvus"] |= {k: v for k, v in secrets.items() if v is not None}
        return cls(**{name: SECTION_SETTINGS[name](**values) for name, values in sections.items()})

    def rag_config(self) -> RAGConfig:
        return self.context().config

    def context(self) -> RagContext:
        """The composition root of this configuration: validated once, one model and one Milvus connection per
        process however many assets, checks and sensors ask (the launchpad's edits make a new one)."""
        raw = self.model_dump()
        milvus = raw["milvus"]
        for field, value in secrets_from_environment(os.environ).items():
            milvus[field] = milvus.get(field) or value
        return _context(json.dumps({k: {f: v for f, v in s.items() if v is not None} for k, s in raw.items()}))


@lru_cache(maxsize=4)
def _context(sections_json: str) -> RagContext:
    return RagContext(RAGConfig.model_validate_json(sections_json))


SettingsResource = create_model(
    "SettingsResource",
    __base__=_Settings,
    **{name: (settings, settings()) for name, settings in SECTION_SETTINGS.items()},
)


def _env_reference(variables: tuple[str, ...]) -> dg.EnvVar | None:
    """The variable that holds the secret now, as a reference resolved at run time."""
    return next((dg.EnvVar(v) for v in variables if os.environ.get(v)), None)


class EmbedderResource(dg.ConfigurableResource):
    settings: dg.ResourceDependency[SettingsResource]

    def embedder(self) -> Embedder:
        return self.settings.context().embedder

    def chunker(self) -> TokenChunker:
        return TokenChunker.configured(self.settings.rag_config().chunking, self.embedder())


class MilvusResource(dg.ConfigurableResource):
    settings: dg.ResourceDependency[SettingsResource]

    @property
    def collection(self) -> str:
        return self.settings.rag_config().milvus.collection

    @property
    def uri(self) -> str:
        return self.settings.rag_config().milvus.uri

    def manager(self) -> MilvusIndexManager:
        return self.settings.context().manager


class CorpusResource(dg.ConfigurableResource):
    """Where raw documents come from and how they are read."""

    settings: dg.ResourceDependency[SettingsResource]

    @property
    def path(self) -> Path:
        return Path(self.settings.rag_config().ingestion.docs_dir)

    @property
    def max_file_bytes(self) -> int:
        return self.settings.rag_config().ingestion.max_file_bytes

    @property
    def record_batch_size(self) -> int:
        return self.settings.rag_config().ingestion.record_batch_size

    @property
    def access(self) -> AccessConfig:
        return self.settings.rag_config().access

    @property
    def labels(self) -> AccessLabels:
        """The corpus's access labels (ingestion.groups, ingestion.tenant), checked like a command line's."""
        ingestion = self.settings.rag_config().ingestion
        return AccessLabels.checked(ingestion.groups, ingestion.tenant, self.access, where="ingestion.groups/tenant")


class AssetStorage(dg.ConfigurableResource):
    """The folder of Parquet asset tables; assets read their own previous table from it to reuse work."""

    settings: dg.ResourceDependency[SettingsResource]

    @property
    def base_dir(self) -> str:
        return self.settings.rag_config().ingestion.storage_dir

    def store(self) -> ParquetStore:
        return ParquetStore(self.base_dir)


class RetrievalEngineResource(dg.ConfigurableResource):
    """The hybrid retrieval engine for on-demand queries, over the same Milvus and model as the ingestion."""

    settings: dg.ResourceDependency[SettingsResource]

    def rag_config(self) -> RAGConfig:
        return self.settings.rag_config()

    def context(self) -> RagContext:
        return self.settings.context()

    def engine(self) -> RetrievalEngine:
        """One engine (model, caches, latency window) per process and configuration."""
        return self.context().engine()
