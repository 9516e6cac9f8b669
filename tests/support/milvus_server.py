"""Runs the real Milvus standalone server (from the ``milvus`` package) on loopback for integration tests."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import psutil
import yaml

# Every role advertises loopback: by default each picks the first non-loopback address, and traffic between
# them would leave loopback.
ROLES = ("rootCoord", "proxy", "queryCoord", "queryNode", "indexNode", "dataCoord", "dataNode")
START_TIMEOUT_S = 180
STOP_GRACE_S = 5


@dataclass
class MilvusServer:
    process: subprocess.Popen
    data_dir: Path
    port: int

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGTERM the launcher and every process under it, then SIGKILL what is left after a short grace.

        The launcher starts ``milvus run standalone`` (and etcd) as children that may ignore SIGTERM and would
        otherwise outlive it and keep the ports.
        """
        try:
            root = psutil.Process(self.process.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.terminate()
        _, alive = psutil.wait_procs(tree, timeout=STOP_GRACE_S)
        for process in alive:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(alive, timeout=30)


def health_url(launcher: subprocess.Popen) -> str | None:
    """The launcher moves the health port off 9091 when that is taken; the server's METRICS_PORT says where."""
    try:
        for child in psutil.Process(launcher.pid).children(recursive=True):
            if "standalone" in child.cmdline():
                return f"http://127.0.0.1:{child.environ().get('METRICS_PORT', '9091')}/healthz"
    except psutil.Error:
        return None
    return None


def healthy(url: str | None) -> bool:
    if url is None:
        return False
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200 and b"OK" in response.read()
    except OSError:
        return False


def grpc_port(data_dir: Path) -> int | None:
    """The launcher also moves the gRPC port off 19530 when that is taken; its written config says where."""
    config = data_dir / "configs" / "milvus.yaml"
    if not config.is_file():
        return None
    return int(yaml.safe_load(config.read_text(encoding="utf-8"))["proxy"]["port"])


def accepts_connections(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def embedded_etcd(data_dir: Path) -> tuple[int, dict[str, str]]:
    """The embedded etcd's client port and the environment that points it at its own ports.

    Its peer port is fixed at 2380 otherwise, so a second server (another module's, another developer's) could not
    start while one runs. Milvus reads ETCD_CONFIG_PATH, an etcd embed config, from the environment.
    """
    client, peer = free_port(), free_port()
    config = data_dir / "embedEtcd.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "listen-client-urls": f"http://127.0.0.1:{client}",
                "advertise-client-urls": f"http://127.0.0.1:{client}",
                "listen-peer-urls": f"http://127.0.0.1:{peer}",
                "initial-advertise-peer-urls": f"http://127.0.0.1:{peer}",
                "initial-cluster": f"default=http://127.0.0.1:{peer}",
            }
        ),
        encoding="utf-8",
    )
    return client, {**os.environ, "ETCD_CONFIG_PATH": str(config)}


def start_server(data_dir: Path, settings: Mapping[str, str] | None = None) -> MilvusServer:
    """``settings`` are dotted keys of the server's milvus.yaml (``common.security.authorizationEnabled``,
    ``tls.serverPemPath``, ...); the launcher writes them into ``DATA/configs/milvus.yaml`` over the template's."""
    beside_python = Path(sys.executable).parent / "milvus-server"
    binary = str(beside_python) if beside_python.exists() else shutil.which("milvus-server")
    if binary is None:
        raise RuntimeError("milvus-server not found: install the dev extra (pip install -e '.[dev]').")
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime
    loopback = {f"{role}.ip": "127.0.0.1" for role in ROLES}
    extra = [
        arg for key, value in {**loopback, **(settings or {})}.items() for arg in ("--extra-config", f"{key}={value}")
    ]
    etcd_port, environment = embedded_etcd(data_dir)
    process = subprocess.Popen(
        [binary, "--data", str(data_dir), "--etcd-port", str(etcd_port), *extra],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        env=environment,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"milvus-server exited with {process.returncode}; see {data_dir / 'server.log'}")
        port = grpc_port(data_dir)
        if port and healthy(health_url(process)) and accepts_connections(port):
            return MilvusServer(process=process, data_dir=data_dir, port=port)
        time.sleep(1)
    MilvusServer(process=process, data_dir=data_dir, port=0).stop()
    raise RuntimeError(f"milvus-server was not healthy after {START_TIMEOUT_S}s; see {data_dir / 'server.log'}")


@contextlib.contextmanager
def running_server(data_dir: Path, settings: Mapping[str, str] | None = None) -> Iterator[MilvusServer]:
    server = start_server(data_dir, settings)
    try:
        yield server
    finally:
        server.stop()
