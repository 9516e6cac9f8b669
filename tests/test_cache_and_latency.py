from pathlib import Path

import pytest

from rag_core.observability.latency import LatencyTracker, report
from rag_core.retrieval.cache import QueryCache, normalise_query


def test_cache_is_lru_with_ttl_and_counts_hits() -> None:
    now = [0.0]
    cache: QueryCache[str] = QueryCache(max_size=2, ttl_s=10, clock=lambda: now[0])
    cache.put("a", "A")
    cache.put("b", "B")
    assert cache.get("a") == "A"
    cache.put("c", "C")  # evicts b, the least recently used
    assert cache.get("b") is None and cache.get("c") == "C"
    now[0] = 11
    assert cache.get("a") is None, "expired"
    stats = cache.stats
    assert (stats.hits, stats.misses) == (2, 2) and stats.hit_rate == 0.5
    assert normalise_query("  What  IS\tBM25 ") == "what is bm25"


def test_latency_percentiles_sla_and_persistence(tmp_path: Path) -> None:
    tracker = LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path)
    for total in range(1, 101):
        tracker.record({"embed": 1.0, "retrieval": float(total)})
    percentiles = tracker.percentiles()
    assert percentiles["retrieval"].p50 == pytest.approx(50.5)
    assert percentiles["retrieval"]["p95"] == pytest.approx(95.05)
    assert tracker.sla().compliance_rate == pytest.approx(0.80)
    tracker.save()
    later = report(LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path))
    assert later["stage_latencies"]["retrieval"]["p99"] == pytest.approx(percentiles["retrieval"].p99)
    assert later["sla_compliance"]["compliance_rate"] == pytest.approx(0.80)
    small = LatencyTracker(window=10, target_latency_ms=80, state_dir=tmp_path)
    assert small.percentiles()["retrieval"].count == 10, "the window keeps only the most recent samples"
