"""`rag serve` as a real process on a free loopback port, for tests that need signals, workers or a scraper."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from rag_core.config import RAGConfig
from tests.support.paths import ONNX_CACHE_VARIABLE, REPO

STARTUP_S = 180  # each worker loads the model and builds the client-side index before /ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class ServiceProcess:
    process: subprocess.Popen
    url: str
    log: Path

    def request(
        self, method: str, path: str, body: dict | None = None, *, timeout: float = 60, token: str | None = None
    ) -> tuple[int, dict | str]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json", "Connection": "close"} | (
            {"Authorization": f"Bearer {token}"} if token else {}
        )
        request = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=timeout) as response:
                status, text = response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            status, text = error.code, error.read().decode()
        try:
            return status, json.loads(text)
        except json.JSONDecodeError:
            return status, text

    def query(self, text: str, **fields: object) -> tuple[int, dict | str]:
        return self.request("POST", "/query", {"query": text, **fields})

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")


def write_config(config: RAGConfig, path: Path) -> Path:
    path.write_text(json.dumps(config.model_dump(mode="json")), encoding="utf-8")  # JSON is YAML
    return path


def ingest_in_subprocess(config: RAGConfig, docs: dict[str, str], folder: Path) -> None:
    """Milvus Lite opens in one process at a time, and the test process would hold it until it exits: a Lite index
    the service will read is built by ``rag ingest`` in a process of its own."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, text in docs.items():
        (corpus / f"{name}.txt").write_text(text, encoding="utf-8")
    config_file = write_config(config, folder / "ingest-config.yaml")
    done = subprocess.run(
        [sys.executable, "-m", "rag_core.cli", "--config", str(config_file), "ingest", str(corpus)],
        cwd=folder,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _environment() -> dict[str, str]:
    """Only the config file speaks: nothing from the caller's RAG_/MILVUS_ variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG_", "RAG__", "MILVUS_", "PROMETHEUS_"))}
    return env | {"PYTHONPATH": str(REPO), ONNX_CACHE_VARIABLE: os.environ[ONNX_CACHE_VARIABLE]}


@contextmanager
def running_service(
    config: RAGConfig, folder: Path, *, workers: int = 1, port: int | None = None, wait_ready: bool = True
) -> Iterator[ServiceProcess]:
    port = port or free_port()
    folder.mkdir(parents=True, exist_ok=True)
    config_file = write_config(config, folder / "serve-config.yaml")
    log = folder / "serve.log"
    with log.open("w") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "rag_core.cli",
                "--config",
                str(config_file),
                "serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
            ],
            cwd=folder,
            env=_environment(),
            stdout=sink,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    service = ServiceProcess(process, f"http://127.0.0.1:{port}", log)
    try:
        _wait(service, "/ready" if wait_ready else "/health")
        yield service
    finally:
        stop(process)


def _wait(service: ServiceProcess, path: str) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            raise AssertionError(f"rag serve exited with {service.process.returncode}:\n{service.output()}")
        try:
            if service.request("GET", path, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"rag serve did not answer {path} within {STARTUP_S} s:\n{service.output()}")


def stop(process: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM (the service drains), then SIGKILL for the whole process group: workers never outlive a test."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(grace_s)
        except subprocess.TimeoutExpired:
            pass
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait(10)
