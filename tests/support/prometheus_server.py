"""Runs Debian's ``prometheus`` and ``prometheus-pushgateway`` (``apt-get install prometheus
prometheus-pushgateway``; ``make test`` installs them) on free loopback ports with their storage under a folder the
test owns, waits until each answers ``/-/ready``, and stops each by its pid (SIGKILL after a short grace)."""

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

START_TIMEOUT_S = 30
STOP_GRACE_S = 5


@dataclass(frozen=True)
class PrometheusServer:
    url: str
    pid: int
    config_file: Path

    def query(self, promql: str) -> list[dict[str, Any]]:
        """The instant vector (or scalar, as one sample) ``promql`` evaluates to now, through ``/api/v1/query``.

        An expression Prometheus refuses raises with its error message, so a broken panel names itself."""
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                answer = json.load(response)
        except urllib.error.HTTPError as error:
            raise AssertionError(f"Prometheus refused {promql!r}: {error.read().decode()}") from None
        data = answer["data"]
        return data["result"] if data["resultType"] in ("vector", "matrix") else [{"value": data["result"]}]

    def wait_for(
        self, promql: str, accept: Callable[[list[dict[str, Any]]], bool], *, timeout_s: float = 30
    ) -> list[dict[str, Any]]:
        """Polls ``promql`` until ``accept`` takes its result (scrapes land within an interval); the last result."""
        deadline = time.monotonic() + timeout_s
        while True:
            result = self.query(promql)
            if accept(result) or time.monotonic() > deadline:
                return result
            time.sleep(0.5)

    def rules(self, *, accept: Callable[[list[dict[str, Any]]], bool], timeout_s: float = 30) -> list[dict[str, Any]]:
        """The rule groups (``/api/v1/rules``) once ``accept`` takes them, or at the timeout."""
        deadline = time.monotonic() + timeout_s
        while True:
            with urllib.request.urlopen(f"{self.url}/api/v1/rules", timeout=10) as response:
                groups = json.load(response)["data"]["groups"]
            if accept(groups) or time.monotonic() > deadline:
                return groups
            time.sleep(0.5)


@dataclass(frozen=True)
class Pushgateway:
    url: str
    pid: int

    def metrics(self) -> str:
        with urllib.request.urlopen(f"{self.url}/metrics", timeout=10) as response:
            return response.read().decode()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def scrape_config(scrape_configs: list[dict[str, Any]], *, interval_s: float = 1.0) -> dict[str, Any]:
    """A prometheus.yml that scrapes ``scrape_configs`` every ``interval_s`` (tests cannot wait the default minute)."""
    return {
        "global": {"scrape_interval": f"{interval_s:g}s", "evaluation_interval": f"{interval_s:g}s"},
        "scrape_configs": scrape_configs,
    }


@contextlib.contextmanager
def running_prometheus(folder: Path, config: dict[str, Any] | Path) -> Iterator[PrometheusServer]:
    """Prometheus with ``config`` (a dict to write, or an existing prometheus.yml used as it is), TSDB under
    ``folder``."""
    binary = _binary("prometheus")
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(config, Path):
        config_file = config
    else:
        config_file = folder / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    port = free_port()
    log = folder / "prometheus.log"
    with log.open("wb") as output:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={folder / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    with _stopping(process):
        _wait_ready(url, process, log)
        yield PrometheusServer(url, process.pid, config_file)


@contextlib.contextmanager
def running_pushgateway(folder: Path) -> Iterator[Pushgateway]:
    """A Pushgateway that keeps pushed metrics in memory only (no persistence file), as a test wants."""
    binary = _binary("prometheus-pushgateway")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = folder / "pushgateway.log"
    with log.open("wb") as output:
        # Debian's build persists to /var/lib/prometheus/pushgateway.data by default: an empty file means memory only.
        process = subprocess.Popen(
            [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    with _stopping(process):
        _wait_ready(url, process, log)
        yield Pushgateway(url, process.pid)


def _binary(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(
            f"{name} is not installed: run `apt-get update && apt-get install -y prometheus "
            "prometheus-pushgateway` (make test does)"
        )
    return found


@contextlib.contextmanager
def _stopping(process: subprocess.Popen) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()


def _wait_ready(url: str, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"{process.args[0]} exited with {process.returncode} before it was ready; its log "
                f"({log}):\n{log.read_text()[-2000:]}"
            )
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                if response.status == 200:
                    return
        time.sleep(0.2)
    raise RuntimeError(
        f"{process.args[0]} was not ready on {url} within {START_TIMEOUT_S} s; its log ({log}):\n"
        f"{log.read_text()[-2000:]}"
    )
