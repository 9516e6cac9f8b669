"""Runs the real Milvus standalone server (from the ``milvus`` package) on loopback for integration tests."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

HEALTH_URL = "http://127.0.0.1:9091/healthz"
GRPC_URI = "http://127.0.0.1:19530"
START_TIMEOUT_S = 180
STOP_GRACE_S = 5


@dataclass
class MilvusServer:
    process: subprocess.Popen
    data_dir: Path
    uri: str = GRPC_URI

    def stop(self) -> None:
        """SIGTERM, then SIGKILL the whole process group after a short grace: the server may ignore SIGTERM."""
        if self.process.poll() is not None:
            return
        group = os.getpgid(self.process.pid)
        os.killpg(group, signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            os.killpg(group, signal.SIGKILL)
            self.process.wait(30)


def healthy() -> bool:
    try:
        with urllib.request.urlopen(HEALTH_URL, timeout=2) as response:
            return response.status == 200 and b"OK" in response.read()
    except OSError:
        return False


def start_server(data_dir: Path) -> MilvusServer:
    beside_python = Path(sys.executable).parent / "milvus-server"
    binary = str(beside_python) if beside_python.exists() else shutil.which("milvus-server")
    if binary is None:
        raise RuntimeError("milvus-server not found: install the dev extra (pip install -e '.[dev]').")
    if healthy():
        raise RuntimeError(f"Something already answers {HEALTH_URL}; stop that Milvus before running the tests.")
    log = open(data_dir / "server.log", "wb")  # noqa: SIM115 - kept open for the server's lifetime
    process = subprocess.Popen([binary, "--data", str(data_dir)], stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    server = MilvusServer(process=process, data_dir=data_dir)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"milvus-server exited with {process.returncode}; see {data_dir / 'server.log'}")
        if healthy():
            return server
        time.sleep(1)
    server.stop()
    raise RuntimeError(f"milvus-server was not healthy after {START_TIMEOUT_S}s; see {data_dir / 'server.log'}")
