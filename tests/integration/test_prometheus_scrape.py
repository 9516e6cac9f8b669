"""A real Prometheus scrapes `rag serve` and the Pushgateway the batch runs push to: it counts exactly the queries
sent, evaluates the alert rules without error, answers every dashboard panel's query with data, and the guide's
prometheus.yml, used as shown, scrapes `rag serve` on its default port 9090.

One module-scoped stack, built in this order because Milvus Lite is one process per file: the Dagster batch jobs
run (and push) first, then `rag serve` opens the index, then the Prometheus servers start."""

import gzip
import itertools
import json
import math
import multiprocessing
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from rag_assets.definitions import build_definitions
from rag_core.config import RAGConfig
from tests.deploy.test_alert_rules import OBSERVABILITY_DOC, PROMETHEUS_DIR, guide_prometheus_yml
from tests.integration.test_pushgateway import run_and_push
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.grafana_dashboard import load_dashboard, panel_queries
from tests.support.paths import SCIFACT
from tests.support.prometheus_server import (
    PrometheusServer,
    Pushgateway,
    port_is_free,
    running_prometheus,
    running_pushgateway,
    scrape_config,
)
from tests.support.serve_process import ServiceProcess, running_service

pytestmark = pytest.mark.slow

GUIDE_PORT = 9090  # the guide's target, localhost:9090, and rag serve's default port
BATCH_JOBS = ("ingestion", "drift_report_job", "compaction", "retention")
QUESTIONS = (
    "How does Milvus purge deleted rows?",
    "What does the ef parameter of HNSW trade?",
    "When does a Dagster sensor request a run?",
    "How does BM25 score a document?",
)
BATCH_TIMEOUT_S = 300
PROBES = 40  # SciFact abstracts added to the corpus, and the probe set built from it (at least 30 are needed)
GUIDE_SCRAPE_WAIT_S = 75  # the guide's file keeps Prometheus's default 1 minute interval


@dataclass(frozen=True)
class Stack:
    service: ServiceProcess
    prometheus: PrometheusServer
    pushgateway: Pushgateway
    guide: PrometheusServer | None  # None when port 9090 was taken and rag serve runs elsewhere
    guide_started: float


def run_batch_jobs(config: RAGConfig) -> None:
    """The batch jobs, each run for real and pushed by its sensor, in a process of its own: a process that opened a
    Milvus Lite file holds it until it exits, and `rag serve` opens the same file next."""
    definitions, instance = build_definitions(config), dg.DagsterInstance.ephemeral()
    failed = [job for job in BATCH_JOBS if not run_and_push(definitions, instance, job).success]
    if failed:
        raise SystemExit(f"batch jobs failed: {failed}")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    folder = tmp_path_factory.mktemp("scrape")
    with running_pushgateway(folder / "pushgateway") as pushgateway:
        config = make_config(
            folder,
            str(folder / "milvus.db"),
            observability={"pushgateway_url": pushgateway.url},
            retrieval={"bm25_refresh_s": 0},
            quality_gate={"probe_set_size": PROBES},
        )
        write_corpus(Path(config.ingestion.docs_dir))
        write_abstracts(Path(config.ingestion.docs_dir), PROBES)  # enough for a probe set: its drift gauge has data
        batch = multiprocessing.get_context("spawn").Process(target=run_batch_jobs, args=(config,))
        batch.start()
        batch.join(BATCH_TIMEOUT_S)
        assert batch.exitcode == 0, f"the batch jobs' process ended with {batch.exitcode} (its output is above)"
        port = GUIDE_PORT if port_is_free(GUIDE_PORT) else None
        with running_service(config, folder / "serve", port=port) as service:
            scraped = scrape_config(
                [
                    {
                        "job_name": "rag-pipeline",
                        "static_configs": [{"targets": [service.url.removeprefix("http://")]}],
                    },
                    {
                        "job_name": "pushgateway",
                        "honor_labels": True,
                        "static_configs": [{"targets": [pushgateway.url.removeprefix("http://")]}],
                    },
                ]
            )
            scraped["rule_files"] = [str(PROMETHEUS_DIR / "alerts.yml")]
            with running_prometheus(folder / "prometheus", scraped) as prometheus:
                guide_file = folder / "guide" / "prometheus.yml"
                guide_file.parent.mkdir()
                guide_file.write_text(guide_prometheus_yml(OBSERVABILITY_DOC.read_text(encoding="utf-8")))
                if port is None:
                    yield Stack(service, prometheus, pushgateway, None, time.monotonic())
                else:
                    with running_prometheus(folder / "guide", guide_file) as guide:
                        yield Stack(service, prometheus, pushgateway, guide, time.monotonic())


def write_abstracts(folder: Path, count: int) -> None:
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        for line in itertools.islice(lines, count):
            record = json.loads(line)
            (folder / f"abstract-{record['_id']}.md").write_text(f"# {record['title']}\n\n{record['text']}\n")


def value(result: list[dict]) -> float:
    return float(result[0]["value"][1]) if result else math.nan


def test_prometheus_counts_exactly_the_queries_sent(stack: Stack) -> None:
    prometheus, service = stack.prometheus, stack.service
    assert value(prometheus.wait_for('up{job="rag-pipeline"}', lambda r: value(r) == 1)) == 1
    status, scored = service.request(
        "POST",
        "/score",
        {
            "answer": "Compaction purges deleted rows.",
            "contexts": ["Compaction merges segments and purges deleted rows."],
        },
    )
    assert status == 200, scored
    answered = invalid = 0
    for round_ in range(3):  # spread over several scrapes, so every rate() has increases to see
        for mode in ("hybrid", "dense", "bm25"):
            for question in QUESTIONS[round_ : round_ + 2]:  # repeats are answered from the cache
                status, body = service.query(question, mode=mode, top_k=3)
                assert status == 200, body
                answered += 1
        status, body = service.query(QUESTIONS[0], top_k=0)  # refused: top_k must be > 0
        assert status == 422 and "top_k" in str(body), body
        invalid += 1
        time.sleep(1.5)
    sent = answered + invalid
    total = prometheus.wait_for('sum(rag_queries_total{job="rag-pipeline"})', lambda r: value(r) >= sent)
    assert value(total) == sent
    time.sleep(3)  # later scrapes still say N: nothing else counted as a query (/score, /ready, /metrics)
    assert value(prometheus.query('sum(rag_queries_total{job="rag-pipeline"})')) == sent
    by_outcome = prometheus.query('sum by (outcome) (rag_queries_total{job="rag-pipeline"})')
    assert {r["metric"]["outcome"]: float(r["value"][1]) for r in by_outcome} == {"ok": answered, "invalid": invalid}
    assert value(prometheus.query('sum(rag_http_requests_total{job="rag-pipeline", path="/query"})')) == sent
    assert value(prometheus.query('sum(rag_query_cache_hits_total{job="rag-pipeline"})')) > 0


def test_batch_runs_reach_the_same_prometheus_through_the_pushgateway(stack: Stack) -> None:
    outcomes = stack.prometheus.wait_for("rag_batch_success", lambda r: len(r) == len(BATCH_JOBS))
    assert {r["metric"]["job"]: float(r["value"][1]) for r in outcomes} == {f"rag_{j}": 1.0 for j in BATCH_JOBS}


def test_every_dashboard_panel_query_returns_data(stack: Stack) -> None:
    empty = []
    for query in panel_queries(load_dashboard()):
        result = stack.prometheus.query(query.expr)
        if not any(math.isfinite(float(r["value"][1])) for r in result):
            empty.append(f"{query.panel} ({query.ref_id}): {query.expr} -> {result}")
    assert not empty, "panels without data:\n" + "\n".join(empty)


def test_the_alert_rules_evaluate_on_real_data(stack: Stack) -> None:
    def evaluated(groups: list[dict]) -> bool:
        return bool(groups) and all(
            not rule["lastEvaluation"].startswith("0001")  # Go's zero time: not yet
            for group in groups
            for rule in group["rules"]
        )

    groups = stack.prometheus.rules(accept=evaluated)
    rules = {rule["name"]: rule for group in groups for rule in group["rules"]}
    assert len(rules) == 7 and all(r["health"] == "ok" for r in rules.values()), rules
    quiet = ("RagServiceDown", "RagDriftDetected", "RagBatchRunFailed")
    assert [name for name in quiet if rules[name]["state"] != "inactive"] == []
    # 3 refused of 21 queries is past 5 %: the error-rate rule holds on real data, pending for its 5 minutes.
    errors = rules["RagQueryErrorRateHigh"]
    assert errors["state"] == "pending" and float(errors["alerts"][0]["value"]) > 0.05, errors


def test_the_guides_prometheus_yml_scrapes_rag_serve_as_shown(stack: Stack) -> None:
    if stack.guide is None:
        pytest.skip(f"port {GUIDE_PORT} was taken, so rag serve could not listen where the guide points")
    remaining = GUIDE_SCRAPE_WAIT_S - (time.monotonic() - stack.guide_started)
    up = stack.guide.wait_for('up{job="rag-pipeline"}', lambda r: value(r) == 1, timeout_s=max(remaining, 1))
    assert value(up) == 1, f"the guide's Prometheus did not scrape rag serve on :{GUIDE_PORT}: {up}"
    assert up[0]["metric"]["instance"] == f"localhost:{GUIDE_PORT}"
