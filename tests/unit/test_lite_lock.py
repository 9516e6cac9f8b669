"""The Milvus Lite lock file names its holder by pid and command name only: a command line can carry personal data."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from rag_core.index import lite_lock
from rag_core.index.lite_lock import IndexLockedError

PII_ARGV = ["/opt/venv/bin/rag", "query", "records", "of", "john.doe@example.com", "ssn", "123-45-6789"]
PII = ("john.doe", "example.com", "123-45-6789", "records of")
HOLD = "import sys, time; from pathlib import Path; {hold}; print('held', flush=True); time.sleep(30)"


@contextmanager
def holder(code: str, db_file: Path, argv: list[str]) -> Iterator[int]:
    """Another process that runs ``code`` (taking the lock) with ``argv`` as its command line; yields its pid."""
    script = "import sys; sys.argv = sys.argv[2:]; " + HOLD.format(hold=code)
    process = subprocess.Popen([sys.executable, "-c", script, str(db_file), *argv], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "held"
        yield process.pid
    finally:
        process.kill()
        process.wait()


def test_the_lock_file_and_the_wait_message_name_the_command_not_its_arguments(tmp_path: Path) -> None:
    db_file = tmp_path / "milvus.db"
    code = f"from rag_core.index import lite_lock; lite_lock.acquire(Path({str(db_file)!r}), 5)"
    with holder(code, db_file, PII_ARGV) as pid:
        recorded = lite_lock.lock_path(db_file).read_text()
        with pytest.raises(IndexLockedError) as waited:
            lite_lock.acquire(db_file, 0.3)
    assert recorded.startswith(f"pid {pid} (rag query) since ")
    message = str(waited.value)
    assert f"in use by pid {pid} (rag query) since " in message
    for secret in PII:
        assert secret not in recorded and secret not in message


def test_a_lock_file_written_with_a_whole_command_line_is_not_repeated(tmp_path: Path) -> None:
    """An older release wrote the raw command line: a holder still running it must not have it printed."""
    db_file = tmp_path / "milvus.db"
    legacy = f"pid 4242 ({' '.join(PII_ARGV)}) since 10:00:00"
    code = (
        f"import fcntl, os; fd = os.open({str(lite_lock.lock_path(db_file))!r}, os.O_RDWR | os.O_CREAT); "
        f"fcntl.flock(fd, fcntl.LOCK_EX); os.write(fd, {legacy.encode()!r})"
    )
    with holder(code, db_file, PII_ARGV), pytest.raises(IndexLockedError) as waited:
        lite_lock.acquire(db_file, 0.3)
    assert "in use by another process" in str(waited.value)
    for secret in PII:
        assert secret not in str(waited.value)


@pytest.mark.parametrize(
    ("argv", "name"),
    [
        (PII_ARGV, "rag query"),
        (["rag", "--json", "query", "john.doe@example.com"], "rag"),
        (["/usr/bin/dagster", "api", "execute_run", '{"run_id": "x"}'], "dagster api"),
        (["python", "scripts/export.py", "Jane Roe"], "python"),
        ([], "python"),
    ],
)
def test_the_command_name_keeps_the_program_and_a_subcommand_only(argv: list[str], name: str) -> None:
    assert lite_lock.command_name(argv) == name
