"""Retrieval in Dagster: the on-demand query job and the evaluation asset, run in process."""

import json
from pathlib import Path

import dagster as dg

from rag_assets.definitions import build_definitions
from rag_assets.defs.retrieval.assets import retrieval_evaluation
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.dagster_runs import run_ingestion
from tests.unit.test_cli import write_beir


def test_query_job_shows_ranked_chunks_as_markdown(tmp_path: Path, embedder, collection: str) -> None:
    write_corpus(tmp_path / "docs")
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        collection,
        retrieval={"bm25_dir": str(tmp_path / "bm25"), "metrics_dir": str(tmp_path / "metrics")},
    )
    ingestion = run_ingestion(config)
    assert ingestion.metadata["bm25_index"]["chunks"] == ingestion.metadata["chunks"]["chunks"]
    assert ingestion.metadata["bm25_index"]["used_by_queries"] is True

    definitions = build_definitions(config)
    result = definitions.resolve_job_def("query_job").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"answer_query": {"config": {"query": "what do sensors watch", "top_k": 2}}}},
    )
    assert result.success
    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT")
    metadata = {k: v.value for k, v in output.step_output_data.metadata.items()}
    table = metadata["results"]
    assert table.startswith("| # | score | document | text |") and "`dagster.md`" in table.splitlines()[2]
    assert len(table.splitlines()) == 4 and metadata["retrieval_ms"] > 0


def test_retrieval_evaluation_asset_records_plottable_quality(tmp_path: Path, embedder) -> None:
    dataset = write_beir(tmp_path / "tiny")
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        retrieval={"bm25_dir": str(tmp_path / "bm25"), "metrics_dir": str(tmp_path / "metrics")},
    )
    definitions = build_definitions(config)
    result = dg.materialize(
        [retrieval_evaluation],
        resources=definitions.resources,
        instance=dg.DagsterInstance.ephemeral(),
        run_config={"ops": {"retrieval_evaluation": {"config": {"dataset": str(dataset)}}}},
        selection=["retrieval_evaluation"],
    )
    assert result.success
    materialization = result.asset_materializations_for_node("retrieval_evaluation")[0]
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["ndcg_at_10"] == 1.0 and metadata["recall_at_100"] == 1.0 and metadata["queries"] == 3
    assert isinstance(metadata["latency_p95_ms"], float)
    json.dumps(metadata)  # plain values, plottable in the UI
