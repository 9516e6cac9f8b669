"""Runs Debian's PostgreSQL (``apt-get install postgresql``) on a free loopback port in a temporary folder, so
the audit store's tests run on the database production uses. As root it runs as the ``postgres`` user (PostgreSQL
refuses root); it is stopped by the postmaster's pid."""

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg2

START_TIMEOUT_S = 60


@dataclass(frozen=True)
class PostgresServer:
    port: int
    pid: int

    def database_url(self, name: str) -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{name}"

    def new_database(self) -> str:
        """A fresh, empty database (so tests sharing the server never see each other's chain); its URL."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        with contextlib.closing(
            psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres")
        ) as conn:
            conn.autocommit = True
            conn.cursor().execute(f"CREATE DATABASE {name}")
        return self.database_url(name)


def _binaries() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError(
            "PostgreSQL is not installed: run `apt-get update && apt-get install -y postgresql` (make test does)"
        )
    return Path(found[-1]).parent


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@contextlib.contextmanager
def running_postgres(*, fsync: bool = False) -> Iterator[PostgresServer]:
    """A server in a fresh folder of its own under the system temp dir (pytest's tmp dirs are private to root,
    which the postgres user cannot enter), removed afterwards. ``fsync`` off for tests, on for timings."""
    bin_dir = _binaries()
    folder = Path(tempfile.mkdtemp(prefix="audit-postgres-"))
    data = folder / "data"
    data.mkdir()
    if os.geteuid() == 0:
        for path in (folder, data):
            os.chown(path, *_postgres_ids())
    try:
        initdb = subprocess.run(
            _as_postgres(
                [str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]
            ),
            capture_output=True,
            text=True,
        )
        if initdb.returncode:
            raise RuntimeError(f"initdb failed in {data}: {initdb.stderr.strip()}")
        port = _free_port()
        process = subprocess.Popen(
            _as_postgres(
                [
                    str(bin_dir / "postgres"),
                    "-D",
                    str(data),
                    "-p",
                    str(port),
                    "-k",
                    str(folder),
                    "-c",
                    "listen_addresses=127.0.0.1",
                    "-c",
                    f"fsync={'on' if fsync else 'off'}",
                    "-c",
                    "max_connections=50",
                ]
            ),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        pid = _wait_ready(data / "postmaster.pid", port, process)
        try:
            yield PostgresServer(port, pid)
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGINT)  # fast shutdown
            process.wait(timeout=30)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _postgres_ids() -> tuple[int, int]:
    entry = pwd.getpwnam("postgres")
    return entry.pw_uid, entry.pw_gid


def _wait_ready(pid_file: Path, port: int, process: subprocess.Popen) -> int:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"PostgreSQL exited with {process.returncode} before accepting connections")
        with contextlib.suppress(OSError, ValueError, psycopg2.OperationalError):
            pid = int(pid_file.read_text().splitlines()[0])
            psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="postgres").close()
            return pid
        time.sleep(0.2)
    raise RuntimeError(f"PostgreSQL did not accept connections on 127.0.0.1:{port} within {START_TIMEOUT_S} s")
