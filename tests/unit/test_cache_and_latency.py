from pathlib import Path

import pytest

from rag_core.observability.latency import STAGES, LatencyTracker, report
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


def test_cold_start_samples_do_not_move_p95_or_sla(tmp_path: Path) -> None:
    """A CLI cold start (model loading, index building) used to land in the window: p95 16527 ms, SLA 0%."""
    tracker = LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path)
    for total in range(1, 101):
        tracker.record({"embed": 1.0, "retrieval": float(total)})
    before, sla_before = tracker.percentiles(), tracker.sla()

    tracker.record_many([{"embed": 16000.0, "retrieval": 16527.0}] * 5, cold=True)
    tracker.record({"embed": 15000.0, "retrieval": 15500.0}, cold=True)

    assert tracker.percentiles() == before
    assert tracker.sla() == sla_before and tracker.sla().compliance_rate == pytest.approx(0.80)
    cold = tracker.cold_start_ms()
    assert cold["retrieval"].count == 6 and cold["retrieval"].p50 == pytest.approx(16527.0)
    tracker.save()

    later = report(LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path))
    assert later["stage_latencies"]["retrieval"]["p95"] == pytest.approx(95.05)
    assert later["sla_compliance"]["compliance_rate"] == pytest.approx(0.80)
    assert later["cold_start_ms"]["retrieval"].count == 6, "cold starts are persisted too, apart"


def test_only_cold_starts_means_not_measured_yet(tmp_path: Path) -> None:
    """Each CLI query is a fresh process: until a warm query is seen, p95 is unknown, not a model's load time."""
    for _ in range(3):
        process = LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path)
        process.record({"embed": 6000.0, "retrieval": 7300.0}, cold=True)
        process.save()
    latest = report(LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path))
    retrieval = latest["stage_latencies"]["retrieval"]
    assert retrieval.count == 0 and retrieval["p95"] != retrieval["p95"], "NaN: no warm sample yet"
    assert latest["sla_compliance"]["queries"] == 0
    # The guide's monitoring snippet, verbatim: "not measured" in words, never "nanms" or a 100 % SLA of nothing.
    printed = (
        f"P95 latency: {latest['stage_latencies']['retrieval']['p95']:.2f}ms\n"
        f"SLA compliance: {latest['sla_compliance']['compliance_rate']:.1%}"
    )
    assert printed == "P95 latency: n/ams\nSLA compliance: n/a"
    assert latest["cold_start_ms"]["retrieval"].count == 3


def test_save_merges_what_concurrent_processes_recorded(tmp_path: Path) -> None:
    first = LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path)
    second = LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path)
    first.record_many([{"retrieval": 10.0}] * 3)
    second.record_many([{"retrieval": 200.0}] * 2)
    first.save()
    second.save()  # used to overwrite the first process's samples with its own
    first.record({"retrieval": 20.0})
    first.save()  # and saving twice must not count the first three again

    merged = LatencyTracker(window=100, target_latency_ms=80, state_dir=tmp_path)
    assert merged.percentiles()["retrieval"].count == 6
    assert merged.sla().compliance_rate == pytest.approx(4 / 6)


def test_older_or_damaged_latency_files(tmp_path: Path) -> None:
    (tmp_path / "latency.json").write_text('{"retrieval": [10.0, 30.0], "embed": [1.0, 2.0]}')  # before cold starts
    assert LatencyTracker(window=10, target_latency_ms=20, state_dir=tmp_path).percentiles()["retrieval"].count == 2
    (tmp_path / "latency.json").write_text('{"retrieval": [10.0, 3')  # a crash mid-write by an old version
    tracker = LatencyTracker(window=10, target_latency_ms=20, state_dir=tmp_path)
    assert {p.count for p in tracker.percentiles().values()} == {0} and tracker.sla().queries == 0
    tracker.record({"retrieval": 5.0})
    tracker.save()
    assert LatencyTracker(window=10, target_latency_ms=20, state_dir=tmp_path).sla().compliance_rate == 1.0


def test_the_guides_snippet_runs_before_any_query(tmp_path: Path) -> None:
    """No query at all yet: every stage is there to read (no KeyError), as "n/a", and the SLA is no 100 %."""
    latest = report(LatencyTracker(window=10, target_latency_ms=80, state_dir=tmp_path))
    assert set(STAGES) <= set(latest["stage_latencies"])
    assert f"{latest['stage_latencies']['retrieval']['p95']:.2f}" == "n/a"
    rate = latest["sla_compliance"]["compliance_rate"]
    assert f"{rate:.1%}" == "n/a" and rate != rate and latest["sla_compliance"]["queries"] == 0
