"""`make ui` for real: `dagster dev` on this repository's workspace.yaml and dagster.yaml, driven over HTTP.

The daemon's sensor (RUNNING by default) must request an ingestion run for a new corpus folder, the queued run
must succeed, and an on-demand query launched through the webserver's GraphQL API must answer from that index.
"""

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.dagster_dev import Webserver, running_dagster_dev

RUN_S = 300
DOCS = {
    "compaction.md": "# Compaction\n\nCompaction merges small segments and purges deleted rows from collections.",
    "retention.md": "# Retention\n\nRetention policies delete audit records older than the configured days.",
}
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
OUTPUT_METADATA = """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
  __typename ... on ExecutionStepOutputEvent { metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } }
} } } }"""


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[Webserver]:
    corpus = tmp_path / "docs"
    corpus.mkdir()
    for name, text in DOCS.items():
        (corpus / name).write_text(text)
    with running_dagster_dev(
        tmp_path,
        {
            "MILVUS_URI": str(tmp_path / "milvus.db"),
            "RAG__INGESTION__DOCS_DIR": str(corpus),
            "RAG__INGESTION__STORAGE_DIR": str(tmp_path / "assets"),
            "RAG__RETRIEVAL__BM25_DIR": str(tmp_path / "bm25"),
            "RAG__RETRIEVAL__METRICS_DIR": str(tmp_path / "metrics"),
        },
    ) as server:
        yield server


@pytest.mark.slow
def test_dagster_dev_ingests_a_new_corpus_by_sensor_and_answers_a_query(dagster_dev: Webserver) -> None:
    ingestion = dagster_dev.wait_for_run("ingestion", RUN_S)
    assert ingestion["status"] == "SUCCESS", ingestion

    launched = dagster_dev.graphql(
        LAUNCH,
        params={
            "selector": {
                "repositoryLocationName": "rag_assets",
                "repositoryName": "__repository__",
                "jobName": "query_job",
            },
            "runConfigData": {"ops": {"answer_query": {"config": {"query": "how are deleted rows purged?"}}}},
        },
    )["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    query = dagster_dev.wait_for_run("query_job", RUN_S)
    assert query["status"] == "SUCCESS", query

    events = dagster_dev.graphql(OUTPUT_METADATA, runId=query["runId"])["logsForRun"]["events"]
    tables = [
        m["mdStr"]
        for e in events
        if e["__typename"] == "ExecutionStepOutputEvent"
        for m in e["metadataEntries"]
        if m["label"] == "results"
    ]
    assert tables and tables[0].splitlines()[2].split("|")[3].strip() == "`compaction.md`", tables
