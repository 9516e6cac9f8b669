"""What ``rag serve`` accepts and answers: pydantic models, so FastAPI validates requests and documents the API.

Limits that depend on the config (largest top_k, longest query) are checked by the app, not here, so one set of
models serves every configuration and the OpenAPI page stays the same.
"""

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class _Request(BaseModel):
    # A misspelt field is an error, not silently ignored; strict: "3" or true for a number is refused, not coerced.
    model_config = ConfigDict(extra="forbid", strict=True)


class QueryRequest(_Request):
    query: str = Field(min_length=1, description="The question or keywords.")
    top_k: int | None = Field(
        None, gt=0, description="Results to return (default: pipeline.rerank_top_k; at most serve.max_top_k)."
    )
    mode: Literal["hybrid", "dense", "bm25"] = "hybrid"
    filter: str = Field("", description='A Milvus boolean expression on the chunk fields, e.g. doc_id == "a".')


class ScoreRequest(_Request):
    answer: str = Field(min_length=1, description="A generated answer to check, sentence by sentence.")
    contexts: list[str] | None = Field(
        None,
        min_length=1,
        description="The texts the answer was generated from; when absent, `query` is retrieved first.",
    )
    query: str | None = Field(
        None, min_length=1, description="Retrieve the contexts for this query (when no `contexts` are given)."
    )
    top_k: int | None = Field(None, gt=0)


class Result(BaseModel):
    rank: int
    chunk_id: str
    doc_id: str
    source: str
    text: str
    position: int
    metadata: dict
    score: float = Field(description="What ranked it: the reranker's score where it ran, else the fused score.")
    fused_score: float
    dense_score: float | None
    dense_rank: int | None
    lexical_score: float | None
    lexical_rank: int | None
    rerank_score: float | None


class QueryMetricsOut(BaseModel):
    latency_ms: dict[str, float]
    total_latency_ms: float
    sla_met: bool
    cached: bool
    hallucination_risk: float
    faithfulness_score: float
    context_relevance: float | None
    coverage: float
    leg_agreement: float | None
    signals: dict[str, float] = Field(description="Every component behind the two signals (docs/quality.md).")


class QueryResponse(BaseModel):
    query: str
    collection: str
    query_id: str
    results: list[Result]
    metrics: QueryMetricsOut


class SentenceOut(BaseModel):
    sentence: str
    support: float
    supported: bool
    context: int | None
    missing: list[str]


class ScoreResponse(BaseModel):
    faithfulness_score: float
    method: str
    sentences: list[SentenceOut]
    contexts: int


class ReadyResponse(BaseModel):
    ready: bool
    collection: str
    version: int | None = None
    rows: int | None = None
    error: str = ""


class ErrorResponse(BaseModel):
    error: str
    field: str | None = None
