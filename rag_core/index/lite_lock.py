"""One process at a time on a Milvus Lite file, with a wait and a message that names the holder.

Milvus Lite is a single-process store: a second process opening the same file fails deep inside pymilvus with
"Open local milvus failed". An advisory lock next to the file lets a second process wait its turn for
``milvus.lock_timeout_s`` and then say who holds the file, instead of printing a traceback. The lock is held
until the process exits: Milvus Lite keeps the file open for the life of the process, even after
``MilvusClient.close()``.

The lock file is readable by anyone who can list the folder, and a command line can carry personal data
(``rag query records of john.doe@example.com``): it records the holder's pid and command name only, and the wait
message repeats nothing it cannot parse as exactly that.
"""

import fcntl
import os
import re
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

POLL_S = 0.2
# A subcommand (``query``, ``ingest``, Dagster's ``api``) is one short lowercase word; anything else is an argument.
SUBCOMMAND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
HOLDER = re.compile(r"pid (\d+) \(([\w.-]{1,64}(?: [a-z][a-z0-9_-]{0,31})?)\) since (\d\d:\d\d:\d\d)")


class IndexLockedError(RuntimeError):
    """Another process holds the Milvus Lite file; the message says which one and what to do."""


_held: dict[Path, int] = {}  # lock file -> its descriptor, kept open (and locked) until the process exits
_guard = threading.Lock()


def lock_path(db_file: Path) -> Path:
    return db_file.with_name(f".{db_file.name}.lock")


def acquire(db_file: Path, timeout_s: float) -> None:
    """Hold the lock for ``db_file`` from now on (again: nothing to do); wait up to ``timeout_s`` for another one."""
    path = lock_path(db_file)
    with _guard:
        if path in _held:
            return
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = _holder(fd)
                    os.close(fd)
                    raise IndexLockedError(
                        f"Milvus Lite file {db_file} is in use by {holder} (Milvus Lite allows one process at a "
                        f"time); waited {timeout_s:g}s. Wait for it to finish or stop it, raise "
                        "milvus.lock_timeout_s, or use a Milvus server for concurrent access."
                    ) from None
                time.sleep(POLL_S)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} ({command_name(sys.argv)}) since {time.strftime('%H:%M:%S')}".encode())
        _held[path] = fd


def command_name(argv: Sequence[str]) -> str:
    """The program and its subcommand (``rag query``), never the arguments after them."""
    program = re.sub(r"[^\w.-]", "_", Path(argv[0] if argv else "").name)[:64] or "python"
    return f"{program} {argv[1]}" if len(argv) > 1 and SUBCOMMAND.fullmatch(argv[1]) else program


def holder(db_file: Path) -> str | None:
    """What another process holding the lock on ``db_file`` wrote (pid, command name, since when); None when no other
    process holds it. Asks without waiting and takes nothing: a shared lock tried and dropped at once."""
    path = lock_path(db_file)
    if path in _held or not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return _holder(fd)
    finally:
        os.close(fd)  # closing drops the shared lock, if it was taken
    return None


def _holder(fd: int) -> str:
    """``pid N (command) since HH:MM:SS`` as the holder wrote it; anything else (a file an older release wrote
    with the whole command line) is not repeated."""
    os.lseek(fd, 0, os.SEEK_SET)
    match = HOLDER.fullmatch(os.read(fd, 512).decode(errors="replace").strip())
    return match.group(0) if match else "another process"
