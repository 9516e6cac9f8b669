"""Per-stage latency over a rolling window, with SLA compliance, persisted so another process can report it."""

import json
import threading
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

STAGES = ("embed", "dense", "sparse", "fusion", "fetch", "rerank", "retrieval")
STATE_FILE = "latency.json"


@dataclass(frozen=True)
class StagePercentiles:
    p50: float
    p95: float
    p99: float
    count: int

    def __getitem__(self, key: str) -> float:  # report["stage_latencies"]["retrieval"]["p95"], as the guide reads
        return getattr(self, key)


@dataclass(frozen=True)
class SLACompliance:
    target_latency_ms: float
    compliance_rate: float
    queries: int

    def __getitem__(self, key: str) -> float:
        return getattr(self, key)


class LatencyTracker:
    """``retrieval`` is end to end; the other stages add up to roughly it."""

    def __init__(self, window: int, target_latency_ms: float, state_dir: Path | None = None) -> None:
        self.window, self.target_latency_ms = window, target_latency_ms
        self._path = state_dir / STATE_FILE if state_dir else None
        self._samples: dict[str, deque[float]] = {s: deque(maxlen=window) for s in STAGES}
        self._lock = threading.Lock()
        self._load()

    def record(self, timings_ms: dict[str, float]) -> None:
        self.record_many([timings_ms])

    def record_many(self, queries: list[dict[str, float]]) -> None:
        with self._lock:
            for timings_ms in queries:
                for stage, value in timings_ms.items():
                    self._samples.setdefault(stage, deque(maxlen=self.window)).append(float(value))

    def percentiles(self) -> dict[str, StagePercentiles]:
        with self._lock:
            return {stage: StagePercentiles(*(float(v) for v in np.percentile(list(values), [50, 95, 99])),
                                            count=len(values))
                    for stage, values in self._samples.items() if values}

    def sla(self) -> SLACompliance:
        with self._lock:
            totals = list(self._samples["retrieval"])
        met = sum(t <= self.target_latency_ms for t in totals)
        return SLACompliance(self.target_latency_ms, met / len(totals) if totals else 1.0, len(totals))

    def save(self) -> None:
        if self._path is None:
            return
        with self._lock:
            state = {stage: list(values) for stage, values in self._samples.items()}
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_suffix(".tmp")
        temporary.write_text(json.dumps(state))
        temporary.replace(self._path)

    def _load(self) -> None:
        if self._path is None or not self._path.is_file():
            return
        for stage, values in json.loads(self._path.read_text()).items():
            self._samples.setdefault(stage, deque(maxlen=self.window)).extend(values)


def report(tracker: LatencyTracker) -> dict:
    """The guide's report shape: ``stage_latencies[stage][p50|p95|p99]`` and ``sla_compliance[compliance_rate]``."""
    return {"stage_latencies": tracker.percentiles(), "sla_compliance": tracker.sla()}

