"""Progress of long work (ingest, eval, reindex, backup) where people look for it: a bar on a terminal, plain
lines in CI logs, nothing when asked to be quiet or when called from Python.

A terminal gets tqdm's bar. Anywhere else (CI, ``| tee``, a log file) a bar's carriage returns would become one
unreadable line per redraw, so tqdm keeps counting and timing but shows itself as a line every ``interval_s``
seconds (``RAG_PROGRESS_INTERVAL_S``, default 10) and, if it did, once more at the end:
``ingest: 120/500 documents (24 %), 3.1 documents/s, 38 s``; a bar that asks for it adds the time left and a note
(one large document: ``document big.txt: 1080000/2500000 characters (43 %), 9000.0 characters/s, 120 s, ETA 158 s;
2100 chunks indexed, 3500 tokens/s``). Work shorter than one interval prints nothing: its
result line says it all, and short commands keep a clean stderr. The core takes a
``ProgressReporter`` and defaults to ``QUIET``, so library callers, tests and Dagster runs see nothing unless they
ask; the CLI passes one that shows (``--quiet`` turns it off). Everything goes to stderr: stdout keeps the
command's result (and its ``--json``) clean.
"""

import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TextIO, TypeVar

from tqdm import tqdm

LOG_INTERVAL_S = 10.0  # between plain lines: often enough to see a CI job is alive, rare enough to read the log
INTERVAL_VARIABLE = "RAG_PROGRESS_INTERVAL_S"
T = TypeVar("T")


def interval_from_environment() -> float:
    """``RAG_PROGRESS_INTERVAL_S``: seconds between plain progress lines (CI that wants fewer, a test that wants
    them at once)."""
    text = os.environ.get(INTERVAL_VARIABLE, "")
    if not text:
        return LOG_INTERVAL_S
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{INTERVAL_VARIABLE} must be a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise ValueError(f"{INTERVAL_VARIABLE} must be 0 or more seconds, got {text!r}")
    return value


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return False


class _LogLines(tqdm):
    """tqdm that prints a whole line per refresh instead of redrawing a bar in place."""

    written: int | None = None  # the count the last line showed

    def __init__(self, *args: object, eta: bool = False, **kwargs: object) -> None:
        self.eta = eta  # set before tqdm's own init, which may already display
        super().__init__(*args, **kwargs)

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        if msg == "":  # tqdm clearing the bar on close: there is no bar to clear
            return False
        self.fp.write(plain_line(self.format_dict, eta=self.eta) + "\n")
        self.fp.flush()
        self.written = self.n
        return True


def plain_line(state: dict, *, eta: bool = False) -> str:
    """``label: done/total unit (pct %), rate unit/s, elapsed s[, ETA s][; note]`` from tqdm's ``format_dict`` (no
    total: no pct).

    The rate is the average over the whole run (``smoothing=0``), which is what a log reader compares between
    runs; before any time has passed it is left out. With ``eta``, the time the rest would take at that rate,
    while there is a rest and a rate. The note is the bar's ``note()``."""
    done, total, unit, elapsed = state["n"], state["total"], state["unit"], state["elapsed"]
    count = f"{done}/{total} {unit} ({100 * done / total:.0f} %)" if total else f"{done} {unit}"
    rate = f", {done / elapsed:.1f} {unit}/s" if elapsed > 0 else ""
    left = (
        f", ETA {(total - done) * elapsed / done:.0f} s" if eta and total and 0 < done < total and elapsed > 0 else ""
    )
    note = f"; {state['postfix']}" if state.get("postfix") else ""
    return f"{state['prefix']}: {count}{rate}, {elapsed:.0f} s{left}{note}"


class ProgressBar:
    """One counted task; use it as a context manager so the bar (or the last line) is closed on every exit."""

    def __init__(self, bar: tqdm | None) -> None:
        self._bar = bar
        self.count = 0  # kept even when quiet, so callers and tests can read what was counted

    def advance(self, amount: int = 1) -> None:
        self.count += amount
        if self._bar is not None:
            self._bar.update(amount)

    def advance_to(self, count: int) -> None:
        """Set the count outright: work that is read again after a retry is then counted once."""
        self.advance(count - self.count)

    def note(self, text: str) -> None:
        """What the count does not say (within one document: the chunks indexed so far, tokens/s), shown with the
        next line or redraw."""
        if self._bar is not None:
            self._bar.set_postfix_str(text, refresh=False)

    def set_total(self, total: int) -> None:
        """For work whose size is known only once it started (a re-index learns its documents as it reads them);
        shown from the next update on."""
        if self._bar is not None:
            self._bar.total = total

    def iterate(self, items: Iterable[T]) -> Iterator[T]:
        """``items``, lazily; each is counted once the consumer is done with it and asks for the next."""
        for item in items:
            yield item
            self.advance()

    def close(self) -> None:
        if self._bar is None:
            return
        if isinstance(self._bar, _LogLines) and self._bar.written not in (None, self._bar.n):
            self._bar.refresh()  # the closing line of work that showed progress, unless the last line says it
        self._bar.close()
        self._bar = None

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class ProgressReporter:
    """How a command shows progress; ``bar()`` opens one task. ``stream`` defaults to stderr when the bar opens
    (so a test's or a wrapper's replacement of ``sys.stderr`` is honoured)."""

    enabled: bool = True
    stream: TextIO | None = None
    interval_s: float = field(default_factory=interval_from_environment)

    def bar(self, label: str, unit: str, total: int | None = None, *, eta: bool = False) -> ProgressBar:
        """``eta``: plain lines also say the time left (a terminal's bar always does)."""
        if not self.enabled:
            return ProgressBar(None)
        stream = self.stream or sys.stderr
        options = {"total": total, "desc": label, "unit": unit, "file": stream, "smoothing": 0}
        if _is_terminal(stream):  # tqdm writes the rate as "{rate}{unit}/s": "3.1 documents/s" needs the space
            return ProgressBar(tqdm(**options | {"unit": f" {unit}"}, dynamic_ncols=True))
        # delay: a task shorter than one interval prints nothing; miniters=1: any update an interval on may print
        return ProgressBar(
            _LogLines(**options, mininterval=self.interval_s, delay=self.interval_s, miniters=1, leave=False, eta=eta)
        )


QUIET = ProgressReporter(enabled=False, interval_s=LOG_INTERVAL_S)
