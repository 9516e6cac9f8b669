"""`rag serve` under load: 8 concurrent HTTP clients x 2,000 SciFact queries each, against the SciFact index.

    python -m benchmarks.serve_load [--clients 8] [--queries 2000]   # writes benchmarks/out/serve_load.json

Every client keeps one HTTP connection and sends the 1,109 SciFact queries (test + train) in its own shuffled
order, repeated to its count. The result cache is off (``RAG__RETRIEVAL__CACHE_SIZE=0``), so every answer is a real
hybrid search; the query log and the audit trail stay on, as in production. The index is the one ``rag eval``
builds (``data/milvus.db``), refreshed first in a process of its own: Milvus Lite opens in one process at a time.
"""

import argparse
import http.client
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.lifecycle.context import RagContext
from rag_core.quality.evaluation import dataset_alias, load_beir

REPO = Path(__file__).resolve().parents[1]
PORT = 9190
STARTUP_S = 600


@dataclass
class ClientRun:
    sent: int = 0
    latencies_ms: list[float] = field(default_factory=list)
    server_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def prepare(dataset: Path) -> None:
    """Build or refresh the dataset's collection (reused when unchanged), as `rag eval` does."""
    from rag_core.lifecycle.direct import ingest_path

    ingest_path(
        load_beir(dataset, "test").corpus, RagContext(load_config()), collection=dataset_alias(dataset), prune=True
    )


def queries(dataset: Path) -> list[str]:
    with (dataset / "queries.jsonl").open(encoding="utf-8") as lines:
        return [json.loads(line)["text"] for line in lines if line.strip()]


def client(texts: list[str], count: int, seed: int, run: ClientRun) -> None:
    order = random.Random(seed).sample(texts, len(texts))
    connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
    for number in range(count):
        body = json.dumps({"query": order[number % len(order)]})
        started = time.perf_counter()
        try:
            connection.request("POST", "/query", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            payload = response.read()
        except OSError as error:
            run.errors.append(f"{type(error).__name__}: {error}")
            connection.close()
            connection = http.client.HTTPConnection("127.0.0.1", PORT, timeout=60)
            continue
        finally:
            run.sent += 1
        run.latencies_ms.append((time.perf_counter() - started) * 1000)
        if response.status != 200:
            run.errors.append(f"HTTP {response.status}: {payload[:200]!r}")
        else:
            run.server_ms.append(json.loads(payload)["metrics"]["total_latency_ms"])
    connection.close()


def percentiles(values: list[float]) -> dict[str, float]:
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {"p50": round(float(p50), 1), "p95": round(float(p95), 1), "p99": round(float(p99), 1)}


def wait_ready(process: subprocess.Popen) -> None:
    deadline = time.monotonic() + STARTUP_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"rag serve exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/ready", timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(1)
    raise SystemExit(f"rag serve was not ready within {STARTUP_S} s")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--queries", type=int, default=2000, help="per client")
    parser.add_argument("--out", type=Path, default=OUT / "serve_load.json")
    parser.add_argument("--prepare-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.prepare_only:
        prepare(args.dataset)
        return 0
    subprocess.run(
        [sys.executable, "-m", "benchmarks.serve_load", "--dataset", str(args.dataset), "--prepare-only"],
        check=True,
        cwd=REPO,
    )
    env = os.environ | {"RAG__MILVUS__COLLECTION": dataset_alias(args.dataset), "RAG__RETRIEVAL__CACHE_SIZE": "0"}
    server = subprocess.Popen(
        [sys.executable, "-m", "rag_core.cli", "serve", "--port", str(PORT)],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_ready(server)
        texts = queries(args.dataset)
        runs = [ClientRun() for _ in range(args.clients)]
        threads = [
            threading.Thread(target=client, args=(texts, args.queries, seed, run)) for seed, run in enumerate(runs)
        ]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        seconds = time.perf_counter() - started
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(60)
    latencies = [v for r in runs for v in r.latencies_ms]
    errors = [e for r in runs for e in r.errors]
    report = {
        "dataset": args.dataset.name,
        "distinct_queries": len(texts),
        "clients": args.clients,
        "queries_per_client": args.queries,
        "sent": sum(r.sent for r in runs),
        "errors": len(errors),
        "error_examples": errors[:5],
        "seconds": round(seconds, 1),
        "throughput_qps": round(len(latencies) / seconds, 1),
        "client_latency_ms": percentiles(latencies),
        "server_retrieval_ms": percentiles([v for r in runs for v in r.server_ms]),
        "settings": {
            "workers": 1,
            "store": "Milvus Lite",
            "mode": "hybrid",
            "cache": "off",
            "query_log": True,
            "audit": True,
            "cpus": os.cpu_count(),
        },
        "per_client_answered": [len(r.server_ms) for r in runs],
    }
    write_report(args.out, report)
    print(
        json.dumps(
            {k: report[k] for k in ("sent", "errors", "throughput_qps", "client_latency_ms", "server_retrieval_ms")},
            indent=2,
        )
    )
    return 0 if not errors else 1


if __name__ == "__main__":
    sys.exit(main())
