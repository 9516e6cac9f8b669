"""The HTTP query service: one warm engine (model loaded, client-side index built) behind FastAPI.

Every query goes through ``AdvancedRAGPipeline.retrieve``, so the service writes the same query log and audit
records as the CLI and the Python API. The service never guesses: a bad request gets a 4xx naming the field,
Milvus unreachable gets 503 (the next request tries again, so it recovers by itself), an unknown failure gets 500
and is logged. With ``security.tokens`` configured every request needs ``Authorization: Bearer <token>``, except
the liveness and readiness probes and the API's own description, which reveal no data.
"""

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import asdict
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from rag_core.api import AdvancedRAGPipeline, QueryMetrics
from rag_core.compliance.access import denials_audited
from rag_core.config import RAGConfig
from rag_core.index.milvus_env import MilvusException
from rag_core.index.retention import version_number
from rag_core.index.retry import MilvusUnavailableError
from rag_core.observability import metrics
from rag_core.quality.answers import answer_scorer
from rag_core.retrieval.engine import RetrievedChunk
from rag_core.security.actor import acting_channel
from rag_core.security.pii import install_log_redaction
from rag_core.security.rbac import Identity, Permission, acting_as, identify, require
from rag_core.serve.schemas import (
    ErrorResponse,
    QueryMetricsOut,
    QueryRequest,
    QueryResponse,
    ReadyResponse,
    Result,
    ScoreRequest,
    ScoreResponse,
    SentenceOut,
)

log = logging.getLogger(__name__)
# pymilvus logs every failed call at ERROR, with its traceback and the expression, through its own stderr handler.
PYMILVUS_ERRORS = "pymilvus.decorators"
READY_CACHE_S = 2.0  # probes and scrapes every second must not each cost a Milvus round trip
MODES = ("hybrid", "dense", "bm25")
ERRORS = {
    400: {"model": ErrorResponse},
    401: {"model": ErrorResponse},
    403: {"model": ErrorResponse},
    413: {"model": ErrorResponse},
    422: {"model": ErrorResponse},
    503: {"model": ErrorResponse},
}


_callers_filter: ContextVar[bool] = ContextVar("callers_filter", default=False)


class _CallersFilterFailures(logging.Filter):
    """Drops pymilvus's error records (each with a traceback and the expression) of a query that carries the
    caller's filter: Milvus rejecting the filter is the caller's mistake, answered with a 422 and logged in one line
    by ``_query_problem``. Other failures of such a query still reach the log as the service's own lines (retry
    warnings, the traceback of an unexpected error). The flag is a context variable, so it follows the query into
    ``asyncio.to_thread`` and the engine's leg threads, and no other request's records are touched."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not _callers_filter.get()


_CONTAIN_CALLERS_FILTER_FAILURES = _CallersFilterFailures()


class ServiceError(Exception):
    """A request the service refuses, with the status and the field to name."""

    def __init__(
        self, status: int, message: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.field, self.headers = status, field, headers


class Service:
    """What the routes share: the config, the pipeline and its engine, and the last readiness answer."""

    def __init__(self, config: RAGConfig, pipeline: AdvancedRAGPipeline | None = None) -> None:
        self.config = config
        self.pipeline = pipeline or AdvancedRAGPipeline(config)
        self._ready: tuple[float, ReadyResponse] | None = None

    def warm_up(self) -> None:
        """Load the model and the serving state before the first request, so it is not the slow one."""
        self.pipeline.engine.embedder.encode_queries(["warm up"])
        self.readiness(fresh=True)

    def readiness(self, *, fresh: bool = False) -> ReadyResponse:
        cached = self._ready
        if cached and not fresh and time.monotonic() - cached[0] < READY_CACHE_S:
            return cached[1]
        engine, alias = self.pipeline.engine, self.pipeline.collection
        try:
            health = engine.manager.health()
            if not health.ok:
                raise MilvusUnavailableError(health.error)
            state = engine.serving_state()
            rows = engine.manager.count(state.collection)
            version = version_number(state.collection)
            metrics.set_index(alias, rows=rows, version=version)
            answer = ReadyResponse(ready=True, collection=state.collection, version=version, rows=rows)
        except (MilvusUnavailableError, MilvusException, LookupError, ValueError) as error:
            answer = ReadyResponse(ready=False, collection=alias, error=str(error))
        self._ready = (time.monotonic(), answer)
        return answer

    def forget_readiness(self) -> None:
        self._ready = None

    def caller(self, request: Request, permission: Permission, action: str) -> Identity:
        """The identity behind the request's bearer token; local single-user mode when no tokens are configured."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip() if scheme.lower() == "bearer" else ""
        try:
            with denials_audited(self.config):
                identity = identify(self.config, token)
        except PermissionError as error:
            missing = "no bearer token was sent" if not token else "the bearer token is unknown"
            raise ServiceError(
                401,
                f"Unauthorized: {missing}. Send 'Authorization: Bearer <token>' with a token "
                f"listed (by its SHA-256) in security.tokens. ({error})",
                headers={"WWW-Authenticate": "Bearer"},
            ) from None
        try:
            with denials_audited(self.config):
                require(permission, identity, action=action)
        except PermissionError as error:
            raise ServiceError(403, str(error)) from None
        return identity


def create_app(config: RAGConfig, *, pipeline: AdvancedRAGPipeline | None = None, warm_up: bool = True) -> FastAPI:
    install_log_redaction()
    service = Service(config, pipeline)
    limits = config.serve
    logging.getLogger(PYMILVUS_ERRORS).addFilter(_CONTAIN_CALLERS_FILTER_FAILURES)  # once: the same filter object

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        metrics.SLA_SECONDS.set(config.pipeline.target_latency_ms / 1000.0)
        if warm_up:
            try:
                await asyncio.to_thread(service.warm_up)
            except Exception:  # noqa: BLE001 - the service still starts; /ready says what is wrong
                log.exception("warm-up failed; /ready reports why until the index answers")
        yield

    app = FastAPI(
        title="advanced-rag-milvus",
        version="1",
        lifespan=lifespan,
        description="Hybrid (dense + BM25) retrieval over Milvus with per-query quality signals.",
    )
    app.state.service = service

    def authorized(permission: Permission, action: str) -> Callable[[Request], Identity]:
        def dependency(request: Request) -> Identity:
            return service.caller(request, permission, action)

        return dependency

    @app.middleware("http")
    async def limit_and_count(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        acting_channel.set("http")  # audit records name callers as name@http
        size = request.headers.get("content-length")
        if (
            request.method == "POST"
            and (int(size) if size and size.isdigit() else len(await request.body())) > limits.max_body_bytes
        ):
            response: Response = _error(
                ServiceError(
                    413, f"Request body over serve.max_body_bytes ({limits.max_body_bytes} bytes): send less text."
                )
            )
        else:
            response = await call_next(request)
        route = request.scope.get("route")
        metrics.HTTP_REQUESTS.labels(
            path=getattr(route, "path", "unmatched"), method=request.method, status=str(response.status_code)
        ).inc()
        return response

    @app.exception_handler(ServiceError)
    async def refused(_: Request, error: ServiceError) -> JSONResponse:
        return _error(error)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        problem = _validation_problem(error)
        if request.url.path == "/query":
            metrics.observe_failed_query(mode=await _mode_of(request), outcome="invalid")
        return _error(problem)

    @app.get("/health", summary="Liveness: the process answers.")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/ready",
        summary="Readiness: Milvus answers and the alias's serving version is loaded.",
        response_model=ReadyResponse,
        responses={503: {"model": ReadyResponse}},
    )
    async def ready() -> JSONResponse:
        answer = await asyncio.to_thread(service.readiness)
        return JSONResponse(answer.model_dump(), status_code=200 if answer.ready else 503)

    @app.get("/metrics", summary="Prometheus metrics (every worker's, summed).", responses=ERRORS)
    async def prometheus(_: Annotated[Identity, Depends(authorized(Permission.QUERY, "read metrics"))]) -> Response:
        body, content_type = metrics.exposition()
        return Response(body, media_type=content_type)

    @app.post("/query", response_model=QueryResponse, responses=ERRORS, summary="Retrieve with quality signals.")
    async def query(
        body: QueryRequest, identity: Annotated[Identity, Depends(authorized(Permission.QUERY, "query"))]
    ) -> QueryResponse:
        _callers_filter.set(bool(body.filter))  # this request's context only
        with acting_as(identity):
            try:
                _check_limits(body.query, body.top_k, config)
                results, measured = await service.pipeline.retrieve(
                    body.query, top_k=body.top_k, filter=body.filter, mode=body.mode
                )
            except Exception as error:
                problem = error if isinstance(error, ServiceError) else _query_problem(error, body.filter)
                if problem.status == 503:
                    service.forget_readiness()  # the next probe asks Milvus, not a cached "ready"
                metrics.observe_failed_query(
                    mode=body.mode,
                    outcome="invalid" if problem.status < 500 else "unavailable" if problem.status == 503 else "error",
                )
                raise problem from error
        metrics.observe_query(
            mode=body.mode,
            timings_ms=measured.latency_ms,
            cached=measured.cached,
            sla_ms=config.pipeline.target_latency_ms,
            hallucination_risk=measured.hallucination_risk,
            faithfulness_score=measured.faithfulness_score,
        )
        return QueryResponse(
            query=body.query,
            collection=measured.collection,
            query_id=measured.query_id,
            results=[_result(rank, c) for rank, c in enumerate(results, 1)],
            metrics=_metrics(measured),
        )

    @app.post(
        "/score",
        response_model=ScoreResponse,
        responses=ERRORS,
        summary="How well contexts (given, or retrieved for `query`) support an answer.",
    )
    async def score(
        body: ScoreRequest, identity: Annotated[Identity, Depends(authorized(Permission.QUERY, "score an answer"))]
    ) -> ScoreResponse:
        if body.contexts is None and body.query is None:
            raise ServiceError(
                422, "Give `contexts` (the texts the answer came from) or `query` (to retrieve them).", field="contexts"
            )
        contexts = body.contexts
        with acting_as(identity):
            if contexts is None:
                _check_limits(body.query or "", body.top_k, config)
                try:
                    results, _ = await service.pipeline.retrieve(body.query or "", top_k=body.top_k)
                except Exception as error:
                    raise _query_problem(error, "") from error
                contexts = [c.text for c in results]
            scored = await asyncio.to_thread(
                lambda: answer_scorer(service.pipeline.engine).score(body.answer, contexts)
            )
        metrics.ANSWER_FAITHFULNESS.observe(scored.score)
        return ScoreResponse(
            faithfulness_score=scored.score,
            method=scored.method,
            contexts=len(contexts),
            sentences=[
                SentenceOut(
                    sentence=s.sentence,
                    support=s.support,
                    supported=s.supported,
                    context=s.context,
                    missing=list(s.missing),
                )
                for s in scored.sentences
            ],
        )

    @app.post(
        "/reload",
        summary="Re-read the alias and the index now (admin).",
        response_model=ReadyResponse,
        responses=ERRORS,
    )
    async def reload(_: Annotated[Identity, Depends(authorized(Permission.ERASE, "reload the index"))]) -> JSONResponse:
        service.pipeline.engine.invalidate()
        service.pipeline.engine.cache.clear()
        answer = await asyncio.to_thread(service.readiness, fresh=True)
        return JSONResponse(answer.model_dump(), status_code=200 if answer.ready else 503)

    return app


def _check_limits(query: str, top_k: int | None, config: RAGConfig) -> None:
    if top_k is not None and top_k > config.serve.max_top_k:
        raise ServiceError(422, f"top_k: {top_k} is over serve.max_top_k ({config.serve.max_top_k}).", field="top_k")
    if len(query) > config.serve.max_query_chars:
        raise ServiceError(
            422,
            f"query: {len(query)} characters is over serve.max_query_chars ({config.serve.max_query_chars}).",
            field="query",
        )
    if not query.strip():
        raise ServiceError(422, "query: empty; send the question or keywords to search for.", field="query")


def _query_problem(error: Exception, filter_expression: str) -> ServiceError:
    """What a failed retrieval means for the caller: Milvus away (503, retry later) or a bad filter (422)."""
    if isinstance(error, MilvusUnavailableError | LookupError):
        return ServiceError(503, f"The index is unavailable: {error}", headers={"Retry-After": "5"})
    if filter_expression and isinstance(error, MilvusException | ValueError):
        # One line, without the expression or the query: both are the caller's text.
        log.warning("query refused (422): Milvus rejected the request's filter (%s)", type(error).__name__)
        return ServiceError(422, f"filter: Milvus rejected {filter_expression!r}: {error}", field="filter")
    log.exception("query failed")
    return ServiceError(500, f"Internal error ({type(error).__name__}); the service log has the traceback.")


def _validation_problem(error: RequestValidationError) -> ServiceError:
    problems = error.errors()
    if any(p["type"] == "json_invalid" for p in problems):
        return ServiceError(
            400,
            f"Malformed JSON body: {problems[0].get('ctx', {}).get('error', problems[0]['msg'])}. Send a JSON object.",
        )
    fields = [".".join(str(part) for part in p["loc"] if part != "body") for p in problems]
    message = "; ".join(f"{field or 'body'}: {p['msg']}" for field, p in zip(fields, problems, strict=True))
    return ServiceError(422, message, field=fields[0] or None)


async def _mode_of(request: Request) -> str:
    """The mode label of a refused query: the one asked for when it is a known mode (bounded label values)."""
    try:
        asked = (await request.json()).get("mode", "hybrid")
    except (ValueError, AttributeError):
        return "unknown"
    return asked if asked in MODES else "unknown"


def _error(error: ServiceError) -> JSONResponse:
    return JSONResponse(
        ErrorResponse(error=str(error), field=error.field).model_dump(), status_code=error.status, headers=error.headers
    )


def _result(rank: int, chunk: RetrievedChunk) -> Result:
    fields = asdict(chunk)
    del fields["key"]
    return Result(
        rank=rank, score=chunk.rerank_score if chunk.rerank_score is not None else chunk.fused_score, **fields
    )


def _metrics(measured: QueryMetrics) -> QueryMetricsOut:
    return QueryMetricsOut(
        latency_ms=measured.latency_ms,
        total_latency_ms=measured.total_latency_ms,
        sla_met=measured.sla_met,
        cached=measured.cached,
        hallucination_risk=measured.hallucination_risk,
        faithfulness_score=measured.faithfulness_score,
        context_relevance=measured.context_relevance,
        coverage=measured.coverage,
        leg_agreement=measured.leg_agreement,
        signals=measured.quality.as_dict() if measured.quality else {},
    )
