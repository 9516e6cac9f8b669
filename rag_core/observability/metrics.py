"""Prometheus metrics of the query service (``rag serve``), named by Prometheus conventions.

One set of metric objects per process, in their own registry so tests and libraries never collide with the
default one. With several workers (``serve.workers`` > 1) every worker writes its samples to files under
``$PROMETHEUS_MULTIPROC_DIR`` and ``/metrics`` adds them up, so any worker answers a scrape with the totals of all:
``rag serve`` sets that variable before the first import of prometheus_client, which fixes the storage for the
process's lifetime. Process CPU and memory are summed over the service's whole process tree for the same reason.
Batch runs push their own outcome metrics instead (``rag_core.observability.pushgateway``).
"""

import os
from collections.abc import Iterator, Mapping

import psutil
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS_VARIABLE = "PROMETHEUS_MULTIPROC_DIR"
ROOT_PID_VARIABLE = "RAG_SERVE_ROOT_PID"  # the process whose tree the service is (the workers' supervisor)
# Around the 80 ms SLA (pipeline.target_latency_ms) and the guide's 100 ms alert, finer below them.
LATENCY_BUCKETS_S = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0)
RISK_BUCKETS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # the guide alerts above 0.2
SCORE_BUCKETS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)  # the guide alerts below 0.7
OUTCOMES = ("ok", "invalid", "unavailable", "error")


class ProcessTreeCollector(Collector):
    """CPU seconds and resident memory of the service's processes together: the supervisor and every worker."""

    def collect(self) -> Iterator[Metric]:
        root = psutil.Process(int(os.environ.get(ROOT_PID_VARIABLE, os.getpid())))
        cpu = memory = 0.0
        for process in [root, *root.children(recursive=True)]:
            try:
                with process.oneshot():
                    times = process.cpu_times()
                    cpu += times.user + times.system
                    memory += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue  # a worker that exited between listing and reading
        yield CounterMetricFamily("rag_process_cpu_seconds", "CPU time of the service's processes.", value=cpu)
        yield GaugeMetricFamily(
            "rag_process_resident_memory_bytes", "Resident memory of the service's processes.", value=memory
        )


disable_created_metrics()  # the *_created series double every counter and histogram for nothing a dashboard uses
REGISTRY = CollectorRegistry(auto_describe=True)
REGISTRY.register(ProcessTreeCollector())

QUERY_DURATION = Histogram(
    "rag_query_duration_seconds",
    "Time per query and stage; stage 'retrieval' is end to end.",
    ["stage"],
    buckets=LATENCY_BUCKETS_S,
    registry=REGISTRY,
)
QUERIES = Counter(
    "rag_queries",
    "Queries by retrieval mode and outcome (ok, invalid, unavailable, error).",
    ["mode", "outcome"],
    registry=REGISTRY,
)
HTTP_REQUESTS = Counter(
    "rag_http_requests",
    "HTTP requests by route, method and status code.",
    ["path", "method", "status"],
    registry=REGISTRY,
)
CACHE_HITS = Counter("rag_query_cache_hits", "Queries answered from the result cache.", ["mode"], registry=REGISTRY)
WITHIN_SLA = Counter(
    "rag_queries_within_sla", "Answered queries whose end-to-end time met the SLA.", ["mode"], registry=REGISTRY
)
SLA_SECONDS = Gauge(
    "rag_query_sla_seconds", "The latency SLA (pipeline.target_latency_ms).", registry=REGISTRY, multiprocess_mode="max"
)
HALLUCINATION_RISK = Histogram(
    "rag_hallucination_risk",
    "Estimated chance that no relevant context is in the top 5, per answered query.",
    buckets=RISK_BUCKETS,
    registry=REGISTRY,
)
FAITHFULNESS = Histogram(
    "rag_faithfulness_score",
    "How well the top contexts support the query, per answered query.",
    buckets=SCORE_BUCKETS,
    registry=REGISTRY,
)
ANSWER_FAITHFULNESS = Histogram(
    "rag_answer_faithfulness_score",
    "How well the contexts support a scored answer (POST /score).",
    buckets=SCORE_BUCKETS,
    registry=REGISTRY,
)
INDEX_ROWS = Gauge(
    "rag_index_rows",
    "Rows in the collection the alias serves.",
    ["collection"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)
INDEX_VERSION = Gauge(
    "rag_index_version",
    "The version number the alias serves.",
    ["collection"],
    registry=REGISTRY,
    multiprocess_mode="livemax",
)


def observe_query(
    *,
    mode: str,
    timings_ms: Mapping[str, float],
    cached: bool,
    sla_ms: float,
    hallucination_risk: float,
    faithfulness_score: float,
) -> None:
    """Record one answered query: its stages, the cache, the SLA and its quality signals."""
    QUERIES.labels(mode=mode, outcome="ok").inc()
    for stage, ms in timings_ms.items():
        QUERY_DURATION.labels(stage=stage).observe(ms / 1000.0)
    if cached:
        CACHE_HITS.labels(mode=mode).inc()
    if timings_ms.get("retrieval", float("inf")) <= sla_ms:
        WITHIN_SLA.labels(mode=mode).inc()
    HALLUCINATION_RISK.observe(hallucination_risk)
    FAITHFULNESS.observe(faithfulness_score)


def observe_failed_query(*, mode: str, outcome: str) -> None:
    if outcome not in OUTCOMES[1:]:
        raise ValueError(f"unknown query outcome {outcome!r}; one of {', '.join(OUTCOMES[1:])}")
    QUERIES.labels(mode=mode, outcome=outcome).inc()


def set_index(collection: str, *, rows: int, version: int) -> None:
    INDEX_ROWS.labels(collection=collection).set(rows)
    INDEX_VERSION.labels(collection=collection).set(version)


def exposition() -> tuple[bytes, str]:
    """The body and content type of a ``/metrics`` answer: every worker's samples when there are several."""
    registry = REGISTRY
    if os.environ.get(MULTIPROCESS_VARIABLE):
        registry = CollectorRegistry()
        MultiProcessCollector(registry)
        registry.register(ProcessTreeCollector())
    return generate_latest(registry), CONTENT_TYPE_LATEST
