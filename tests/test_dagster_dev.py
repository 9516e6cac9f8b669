"""`make ui` for real: `dagster dev` on this repository's workspace.yaml and dagster.yaml, driven over HTTP.

The daemon's sensor (RUNNING by default) must request an ingestion run for a new corpus folder, the queued run
must succeed, and an on-demand query launched through the webserver's GraphQL API must answer from that index.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STARTUP_S, RUN_S, STOP_GRACE_S = 180, 300, 10
DOCS = {
    "compaction.md": "# Compaction\n\nCompaction merges small segments and purges deleted rows from collections.",
    "retention.md": "# Retention\n\nRetention policies delete audit records older than the configured days.",
}
RUNS = """query { runsOrError { ... on Runs { results { runId jobName status } } } }"""
LAUNCH = """mutation($params: ExecutionParams!) { launchRun(executionParams: $params) {
  __typename ... on LaunchRunSuccess { run { runId } } ... on PythonError { message }
  ... on RunConfigValidationInvalid { errors { message } } } }"""
OUTPUT_METADATA = """query($runId: ID!) { logsForRun(runId: $runId) { ... on EventConnection { events {
  __typename ... on ExecutionStepOutputEvent { metadataEntries { label ... on MarkdownMetadataEntry { mdStr } } }
} } } }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webserver:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def graphql(self, query: str, **variables: object) -> dict:
        request = urllib.request.Request(f"{self.url}/graphql", json.dumps({"query": query, "variables": variables})
                                         .encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert "errors" not in body, body
        return body["data"]

    def runs(self) -> list[dict]:
        return self.graphql(RUNS)["runsOrError"]["results"]

    def wait_for_run(self, job: str, timeout_s: float) -> dict:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            done = [r for r in self.runs() if r["jobName"] == job and r["status"] in {"SUCCESS", "FAILURE", "CANCELED"}]
            if done:
                return done[0]
            time.sleep(2)
        raise AssertionError(f"No {job} run finished within {timeout_s} s; runs: {self.runs()}")


@pytest.fixture
def dagster_dev(tmp_path: Path) -> Iterator[Webserver]:
    home, corpus = tmp_path / "dagster_home", tmp_path / "docs"
    home.mkdir()
    corpus.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    for name, text in DOCS.items():
        (corpus / name).write_text(text)
    env = os.environ | {
        "DAGSTER_HOME": str(home), "MILVUS_URI": str(tmp_path / "milvus.db"),
        "RAG__INGESTION__DOCS_DIR": str(corpus), "RAG__INGESTION__STORAGE_DIR": str(tmp_path / "assets"),
        "RAG__RETRIEVAL__BM25_DIR": str(tmp_path / "bm25"), "RAG__RETRIEVAL__METRICS_DIR": str(tmp_path / "metrics"),
    }
    port = _free_port()
    log = (tmp_path / "dagster-dev.log").open("w")
    process = subprocess.Popen([str(Path(sys.executable).parent / "dagster"), "dev", "-w", "workspace.yaml",
                                "-h", "127.0.0.1", "-p", str(port)], cwd=REPO, env=env, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    server = Webserver(port)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, (tmp_path / "dagster-dev.log").read_text()[-3000:]
                assert time.monotonic() < deadline, "dagster dev did not answer in time"
                time.sleep(1)
        yield server
    finally:
        # dagster dev runs the webserver, the daemon and code servers in its session: stop them all.
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.slow
def test_dagster_dev_ingests_a_new_corpus_by_sensor_and_answers_a_query(dagster_dev: Webserver) -> None:
    ingestion = dagster_dev.wait_for_run("ingestion", RUN_S)
    assert ingestion["status"] == "SUCCESS", ingestion

    launched = dagster_dev.graphql(LAUNCH, params={
        "selector": {"repositoryLocationName": "rag_assets", "repositoryName": "__repository__",
                     "jobName": "query_job"},
        "runConfigData": {"ops": {"answer_query": {"config": {"query": "how are deleted rows purged?"}}}},
    })["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    query = dagster_dev.wait_for_run("query_job", RUN_S)
    assert query["status"] == "SUCCESS", query

    events = dagster_dev.graphql(OUTPUT_METADATA, runId=query["runId"])["logsForRun"]["events"]
    tables = [m["mdStr"] for e in events if e["__typename"] == "ExecutionStepOutputEvent"
              for m in e["metadataEntries"] if m["label"] == "results"]
    assert tables and tables[0].splitlines()[2].split("|")[3].strip() == "`compaction.md`", tables
