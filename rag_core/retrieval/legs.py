"""A retrieval leg's hits and how long they took, computed here and now or on a worker thread.

The hybrid query's dense leg on a Milvus server is mostly a wait for the server; on a worker thread it overlaps
the BM25 leg, which the calling thread ranks meanwhile (issue 11: on the 2.3.5 server at 100k rows, the dense
search's median was 6 ms and the BM25 leg's 2.7 ms, one after the other).
"""

import contextvars
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

T = TypeVar("T")

# Shared by every engine of the process; more queries at once than workers wait in its queue, never on each other.
_WORKERS = ThreadPoolExecutor(max_workers=32, thread_name_prefix="rag-retrieval-leg")


class Leg(Generic[T]):
    """``result()`` waits for the leg (re-raising what it raised); ``ms`` is then how long the leg itself ran."""

    def __init__(self) -> None:
        self._future: Future = Future()
        self.ms = 0.0

    @classmethod
    def now(cls, call: Callable[..., T], *args: object) -> "Leg[T]":
        leg = cls()
        leg._future.set_result(leg._timed(call, *args))
        return leg

    @classmethod
    def in_background(cls, call: Callable[..., T], *args: object) -> "Leg[T]":
        """On a worker thread, in a copy of the caller's context (the audit's acting user, for one)."""
        leg = cls()
        leg._future = _WORKERS.submit(contextvars.copy_context().run, leg._timed, call, *args)
        return leg

    def _timed(self, call: Callable[..., T], *args: object) -> T:
        started = time.perf_counter()
        try:
            return call(*args)
        finally:
            self.ms = (time.perf_counter() - started) * 1000

    def result(self) -> T:
        return self._future.result()
