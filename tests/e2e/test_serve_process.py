"""`rag serve` as a process: what it says at start, a drain on SIGTERM, several workers' metrics, a Milvus outage."""

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from rag_core.config import RAGConfig
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.serve_process import _environment, free_port, ingest_in_subprocess, running_service, write_config
from tests.support.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow


def served_config(tmp_path: Path, uri: str, collection: str, **milvus: object) -> RAGConfig:
    return make_config(
        tmp_path,
        uri,
        collection,
        milvus={"consistency_level": "Strong", **milvus},
        retrieval={"bm25_refresh_s": 0, "cache_size": 0},
    )


def total_queries(metrics_text: str, outcome: str = "ok") -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(metrics_text)
        for s in family.samples
        if s.name == "rag_queries_total" and s.labels["outcome"] == outcome
    )


def test_sigterm_drains_in_flight_requests_and_exits_cleanly(tmp_path: Path) -> None:
    config = served_config(tmp_path, str(tmp_path / "milvus.db"), "drained")
    ingest_in_subprocess(config, RETRIEVAL_DOCS, tmp_path)
    outcomes: list[tuple[float, float, int | str]] = []
    with running_service(config, tmp_path / "serve") as service:
        assert "WITHOUT authentication (loopback only)" in service.output()
        assert f"listening on {service.url}" in service.output()
        stop = threading.Event()

        def client(number: int) -> None:
            sent = 0
            while not stop.is_set():
                started = time.monotonic()
                try:
                    status = service.query(f"question {number} {sent} about segments and aliases")[0]
                except OSError as error:
                    # Refused once the listener is closed; reset when the connection was still in the kernel's
                    # accept queue as the listener closed. Either way the service never read the request.
                    cause = getattr(error, "reason", error)  # urllib wraps the socket error
                    unread = isinstance(cause, ConnectionRefusedError | ConnectionResetError)
                    status = "refused" if unread else f"broken: {error}"
                outcomes.append((started, time.monotonic(), status))
                sent += 1
                if status == "refused":
                    return

        threads = [threading.Thread(target=client, args=(n,)) for n in range(6)]
        for thread in threads:
            thread.start()
        time.sleep(3)
        signalled = time.monotonic()
        service.process.send_signal(signal.SIGTERM)
        assert service.process.wait(30) == 0, service.output()
        stop.set()
        for thread in threads:
            thread.join(60)
    statuses = {status for _, _, status in outcomes}
    assert statuses <= {200, "refused"}, f"a request was cut or failed during the drain: {statuses}"
    drained = [o for o in outcomes if o[0] < signalled < o[1] and o[2] == 200]
    assert drained, "requests in flight at SIGTERM were answered before the process exited"
    assert sum(status == 200 for _, _, status in outcomes) > 20


def test_rag_health_is_healthy_while_the_service_holds_the_lite_file(tmp_path: Path) -> None:
    """Milvus Lite allows one process per file: `rag health` beside a running `rag serve` (a container's health
    check) used to wait milvus.lock_timeout_s and report "unhealthy"; it now asks the service."""
    port = free_port()
    config = make_config(
        tmp_path, str(tmp_path / "milvus.db"), "healthy", milvus={"lock_timeout_s": 5}, serve={"port": port}
    )
    ingest_in_subprocess(config, RETRIEVAL_DOCS, tmp_path)
    config_file = write_config(config, tmp_path / "health-config.yaml")
    with running_service(config, tmp_path / "serve", port=port) as service:
        health = subprocess.run(
            [sys.executable, "-m", "rag_core.cli", "--config", str(config_file), "health"],
            cwd=tmp_path,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert health.returncode == 0, health.stdout + health.stderr
        assert health.stdout.startswith(f"ok: {tmp_path / 'milvus.db'} is held by pid {service.process.pid} "), (
            health.stdout
        )
        assert health.stdout.endswith(
            f"; the service at {service.url}/ready is ready, serving healthy__v1 ({len(RETRIEVAL_DOCS)} rows)\n"
        ), health.stdout
        assert health.stderr == ""


@pytest.mark.server
def test_two_workers_export_the_sum_of_their_queries(tmp_path: Path, milvus_server, collection: str, embedder) -> None:
    config = served_config(tmp_path, milvus_server.uri, collection)
    ingest(config, RETRIEVAL_DOCS, embedder)
    with running_service(config, tmp_path / "serve", workers=2) as service:
        answered = sum(service.query(f"query {n} on compaction and retention")[0] == 200 for n in range(40))
        assert answered == 40
        for _ in range(12):  # scrapes land on either worker: each must report the service's total
            status, text = service.request("GET", "/metrics")
            assert status == 200 and total_queries(text) == 40, text[:2000]


@pytest.mark.server
def test_milvus_outage_gives_503_and_the_service_recovers_by_itself(
    tmp_path: Path, milvus_server, collection: str, embedder
) -> None:
    ingest(served_config(tmp_path, milvus_server.uri, collection), RETRIEVAL_DOCS, embedder)
    proxy = TcpProxy(target_port=milvus_server.port)
    config = served_config(tmp_path, proxy.uri, collection, retry_attempts=2, retry_backoff_s=0.05, timeout_s=3)
    with running_service(config, tmp_path / "serve") as service:
        assert service.query("compaction")[0] == 200
        proxy.cut()
        status, body = service.query("hnsw graph search")
        assert status == 503, (body, service.output()[-3000:])
        assert proxy.uri in body["error"] and "did not answer" in body["error"], body
        assert service.request("GET", "/ready")[0] == 503
        assert service.request("GET", "/health")[0] == 200
        proxy.restore()
        deadline = time.monotonic() + 60
        while (status := service.query("alias swap")[0]) != 200 and time.monotonic() < deadline:
            time.sleep(1)
        assert status == 200, "the service answers again once Milvus is back, without a restart"
        time.sleep(2.5)  # past the readiness cache
        assert service.request("GET", "/ready")[0] == 200
        text = service.request("GET", "/metrics")[1]
        assert total_queries(text, "unavailable") >= 1
