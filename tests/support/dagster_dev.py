"""`dagster dev` on this repository's workspace.yaml and dagster.yaml, started for one test and driven over HTTP.

Shared by the GraphQL end-to-end test (test_dagster_dev.py) and the browser test (test_dagster_ui.py): both need
the webserver, the daemon and the code server up on a free loopback port with everything under the test's tmp dir,
and all of them stopped afterwards.
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
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from tests.support.paths import REPO

STARTUP_S, STOP_GRACE_S = 180, 10
RUNS = """query { runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Webserver:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}"

    def graphql(self, query: str, **variables: object) -> dict:
        request = urllib.request.Request(
            f"{self.url}/graphql",
            json.dumps({"query": query, "variables": variables}).encode(),
            headers={"Content-Type": "application/json"},
        )
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


@contextmanager
def running_dagster_dev(tmp_path: Path, env: Mapping[str, str]) -> Iterator[Webserver]:
    """`dagster dev` with DAGSTER_HOME under ``tmp_path`` (a copy of the repo's dagster.yaml) and ``env`` added to
    this process's environment; its log is ``tmp_path/dagster-dev.log``."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    log_path = tmp_path / "dagster-dev.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "dagster"),
            "dev",
            "-w",
            "workspace.yaml",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO,
        env=os.environ | {"DAGSTER_HOME": str(home), **env},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server = Webserver(port)
    try:
        deadline = time.monotonic() + STARTUP_S
        while True:
            try:
                with urllib.request.urlopen(f"{server.url}/server_info", timeout=5):
                    break
            except (urllib.error.URLError, ConnectionError):
                assert process.poll() is None, log_path.read_text()[-3000:]
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
