"""`rag serve` in-process (FastAPI's TestClient): answers, refusals naming the field, tokens, readiness, metrics."""

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.observability.query_log import read_query_log
from rag_core.security.rbac import hash_token
from rag_core.serve.app import create_app
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest

READER, ADMIN = "reader-token-1", "admin-token-1"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, embedder) -> RAGConfig:
    tmp = tmp_path_factory.mktemp("serve")
    config = make_config(
        tmp,
        str(tmp / "milvus.db"),
        "served",
        retrieval={"bm25_refresh_s": 0},
        pipeline={"top_k": 6, "rerank_top_k": 3},
        serve={"max_top_k": 20, "max_body_bytes": 2048},
        quality={"log_query_text": True, "query_log_flush_s": 0.05},
    )
    ingest(config, RETRIEVAL_DOCS, embedder)
    return config


@pytest.fixture(scope="module")
def client(served: RAGConfig) -> Iterator[TestClient]:
    with TestClient(create_app(served)) as client:
        yield client


def scrape(client: TestClient, headers: dict | None = None) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics", headers=headers or {})
    assert response.status_code == 200, response.text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def queries(samples: dict, outcome: str, mode: str = "hybrid") -> float:
    return samples.get(("rag_queries_total", (("mode", mode), ("outcome", outcome))), 0.0)


def test_query_answers_with_ranked_results_and_quality_metrics(client: TestClient) -> None:
    response = client.post("/query", json={"query": "how does compaction purge deleted rows", "top_k": 3})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["collection"].startswith("served__v")
    assert [r["rank"] for r in body["results"]] == [1, 2, 3]
    assert body["results"][0]["doc_id"] == "compaction"
    scores = [r["score"] for r in body["results"]]
    assert scores == sorted(scores, reverse=True)
    metrics = body["metrics"]
    assert 0 <= metrics["hallucination_risk"] <= 1 and 0 <= metrics["faithfulness_score"] <= 1
    assert metrics["latency_ms"]["retrieval"] == pytest.approx(metrics["total_latency_ms"])
    assert {"embed", "dense", "fusion"} <= set(metrics["latency_ms"])
    assert "coverage" in metrics["signals"]


@pytest.mark.parametrize("top_k", [5, 7])
def test_top_k_is_how_many_results_come_back_like_the_cli(client: TestClient, top_k: int) -> None:
    """top_k used to cut only the fused candidates: anything above pipeline.rerank_top_k (3 here) gave 3 results."""
    body = client.post("/query", json={"query": "search index rows", "top_k": top_k, "mode": "dense"}).json()
    assert len(body["results"]) == top_k, body
    scored = client.post("/score", json={"answer": "Search the index.", "query": "search index rows", "top_k": top_k})
    assert scored.json()["contexts"] == top_k, scored.json()


def test_without_top_k_the_service_returns_rerank_top_k_results(client: TestClient) -> None:
    body = client.post("/query", json={"query": "search index rows", "mode": "dense"}).json()
    assert len(body["results"]) == 3


def test_modes_and_filters_are_honoured(client: TestClient) -> None:
    bm25 = client.post("/query", json={"query": "BM25 inverse document frequency", "mode": "bm25"}).json()
    assert all(r["dense_score"] is None for r in bm25["results"]) and bm25["results"][0]["doc_id"] == "bm25"
    only = client.post("/query", json={"query": "search", "filter": 'doc_id == "hnsw"'}).json()
    assert {r["doc_id"] for r in only["results"]} == {"hnsw"}


@pytest.mark.parametrize(
    ("body", "status", "field", "words"),
    [
        ({}, 422, "query", "Field required"),
        ({"query": ""}, 422, "query", "at least 1 character"),
        ({"query": "   "}, 422, "query", "empty"),
        ({"query": "x", "top_k": 0}, 422, "top_k", "greater than 0"),
        ({"query": "x", "top_k": "3"}, 422, "top_k", "valid integer"),  # strict: a string is not coerced
        ({"query": "x", "top_k": True}, 422, "top_k", "valid integer"),  # nor a boolean (it was 1)
        ({"query": "x", "top_k": 2.0}, 422, "top_k", "valid integer"),
        ({"query": "x", "top_k": 21}, 422, "top_k", "serve.max_top_k (20)"),
        ({"query": "x", "mode": "sparse"}, 422, "mode", "'hybrid', 'dense' or 'bm25'"),
        ({"query": "x", "limit": 3}, 422, "limit", "Extra inputs"),
        ({"query": "x", "filter": "doc_id ==== 1"}, 422, "filter", "Milvus rejected"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(
    client: TestClient, body: dict, status: int, field: str, words: str
) -> None:
    before = queries(
        scrape(client), "invalid", body.get("mode", "hybrid") if body.get("mode") != "sparse" else "unknown"
    )
    response = client.post("/query", json=body)
    assert response.status_code == status, response.text
    assert response.json()["field"] == field and words in response.json()["error"], response.json()
    after = queries(scrape(client), "invalid", "unknown" if body.get("mode") == "sparse" else "hybrid")
    assert after == before + 1, "every refused query is counted as outcome=invalid"


def test_score_refuses_a_top_k_that_is_not_an_integer(client: TestClient) -> None:
    response = client.post("/score", json={"answer": "A.", "query": "alias", "top_k": "3"})
    assert response.status_code == 422 and response.json()["field"] == "top_k", response.json()


class _Kept(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_rejected_filter_is_one_log_line_without_traceback_or_query(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    """pymilvus logged each rejected filter at ERROR with its traceback, through its own stderr handler (9,122
    lines for 8 requests), the expression (and so the caller's values) included."""
    pymilvus_records = _Kept()
    logging.getLogger("pymilvus").addHandler(pymilvus_records)
    try:
        with caplog.at_level(logging.WARNING):
            for mode in ("hybrid", "dense", "bm25"):
                response = client.post(
                    "/query",
                    json={"query": "confidential compaction", "mode": mode, "filter": 'tenant ==== "acme-secret"'},
                )
                assert response.status_code == 422 and response.json()["field"] == "filter", response.text
    finally:
        logging.getLogger("pymilvus").removeHandler(pymilvus_records)
    assert [r.getMessage() for r in pymilvus_records.records] == [], "pymilvus's own error records are contained"
    ours = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(ours) == 3 and {r.name for r in ours} == {"rag_core.serve.app"}, [r.getMessage() for r in ours]
    for record in ours:
        text = record.getMessage()
        assert record.exc_info is None and "\n" not in text and "422" in text and "filter" in text
        assert "confidential" not in text and "acme-secret" not in text


def test_pymilvus_errors_outside_a_rejected_filter_are_still_logged(client: TestClient) -> None:
    """Only the expected case is contained: the same failing call outside a request reaches pymilvus's log."""
    from pymilvus.exceptions import MilvusException

    pymilvus_records = _Kept()
    logging.getLogger("pymilvus").addHandler(pymilvus_records)
    engine = client.app.state.service.pipeline.engine
    try:
        with pytest.raises(MilvusException):
            engine.manager.count(engine.serving_state().collection, filter='tenant ==== "x"')
    finally:
        logging.getLogger("pymilvus").removeHandler(pymilvus_records)
    assert pymilvus_records.records, "a failure the service did not expect keeps pymilvus's record"


def test_malformed_json_and_oversized_bodies_are_refused(client: TestClient) -> None:
    malformed = client.post("/query", content=b'{"query": "x",', headers={"Content-Type": "application/json"})
    assert malformed.status_code == 400 and "Malformed JSON" in malformed.json()["error"]
    oversized = client.post("/query", json={"query": "word " * 1000})
    assert oversized.status_code == 413 and "serve.max_body_bytes (2048" in oversized.json()["error"]


def test_metrics_count_every_answered_query_by_stage_and_quality(client: TestClient) -> None:
    before = scrape(client)
    for text in ("alias swap", "cosine similarity", "sensor folder"):
        assert client.post("/query", json={"query": text, "mode": "dense"}).status_code == 200
    after = scrape(client)
    assert queries(after, "ok", "dense") - queries(before, "ok", "dense") == 3
    count = ("rag_query_duration_seconds_count", (("stage", "retrieval"),))
    assert after[count] - before.get(count, 0.0) == 3
    risk = ("rag_hallucination_risk_count", ())
    assert after[risk] - before.get(risk, 0.0) == 3
    assert after[("rag_query_sla_seconds", ())] == pytest.approx(0.08)
    assert after[("rag_index_rows", (("collection", "served"),))] == len(RETRIEVAL_DOCS)
    assert after[("rag_index_version", (("collection", "served"),))] == 1
    assert after[("rag_process_resident_memory_bytes", ())] > 50e6
    assert after[("rag_process_cpu_seconds_total", ())] > 0
    ok = ("rag_http_requests_total", (("method", "POST"), ("path", "/query"), ("status", "200")))
    assert after[ok] - before.get(ok, 0.0) == 3


def test_ready_reports_the_serving_version_and_rows(client: TestClient) -> None:
    assert client.get("/health").json() == {"status": "ok"}
    ready = client.get("/ready")
    assert ready.status_code == 200
    assert ready.json() | {"error": ""} == {
        "ready": True,
        "collection": "served__v1",
        "version": 1,
        "rows": len(RETRIEVAL_DOCS),
        "error": "",
    }


def test_not_ready_without_an_index_and_queries_get_503(served: RAGConfig) -> None:
    missing = served.model_copy(update={"milvus": served.milvus.model_copy(update={"collection": "never_built"})})
    with TestClient(create_app(missing)) as client:
        ready = client.get("/ready")
        assert ready.status_code == 503 and not ready.json()["ready"]
        assert "never_built" in ready.json()["error"]
        refused = client.post("/query", json={"query": "anything"})
        assert refused.status_code == 503 and refused.headers["Retry-After"] == "5"
        assert "unavailable" in refused.json()["error"]
        assert client.get("/health").status_code == 200, "liveness holds while the index is away"


def test_score_checks_an_answer_against_given_or_retrieved_contexts(client: TestClient) -> None:
    contexts = [RETRIEVAL_DOCS["compaction"]]
    good = client.post("/score", json={"answer": "Compaction purges deleted rows.", "contexts": contexts}).json()
    bad = client.post("/score", json={"answer": "Compaction doubles the rows 42 times.", "contexts": contexts}).json()
    assert good["faithfulness_score"] > bad["faithfulness_score"]
    assert "42" in bad["sentences"][0]["missing"] and not bad["sentences"][0]["supported"]
    retrieved = client.post("/score", json={"answer": "HNSW builds a layered graph.", "query": "HNSW graph"})
    assert retrieved.status_code == 200 and retrieved.json()["contexts"] >= 1
    neither = client.post("/score", json={"answer": "Something."})
    assert neither.status_code == 422 and neither.json()["field"] == "contexts"


def test_queries_are_logged_and_audited_like_every_other_path(client: TestClient, served: RAGConfig) -> None:
    body = client.post("/query", json={"query": "retention of audit records"}).json()
    records = audit_trail(served).store.records(event_type=AuditEventType.RETRIEVAL)
    mine = [r for r in records if r.details.get("query_id") == body["query_id"]]
    assert len(mine) == 1 and mine[0].actor.endswith("@http"), mine
    client.app.state.service.pipeline.engine.query_log.flush()
    logged = read_query_log(Path(served.quality.query_log_dir)).to_pylist()
    assert [r["query_text"] for r in logged if r["query_id"] == body["query_id"]] == ["retention of audit records"]


@pytest.fixture(scope="module")
def guarded(served: RAGConfig) -> Iterator[TestClient]:
    tokens = [
        {"name": "rita", "role": "reader", "token_sha256": hash_token(READER)},
        {"name": "adam", "role": "admin", "token_sha256": hash_token(ADMIN)},
    ]
    config = served.model_copy(update={"security": served.security.model_validate({"tokens": tokens})})
    with TestClient(create_app(config)) as client:
        yield client


def test_with_tokens_configured_every_data_request_needs_one(guarded: TestClient, served: RAGConfig) -> None:
    for path, method in (("/query", "post"), ("/score", "post"), ("/metrics", "get"), ("/reload", "post")):
        response = guarded.post(path, json={"query": "x"}) if method == "post" else guarded.get(path)
        assert response.status_code == 401, (path, response.text)
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert "Authorization: Bearer" in response.json()["error"]
    wrong = guarded.post("/query", json={"query": "x"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and "unknown" in wrong.json()["error"]
    denials = audit_trail(served).store.records(event_type=AuditEventType.ACCESS)
    assert any(r.outcome == "denied" and r.actor.startswith("unknown-token:") for r in denials)
    assert guarded.get("/health").status_code == 200 and guarded.get("/ready").status_code == 200


def test_readers_query_and_only_admins_reload(guarded: TestClient) -> None:
    reader, admin = ({"Authorization": f"Bearer {t}"} for t in (READER, ADMIN))
    assert guarded.post("/query", json={"query": "alias"}, headers=reader).status_code == 200
    assert scrape(guarded, reader)
    refused = guarded.post("/reload", headers=reader)
    assert refused.status_code == 403 and "rita (role reader)" in refused.json()["error"]
    reloaded = guarded.post("/reload", headers=admin)
    assert reloaded.status_code == 200 and reloaded.json()["version"] == 1


def test_openapi_page_describes_the_endpoints(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    assert {"/query", "/score", "/health", "/ready", "/metrics", "/reload"} <= set(spec["paths"])
    assert client.get("/docs").status_code == 200
