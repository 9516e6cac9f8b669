"""The code location loads as Dagster sees it, and the sensor asks for runs exactly when the corpus changes."""

import os
from pathlib import Path

import dagster as dg
import pytest

from rag_assets.definitions import build_definitions, build_resources, defs
from rag_assets.defs.ingestion.sensors import raw_documents_sensor
from rag_assets.resources import CorpusResource, SettingsResource
from rag_core.config import RAGConfig


def test_code_location_loads_with_the_chain_checks_job_and_sensor() -> None:
    definitions = defs()
    dg.Definitions.validate_loadable(definitions)
    keys = {k.to_user_string() for k in definitions.resolve_all_asset_keys()}
    chain = {"raw_documents", "chunks", "embeddings", "semantic_index", "bm25_index"}
    operations = {"reindex_candidate", "serving_version", "drift_report", "performance_report", "compliance_report"}
    assert keys == chain | operations | {"retrieval_evaluation"}
    graph = definitions.resolve_asset_graph()
    assert graph.get(dg.AssetKey("semantic_index")).parent_keys == {dg.AssetKey("embeddings")}
    assert graph.get(dg.AssetKey("chunks")).parent_keys == {dg.AssetKey("raw_documents")}
    checks = {k.name for k in graph.asset_check_keys}
    assert checks == {
        "chunk_ids_unique",
        "no_empty_chunks",
        "vectors_have_model_dimension_and_unit_norm",
        "milvus_rows_match_embeddings",
        "quality_gate",
    }
    ingestion = definitions.resolve_job_def("ingestion")
    assert {k.to_user_string() for k in ingestion.asset_layer.executable_asset_keys} == chain
    assert definitions.resolve_job_def("query_job") is not None
    sensor = definitions.resolve_sensor_def("raw_documents_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_secrets_are_environment_references(monkeypatch) -> None:
    monkeypatch.setenv("MILVUS_TOKEN", "secret-token")
    settings = build_definitions(RAGConfig()).resources["settings"]
    assert isinstance(settings.milvus.token, dg.EnvVar) and settings.milvus.token.env_var_name == "MILVUS_TOKEN"
    assert settings.process_config_and_initialize().rag_config().milvus.token.get_secret_value() == "secret-token"


def test_a_secret_set_after_the_definitions_loaded_reaches_the_run(monkeypatch) -> None:
    """RAG__MILVUS__TOKEN works in Dagster as in the CLI, even when set only in the run's environment."""
    monkeypatch.delenv("MILVUS_TOKEN", raising=False)
    settings = build_definitions(RAGConfig()).resources["settings"]
    assert settings.milvus.token is None
    monkeypatch.setenv("RAG__MILVUS__TOKEN", "late-token")
    assert settings.process_config_and_initialize().rag_config().milvus.token.get_secret_value() == "late-token"


def test_the_launchpad_refuses_a_value_outside_a_settings_choices(tmp_path: Path) -> None:
    @dg.asset
    def probe(settings: SettingsResource) -> str:
        return settings.rag_config().milvus.consistency_level

    run_config = {
        "resources": {
            "settings": {"config": {"milvus": {"uri": str(tmp_path / "x.db"), "consistency_level": "Sometimes"}}}
        }
    }
    with pytest.raises(dg.DagsterInvalidConfigError, match="consistency_level"):
        dg.materialize([probe], resources={"settings": SettingsResource.configure_at_launch()}, run_config=run_config)
    run_config["resources"]["settings"]["config"]["milvus"]["consistency_level"] = "Strong"
    result = dg.materialize(
        [probe], resources={"settings": SettingsResource.configure_at_launch()}, run_config=run_config
    )
    assert result.output_for_node("probe") == "Strong"


def evaluate(folder: Path, cursor: str | None) -> dg.SensorResult:
    settings = SettingsResource.from_config(RAGConfig.model_validate({"ingestion": {"docs_dir": str(folder)}}))
    with dg.build_sensor_context(cursor=cursor, resources={"corpus": CorpusResource(settings=settings)}) as context:
        return raw_documents_sensor(context)


def test_sensor_requests_a_run_on_added_changed_and_removed_files(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nfirst")
    first = evaluate(docs, None)
    assert len(first.run_requests) == 1
    cursor = first.cursor
    assert not evaluate(docs, cursor).run_requests

    (docs / "b.txt").write_text("added")
    added = evaluate(docs, cursor)
    assert len(added.run_requests) == 1 and added.cursor != cursor

    (docs / "a.md").write_text("# A\n\nchanged")
    os.utime(docs / "a.md", ns=(1, 1))
    changed = evaluate(docs, added.cursor)
    assert len(changed.run_requests) == 1

    (docs / "b.txt").unlink()
    removed = evaluate(docs, changed.cursor)
    assert len(removed.run_requests) == 1
    assert removed.run_requests[0].run_key == removed.cursor


def test_sensor_skips_with_a_reason_when_the_folder_is_missing(tmp_path: Path) -> None:
    result = evaluate(tmp_path / "nowhere", None)
    assert not result.run_requests and "does not exist" in result.skip_reason.skip_message


def test_resources_carry_every_setting_of_the_config(tmp_path: Path) -> None:
    """A setting the resources dropped would make Dagster runs differ silently from `rag` and the Python API."""
    config = RAGConfig.model_validate(
        {
            "milvus": {
                "uri": str(tmp_path / "x.db"),
                "collection": "docs",
                "consistency_level": "Strong",
                "retry_attempts": 7,
                "server_name": "milvus.internal",
                "num_shards": 3,
            },
            "index": {"M": 24, "ef": 96, "bm25_k1": 1.1, "bm25_b": 0.6},
            "embedding": {
                "query_prompt": "query: ",
                "document_prompt": "passage: ",
                "query_precision": "float32",
                "batch_size": 8,
                "normalize": False,
            },
            "chunking": {"chunk_size": 128, "chunk_overlap": 16},
            "pipeline": {"hybrid_alpha": 0.3, "top_k": 9},
            "retrieval": {"normalization": "minmax", "candidates": 50, "document_level": True, "cache_size": 0},
            "reranking": {"method": "cross_encoder", "model": "/models/ce", "batch_size": 4, "max_length": 256},
            "security": {"tokens": [{"name": "ci", "role": "reader", "token_sha256": "ab" * 32}]},
        }
    )
    settings = build_resources(config)["settings"].process_config_and_initialize()
    assert settings.rag_config() == config
