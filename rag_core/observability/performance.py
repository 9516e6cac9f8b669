"""The guide's monthly performance analysis, read from the query log: latency per stage and day, SLA compliance,
cache hit rate, quality-signal trends and the slowest queries, over a daily, weekly or monthly period."""

import datetime
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import numpy as np

from rag_core.observability.latency import StagePercentiles
from rag_core.observability.query_log import read_query_log

Period = Literal["daily", "weekly", "monthly"]
PERIOD_DAYS: dict[str, int] = {"daily": 1, "weekly": 7, "monthly": 30}
SLOWEST = 10


@dataclass(frozen=True)
class DayPerformance:
    day: str
    queries: int
    latency_ms: dict[str, StagePercentiles]
    sla_compliance: float
    cache_hit_rate: float
    signals: dict[str, float]  # the mean of each signal that day


@dataclass(frozen=True)
class SlowQuery:
    time: str
    query_id: str
    query_hash: str
    retrieval_ms: float


@dataclass(frozen=True)
class PerformanceReport:
    period: str
    start: str
    end: str
    target_latency_ms: float
    queries: int
    latency_ms: dict[str, StagePercentiles] = field(default_factory=dict)
    sla_compliance: float = 0.0
    cache_hit_rate: float = 0.0
    days: list[DayPerformance] = field(default_factory=list)
    slowest: list[SlowQuery] = field(default_factory=list)


def performance_report(
    folder: Path,
    *,
    period: Period,
    target_latency_ms: float,
    today: datetime.date | None = None,
    start: datetime.date | None = None,
) -> PerformanceReport:
    """The last ``period`` of the query log under ``folder``, ending with ``today`` (UTC) included; ``start`` gives
    the first day instead (a calendar month for the monthly Dagster partition)."""
    if period not in PERIOD_DAYS:
        raise ValueError(f"Unknown period {period!r}; use one of {', '.join(PERIOD_DAYS)}.")
    end = today or datetime.datetime.now(datetime.UTC).date()
    start = start or end - datetime.timedelta(days=PERIOD_DAYS[period] - 1)
    rows = (
        read_query_log(folder, start=start, end=end)
        .select(["time", "query_id", "query_hash", "latency_ms", "cache_hit", "signals"])
        .to_pylist()
    )
    report = PerformanceReport(
        period=period,
        start=start.isoformat(),
        end=end.isoformat(),
        target_latency_ms=target_latency_ms,
        queries=len(rows),
    )
    if not rows:
        return report
    by_day: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        row["latency_ms"], row["signals"] = dict(row["latency_ms"]), dict(row["signals"])
        by_day[row["time"].date().isoformat()].append(row)
    slowest = sorted(rows, key=lambda r: -r["latency_ms"].get("retrieval", 0.0))[:SLOWEST]
    return replace(
        report,
        **_summary(rows, target_latency_ms),
        days=[
            DayPerformance(
                day=day, queries=len(day_rows), **_summary(day_rows, target_latency_ms), signals=_means(day_rows)
            )
            for day, day_rows in sorted(by_day.items())
        ],
        slowest=[
            SlowQuery(
                time=r["time"].isoformat(),
                query_id=r["query_id"],
                query_hash=r["query_hash"],
                retrieval_ms=round(r["latency_ms"].get("retrieval", 0.0), 2),
            )
            for r in slowest
        ],
    )


def _summary(rows: list[dict], target_latency_ms: float) -> dict:
    stages: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for stage, ms in row["latency_ms"].items():
            stages[stage].append(ms)
    total = [r["latency_ms"].get("retrieval", 0.0) for r in rows]
    return {
        "latency_ms": {
            stage: StagePercentiles(*(round(float(np.percentile(v, q)), 2) for q in (50, 95, 99)), count=len(v))
            for stage, v in stages.items()
        },
        "sla_compliance": round(sum(ms <= target_latency_ms for ms in total) / len(rows), 4),
        "cache_hit_rate": round(sum(bool(r["cache_hit"]) for r in rows) / len(rows), 4),
    }


def _means(rows: list[dict]) -> dict[str, float]:
    values: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        for name, value in row["signals"].items():
            values[name].append(value)
    return {name: round(float(np.mean(v)), 4) for name, v in values.items()}
