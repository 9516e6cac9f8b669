"""Per-stage latency over a rolling window, with SLA compliance, persisted so another process can report it.

A process's first query pays for loading the embedding model and building the client-side index: seconds, not
milliseconds. Such samples are recorded with ``cold=True`` and kept apart (``cold_start_ms``), so a few command-line
cold starts cannot turn the p95 and the SLA compliance into a measure of model loading.
"""

import json
import logging
import math
import os
import tempfile
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_core.file_lock import exclusive

STAGES = ("embed", "dense", "sparse", "fusion", "fetch", "rerank", "retrieval")
STATE_FILE = "latency.json"
STATE_FORMAT = 2  # {"format": 2, "warm": {stage: [ms, ...]}, "cold": {stage: [ms, ...]}}; format 1 was {stage: [...]}

log = logging.getLogger(__name__)

_Samples = dict[str, deque[float]]


class NotMeasured(float):
    """A figure with no sample behind it: NaN to arithmetic, "n/a" when printed. The guide formats these numbers
    straight into text (``f"{p95:.2f}ms"``, ``f"{rate:.1%}"``), where NaN read as "nan" and an empty SLA as 100 %."""

    def __new__(cls) -> "NotMeasured":
        return super().__new__(cls, math.nan)

    def __format__(self, spec: str) -> str:
        return "n/a"

    def __str__(self) -> str:
        return "n/a"


@dataclass(frozen=True)
class StagePercentiles:
    p50: float
    p95: float
    p99: float
    count: int

    def __getitem__(self, key: str) -> float:  # report["stage_latencies"]["retrieval"]["p95"], as the guide reads
        return getattr(self, key)


NOT_MEASURED = NotMeasured()  # one instance: reports compare equal (NaN is not equal to itself, but is itself)
UNMEASURED = StagePercentiles(NOT_MEASURED, NOT_MEASURED, NOT_MEASURED, 0)


@dataclass(frozen=True)
class SLACompliance:
    target_latency_ms: float
    compliance_rate: float
    queries: int

    def __getitem__(self, key: str) -> float:
        return getattr(self, key)


class LatencyTracker:
    """``retrieval`` is end to end; the other stages add up to roughly it.

    Warm samples feed the percentiles and the SLA; cold-start samples (``record_many(..., cold=True)``) are kept in
    their own window, reported by ``cold_start_ms`` only. ``save`` merges this process's new samples into what other
    processes saved meanwhile, so concurrent processes add up instead of overwriting each other.
    """

    def __init__(self, window: int, target_latency_ms: float, state_dir: Path | None = None) -> None:
        self.window, self.target_latency_ms = window, target_latency_ms
        self._path = Path(state_dir) / STATE_FILE if state_dir else None
        self._samples: _Samples = self._empty()
        self._cold: _Samples = self._empty()
        # Recorded since the last save; only the last ``window`` of each can survive a merge, so no more are kept.
        self._unsaved: dict[bool, _Samples] = {False: self._empty(), True: self._empty()}
        self._lock = threading.Lock()
        self._load()

    def record(self, timings_ms: dict[str, float], *, cold: bool = False) -> None:
        self.record_many([timings_ms], cold=cold)

    def record_many(self, queries: Iterable[dict[str, float]], *, cold: bool = False) -> None:
        """``cold``: these queries paid one-off start-up costs (model loading, index building) that are no
        measure of query latency; they are reported apart and never count in the percentiles or the SLA."""
        with self._lock:
            kept = self._cold if cold else self._samples
            unsaved = self._unsaved[cold]
            for timings_ms in queries:
                for stage, value in timings_ms.items():
                    self._append(kept, stage, float(value))
                    if self._path is not None:
                        self._append(unsaved, stage, float(value))

    def percentiles(self) -> dict[str, StagePercentiles]:
        """Warm samples only. Every stage is listed: one with no warm sample (none yet, or only cold starts) has
        ``count`` 0 and ``NotMeasured`` percentiles, so a reader gets "n/a" rather than a KeyError or a cold start's
        seconds."""
        with self._lock:
            measured = {stage: _percentiles(values) for stage, values in self._samples.items() if values}
            seen = [*STAGES, *self._cold]
        return {stage: measured.get(stage, UNMEASURED) for stage in dict.fromkeys([*seen, *measured])}

    def cold_start_ms(self) -> dict[str, StagePercentiles]:
        """The same statistics over the cold-start samples: what a process's first query costs."""
        with self._lock:
            return {stage: _percentiles(values) for stage, values in self._cold.items() if values}

    def sla(self) -> SLACompliance:
        with self._lock:
            totals = list(self._samples.get("retrieval", ()))
        met = sum(t <= self.target_latency_ms for t in totals)
        return SLACompliance(self.target_latency_ms, met / len(totals) if totals else NOT_MEASURED, len(totals))

    def save(self) -> None:
        """Merge the samples recorded here since the last save into the state file, then adopt the merged window."""
        if self._path is None:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive(self._path.with_name(self._path.name + ".lock")), self._lock:
            warm, cold = self._read_state()
            for kind, samples in ((False, warm), (True, cold)):
                for stage, values in self._unsaved[kind].items():
                    for value in values:
                        self._append(samples, stage, value)
            state = {"format": STATE_FORMAT, "warm": _plain(warm), "cold": _plain(cold)}
            handle, temporary = tempfile.mkstemp(dir=self._path.parent, prefix=f".{self._path.name}.", suffix=".tmp")
            try:
                with os.fdopen(handle, "w") as stream:
                    json.dump(state, stream)
                os.replace(temporary, self._path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            self._samples, self._cold = warm, cold
            self._unsaved = {False: self._empty(), True: self._empty()}

    def _load(self) -> None:
        if self._path is not None:
            self._samples, self._cold = self._read_state()

    def _read_state(self) -> tuple[_Samples, _Samples]:
        """(warm, cold) as saved; a missing, unreadable or corrupt file is an empty history, never a crash."""
        warm, cold = self._empty(), self._empty()
        if self._path is None or not self._path.is_file():
            return warm, cold
        try:
            state = json.loads(self._path.read_text())
            if not isinstance(state, dict):
                raise ValueError(f"expected a JSON object, got {type(state).__name__}")
            saved = (
                ((state.get("warm", {}), warm), (state.get("cold", {}), cold))
                if "format" in state
                else ((state, warm),)
            )  # format 1: warm samples only (older versions did not tell cold ones apart)
            for stages, samples in saved:
                for stage, values in stages.items():
                    for value in values:
                        self._append(samples, stage, float(value))
        except (OSError, ValueError, TypeError, AttributeError) as exc:
            log.warning("Ignoring the latency history in %s (%s); it starts again from empty", self._path, exc)
            return self._empty(), self._empty()
        return warm, cold

    def _empty(self) -> _Samples:
        return {stage: deque(maxlen=self.window) for stage in STAGES}

    def _append(self, samples: _Samples, stage: str, value: float) -> None:
        samples.setdefault(stage, deque(maxlen=self.window)).append(value)


def _percentiles(values: Iterable[float]) -> StagePercentiles:
    values = list(values)
    p50, p95, p99 = (float(v) for v in np.percentile(values, [50, 95, 99]))
    return StagePercentiles(p50, p95, p99, count=len(values))


def _plain(samples: _Samples) -> dict[str, list[float]]:
    return {stage: list(values) for stage, values in samples.items() if values}


def report(tracker: LatencyTracker) -> dict:
    """The guide's report shape: ``stage_latencies[stage][p50|p95|p99]`` and ``sla_compliance[compliance_rate]``,
    plus ``cold_start_ms[stage]``: the first queries of processes, which load models, kept out of both."""
    return {
        "stage_latencies": tracker.percentiles(),
        "sla_compliance": tracker.sla(),
        "cold_start_ms": tracker.cold_start_ms(),
    }
