"""One process at a time through a piece of work on shared files, across processes (an advisory ``flock`` on a lock
file beside them). POSIX only: elsewhere the work runs unguarded, which its callers accept (a latency merge is best
effort; a model export is written to a staging folder and moved into place whole)."""

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def exclusive(lock_file: Path) -> Iterator[None]:
    """Wait until no other process holds ``lock_file``, hold it inside, and let it go after."""
    try:
        import fcntl
    except ImportError:  # Windows
        yield
        return
    with open(lock_file, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
