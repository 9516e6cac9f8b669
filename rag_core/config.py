"""One typed configuration tree, read from ``config.yaml``, then ``.env``, then the environment.

Precedence (highest first): environment variables, ``.env`` in the working directory, the YAML file, defaults.
Secrets (passwords, tokens) should only ever come from the environment; they are kept out of ``repr``.
"""

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from dotenv import dotenv_values
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    SerializationInfo,
    ValidationError,
    field_serializer,
    field_validator,
    model_validator,
)

DEFAULT_CONFIG_FILE = "config.yaml"
ENV_PREFIX = "RAG__"  # RAG__EMBEDDING__BATCH_SIZE=32 sets embedding.batch_size


def user_cache_dir(kind: str) -> str:
    """This project's folder for ``kind`` in the user's cache (XDG): what is costly to rebuild and the same for every
    working folder, such as a model's ONNX export."""
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return str(Path(root) / "advanced-rag-milvus" / kind)


class ConfigError(ValueError):
    """A configuration value is missing or wrong; the message names the file and field to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# An access label (a group or a tenant): plain enough to sit inside a Milvus filter expression unescaped.
LABEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:@-]{0,127}$"
Label = Annotated[str, Field(pattern=LABEL_PATTERN)]


SERVER_SCHEMES = ("http", "https", "tcp", "grpc")


class DataConfig(_Section):
    """One folder for everything the project writes, so a deployment moves it with one setting."""

    dir: str = Field(
        "data",
        description="The data folder: each path setting left unset lies under it (milvus.uri: <dir>/milvus.db, "
        "ingestion.storage_dir: <dir>/assets, the query log, drift snapshots, reports, the audit database).",
    )


# The path settings whose defaults lie under data.dir, by section and field: the path below it.
PATHS_UNDER_DATA_DIR = {
    ("milvus", "uri"): "milvus.db",
    ("ingestion", "storage_dir"): "assets",
    ("retrieval", "metrics_dir"): "metrics",
    ("retrieval", "bm25_dir"): "assets/bm25_index",
    ("quality", "query_log_dir"): "query_log",
    ("quality", "reports_dir"): "reports",
    ("quality", "drift_dir"): "drift",
    ("compliance", "database_url"): "compliance/audit.db",  # as an SQLite URL
    ("compliance", "reports_dir"): "compliance/reports",
}


def under_data_dir(data_dir: str, section: str, key: str) -> str:
    path = f"{data_dir.rstrip('/') or '/'}/{PATHS_UNDER_DATA_DIR[(section, key)]}"
    return f"sqlite:///{path}" if key == "database_url" else path


class MilvusConfig(_Section):
    uri: str = Field(
        "data/milvus.db",
        description="A file path = Milvus Lite; http(s)://host:19530 = server. Default: <data.dir>/milvus.db.",
    )

    @field_validator("uri")
    @classmethod
    def _known_scheme(cls, uri: str) -> str:
        """A mistyped scheme (``htp://``) would otherwise be taken for a Lite file name and fail deep in gRPC."""
        scheme, separator, _ = uri.partition("://")
        if separator and scheme.lower() not in SERVER_SCHEMES:
            raise ValueError(
                f"{uri!r} has the unknown scheme {scheme!r}; use a file path for Milvus Lite "
                "(data/milvus.db) or http://host:19530 (https, tcp, grpc) for a Milvus server"
            )
        return uri

    user: str = Field("", description="User name on a Milvus server with authentication.")
    password: SecretStr = Field(SecretStr(""), description="That user's password.")
    token: SecretStr = Field(
        SecretStr(""), description="A Milvus token (user:password or an API key), instead of user and password."
    )
    db_name: str = Field("", description="Milvus database (server only); empty = the default one.")
    collection: str = Field(
        "semantic_index", description="The alias readers use; versions live in <collection>__v1, __v2, ..."
    )
    secure: bool = Field(False, description="TLS to the server.")
    server_pem_path: str = Field("", description="One-way TLS: the server's certificate.")
    server_name: str = Field("", description="The name the server's certificate was issued for.")
    ca_pem_path: str = Field("", description="Two-way TLS: the CA certificate.")
    client_pem_path: str = Field("", description="Two-way TLS: the client certificate.")
    client_key_path: str = Field("", description="Two-way TLS: the client certificate's key.")
    timeout_s: float = Field(10.0, gt=0, description="Seconds each call to Milvus may take.")
    retry_attempts: int = Field(
        4,
        ge=1,
        description="An unreachable Milvus is tried this many times in all, then the call fails naming the URI.",
    )
    retry_backoff_s: float = Field(
        0.5, ge=0, description="Wait before the first retry, doubled before each next one (0.5 s, 1 s, 2 s, ...)."
    )
    lock_timeout_s: float = Field(
        60.0,
        ge=0,
        description="Milvus Lite serves one process at a time: how long "
        "another one waits for the file before giving up.",
    )
    enable_sharding: bool = Field(False, description="Create new collection versions with num_shards shards.")
    num_shards: int = Field(
        1, ge=1, le=64, description="Shards per new collection version when enable_sharding is true."
    )
    consistency_level: Literal["Strong", "Bounded", "Session", "Eventually"] = Field(
        "Bounded", description="For searches: Strong waits until every earlier write is visible."
    )

    @field_serializer("password", "token", when_used="json")
    def _secret(self, value: SecretStr, info: SerializationInfo) -> str:
        """Masked in JSON unless asked for with context={"secrets": True} (to hand the config to another process)."""
        return value.get_secret_value() if (info.context or {}).get("secrets") else str(value)


class IndexConfig(_Section):
    index_type: Literal["HNSW"] = Field("HNSW", description="The dense vector index.")
    metric_type: Literal["COSINE", "IP", "L2"] = Field(
        "COSINE", description="Vector similarity; the embeddings are normalised, so COSINE and IP rank the same."
    )
    M: int = Field(
        16,
        ge=2,
        le=2048,
        description="HNSW graph degree: higher = more accurate, more memory (guide: 8 fast ... 32 accurate).",
    )
    efConstruction: int = Field(
        200, ge=8, description="HNSW build-time search width (guide: 100 fast ... 400 accurate)."
    )
    ef: int = Field(64, ge=1, description="HNSW query-time search width; raised to top_k when smaller.")
    # bm25s's library defaults: no other value beat them on every fold of SciFact train (benchmarks/tune_bm25.py,
    # benchmarks/RESULTS.md).
    bm25_k1: float = Field(
        1.5, gt=0, description="BM25 term-frequency saturation, for both BM25 paths; bm25s's default."
    )
    bm25_b: float = Field(
        0.75, ge=0, le=1, description="BM25 length normalisation, for both BM25 paths; bm25s's default."
    )
    keep_versions: int = Field(
        3,
        ge=1,
        description="Complete versions kept after a promotion (the serving one "
        "and the newest before it, for rag rollback); older ones are "
        "dropped.",
    )


class EmbeddingConfig(_Section):
    model_config = ConfigDict(extra="forbid", frozen=True)  # hashable: one loaded model per configuration
    model: str = Field("bundled:all-MiniLM-L6-v2", description="bundled:all-MiniLM-L6-v2, a model name, or a path.")
    device: str = Field("auto", description="auto = CUDA when present, else CPU; or cpu, cuda, cuda:1, mps.")
    batch_size: int = Field(
        16,
        ge=1,
        description="Texts per forward pass: 16 encoded SciFact chunks fastest with "
        "either backend (benchmarks.onnx_backend's sweep).",
    )
    normalize: bool = Field(True, description="Scale vectors to unit length, as COSINE and IP ranking expect.")
    query_prompt: str = Field(
        "", description='Put before each query, overriding the model\'s own query prompt (e.g. "query: " for E5).'
    )
    document_prompt: str = Field(
        "", description='Put before each chunk, overriding the model\'s own document prompt (e.g. "passage: " for E5).'
    )
    backend: Literal["auto", "torch", "onnx"] = Field(
        "auto",
        description="What runs the model: onnx = ONNX Runtime on an export of it (same vectors, faster); "
        "auto = onnx when onnxruntime is installed and the model is transformer + pooling.",
    )
    onnx_cache_dir: str = Field(
        default_factory=lambda: user_cache_dir("onnx"),
        description=(
            "Where ONNX exports are kept, one folder per model fingerprint. Default: the user's cache folder "
            "($XDG_CACHE_HOME or ~/.cache)/advanced-rag-milvus/onnx, so every working folder shares one export."
        ),
    )
    precision: Literal["float32", "int8"] = Field(
        "float32",
        description="int8: ONNX Runtime on a copy of the export with int8 weights, about 2x the float32 "
        "throughput on CPUs with VNNI, SciFact nDCG@10 0.003 lower (benchmarks.onnx_backend); needs the "
        "onnx or auto backend. A change of precision builds a new index version.",
    )
    query_precision: Literal["auto", "float32", "bfloat16"] = Field(
        "auto",
        description="Precision of the torch query encoder only (documents are always float32). auto = "
        "bfloat16 on CPUs with native bfloat16 (AVX512-BF16, AMX), float32 elsewhere.",
    )

    @model_validator(mode="after")
    def _int8_runs_on_onnx(self) -> "EmbeddingConfig":
        if self.precision == "int8" and self.backend == "torch":
            raise ValueError(
                "embedding.precision int8 runs on ONNX Runtime only: set embedding.backend to onnx or auto, or "
                "embedding.precision to float32."
            )
        return self


class ChunkingConfig(_Section):
    chunk_size: int = Field(200, ge=16, description="Tokens per chunk, at most the model's max sequence length.")
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by consecutive chunks; below chunk_size.")

    @model_validator(mode="after")
    def _overlap_below_size(self) -> "ChunkingConfig":
        if self.chunk_overlap >= self.chunk_size:
            raise ValueError(
                f"chunk_overlap ({self.chunk_overlap}) must be smaller than chunk_size ({self.chunk_size})"
            )
        return self


class IngestionConfig(_Section):
    docs_dir: str = Field("examples/corpus", description="The raw documents folder the assets and the sensor watch.")
    storage_dir: str = Field("data/assets", description="Where the Parquet asset files live (<data.dir>/assets).")
    max_file_bytes: int = Field(
        50 * 1024 * 1024, ge=1, description="Larger files are skipped and reported (for .jsonl(.gz): per line)."
    )
    record_batch_size: int = Field(512, ge=1, description="Rows per streamed batch: memory follows this.")
    partitions: int = Field(
        1,
        ge=1,
        description="Dagster partitions of the ingestion assets: the corpus is split "
        "by a stable hash of document id, one run per bucket, so N runs "
        "can go in parallel on N workers. 1: one unpartitioned run.",
    )
    groups: list[Label] = Field(
        default_factory=list,
        description="Who may read the docs_dir corpus (a file's NAME.access.json sidecar wins); empty: "
        "access.default_group.",
    )
    tenant: Label | None = Field(
        None, description="Whose the docs_dir corpus is (a sidecar wins); unset: access.default_tenant."
    )


DEFAULT_HYBRID_ALPHA = 0.7


class PipelineConfig(_Section):
    target_latency_ms: float = Field(
        80.0, gt=0, description="The retrieval SLA, per query, end to end: what SLA compliance is measured against."
    )
    # No library default exists: tuned on SciFact train (best mean over 5 folds, and the choice on every
    # leave-one-fold-out split; benchmarks/tune_bm25.py).
    hybrid_alpha: Annotated[float, Field(ge=0, le=1)] | Literal["auto"] = Field(
        DEFAULT_HYBRID_ALPHA,
        description="Dense weight in weighted fusion, 0 to 1 (1 = dense only, 0 = BM25 only); tuned on SciFact train "
        "folds. "
        "auto: chosen for each version on its probe set at promotion, kept only where it beats this default there "
        "(docs/operations.md).",
    )
    top_k: int = Field(20, ge=1, description="Candidates retrieved before reranking.")
    rerank_top_k: int = Field(5, ge=1, description="Results returned after reranking.")


class RetrievalConfig(_Section):
    lexical_backend: Literal["auto", "milvus", "local"] = Field(
        "auto", description="auto: Milvus BM25 on servers that have it (>= 2.5), else the client-side index."
    )
    dense_search: Literal["auto", "milvus", "client"] = Field(
        "auto",
        description="auto: exact search over the client-side index's copy of the vectors on Milvus Lite "
        "(its own search walks rows in Python), Milvus's HNSW on servers; a filter masks the copy's rows "
        "before its top is taken.",
    )
    fusion: Literal["weighted", "rrf"] = Field(
        "weighted", description="weighted: normalised scores, hybrid_alpha = dense weight; rrf: reciprocal rank fusion."
    )
    normalization: Literal["minmax", "zscore", "corpus"] = Field(
        "corpus",
        description="corpus: z-scores against each leg's scores over the whole index (chosen on SciFact "
        "train; needs the client-side index, else zscore); zscore or minmax: within the "
        "candidates.",
    )
    rrf_k: int = Field(
        60, ge=1, description="k of reciprocal rank fusion, 1 / (k + rank): larger flattens the gap between ranks."
    )
    candidates: int = Field(100, ge=1, description="Hits fetched from each leg before fusion.")
    document_level: bool = Field(False, description="Return the best chunk per document only.")
    cache_size: int = Field(
        1024, ge=0, description="Query cache entries (0 = off); keyed on query, parameters and index version."
    )
    cache_ttl_s: float = Field(300.0, ge=0, description="Seconds a cached result is served.")
    latency_window: int = Field(1000, ge=1, description="Queries in the rolling p50/p95/p99 latency window.")
    metrics_dir: str = Field("data/metrics", description="Where per-stage latency is persisted (<data.dir>/metrics).")
    bm25_dir: str = Field(
        "data/assets/bm25_index", description="The client-side BM25 index (<data.dir>/assets/bm25_index)."
    )
    bm25_refresh_s: float = Field(5.0, ge=0, description="How often the client-side index is checked for staleness.")


class RerankingConfig(_Section):
    method: Literal["none", "cross_encoder"] = Field(
        "none", description="cross_encoder: rerank the top_k with reranking.model; none: keep fused order."
    )
    model: str = Field("", description="A CrossEncoder model name or path.")
    device: str = Field("auto", description="auto = CUDA when present, else CPU; or cpu, cuda, cuda:1, mps.")
    batch_size: int = Field(32, ge=1, description="Query-passage pairs per cross-encoder forward pass.")
    max_length: int | None = Field(None, description="Tokens per query-passage pair; null: the model's own limit.")


class QualityConfig(_Section):
    query_log: bool = Field(True, description="Append every retrieval to the query log (drift, reports, audit).")
    query_log_dir: str = Field(
        "data/query_log", description="Parquet files partitioned by day, date=YYYY-MM-DD (<data.dir>/query_log)."
    )
    log_query_text: bool = Field(False, description="Keep the query text itself; otherwise only a salted hash.")
    query_log_flush_s: float = Field(1.0, gt=0, description="How often the background writer writes a file.")
    reports_dir: str = Field(
        "data/reports", description="Where reports are written, performance/YYYY-MM.png (<data.dir>/reports)."
    )
    nli_model: str | None = Field(
        None,
        description="A cross-encoder NLI model (name or path) scoring answers' "
        "faithfulness by entailment; null: embeddings + lexical support.",
    )
    drift_dir: str = Field(
        "data/drift", description="Drift reference snapshots, one <collection>.npz per version (<data.dir>/drift)."
    )


class QualityGateConfig(_Section):
    """What a re-indexed candidate version must show before the alias moves to it (``rag_core.quality.gate``)."""

    dataset: str = Field(
        "",
        description="A BEIR folder whose judged queries label this index's documents: the "
        "gate compares nDCG@10. Empty: probe queries' hallucination_risk instead.",
    )
    split: str = Field("test", description="The qrels split of the gate dataset (qrels/<split>.tsv).")
    max_ndcg_drop: float = Field(
        0.01, ge=0, description="How far the candidate's nDCG@10 may fall below the serving version's."
    )
    max_risk_rise: float = Field(
        0.02,
        ge=0,
        description="How far the probe queries' mean hallucination_risk may "
        "rise above the serving version's (no gate dataset).",
    )
    probe_queries: int = Field(
        50,
        ge=1,
        description="Probe queries for the hallucination_risk gate, when there is neither a gate dataset nor a "
        "probe set.",
    )
    probe_set_size: int = Field(
        200,
        ge=0,
        description="Probes built from the corpus at each promotion (`rag probes build`): queries derived from "
        "sampled chunks, their documents the known answers. Without a gate dataset the gate compares nDCG@10 on "
        "them. 0: no probe set.",
    )


class SchedulesConfig(_Section):
    timezone: str = Field("UTC", description="The timezone schedules' cron expressions are read in (IANA name).")
    compaction_cron: str = Field("0 3 * * 0", description="Weekly compaction: Sunday 03:00 by default.")
    drift_cron: str = Field("0 4 * * 1", description="Weekly drift report: Monday 04:00 by default.")
    performance_cron: str = Field(
        "0 5 1 * *", description="Monthly performance report of the month before: the 1st at 05:00 by default."
    )
    reindex_sensor_interval_s: int = Field(
        300, ge=30, description="How often the reindex sensor compares the latest drift report and the index settings."
    )

    @model_validator(mode="after")
    def _known_timezone(self) -> "SchedulesConfig":
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown timezone {self.timezone!r}; give an IANA name such as UTC or Europe/Berlin"
            ) from None
        return self


class ComplianceConfig(_Section):
    """The audit trail's store, its checkpoints and how long each kind of record is kept (rag_core.compliance)."""

    database_url: str = Field(
        "sqlite:///data/compliance/audit.db",
        description="SQLAlchemy URL of the audit store: an SQLite file (WAL) by default "
        "(<data.dir>/compliance/audit.db), postgresql://... in production.",
    )
    checkpoint_every: int = Field(
        100, ge=1, description="Records between two checkpoints (HMAC-signed under $AUDIT_HMAC_KEY when it is set)."
    )
    reports_dir: str = Field(
        "data/compliance/reports",
        description="Monthly compliance reports, JSON + Markdown (<data.dir>/compliance/reports).",
    )
    retention_days: dict[str, int] = Field(
        default_factory=lambda: {"retrieval": 90, "query_log": 90, "version_update": 7 * 365, "erasure": 7 * 365},
        description="Days each audit event type (lower-case name) and the query log ('query_log') are kept; a "
        "type not named here is kept for default_retention_days.",
    )
    default_retention_days: int = Field(
        7 * 365, ge=1, description="Days an event type not named in retention_days is kept (7 years)."
    )
    retention_cron: str = Field("30 2 * * *", description="Daily retention run: 02:30 by default.")
    compliance_report_cron: str = Field(
        "0 6 1 * *", description="Monthly compliance report of the month before: the 1st at 06:00 by default."
    )


class TokenConfig(_Section):
    """One API identity: its name, its role, and the SHA-256 of its token (``rag token hash`` prints it); and, as a
    principal, the groups and tenant whose documents its queries may return (docs/access.md)."""

    name: str = Field(min_length=1, description="Who the caller is, as the audit trail records it.")
    role: Literal["admin", "auditor", "operator", "reader"] = Field(
        description="What the caller may do (docs/security.md)."
    )
    token_sha256: str = Field(
        pattern=r"^[0-9a-f]{64}$", description="Lower-case hex SHA-256 of the token; the token itself is never stored."
    )
    groups: list[Label] | None = Field(
        None,
        min_length=1,
        description="Groups whose documents it may read; unset: access.default_group. An admin reads every group "
        "of its tenant.",
    )
    tenant: Label | None = Field(None, description="The tenant it belongs to; unset: access.default_tenant.")
    all_tenants: bool = Field(False, description="An admin of every tenant (admins only); else of its own tenant.")

    @model_validator(mode="after")
    def _global_admins_only(self) -> "TokenConfig":
        if self.all_tenants and self.role != "admin":
            raise ValueError(f"token {self.name!r}: all_tenants is for admins only, and its role is {self.role}")
        return self


class SecurityConfig(_Section):
    """Who may do what (rag_core.security.rbac). No tokens: local single-user mode, every action allowed."""

    tokens: list[TokenConfig] = Field(
        default_factory=list,
        description="API identities; the caller's token comes from $RAG_API_TOKEN (or the API's token=).",
    )


class AccessConfig(_Section):
    """Which documents a query may return (rag_core.security.labels; docs/access.md). Every document carries groups
    and a tenant; a principal reads a document of its tenant sharing one of its groups (an admin: any group)."""

    default_group: Label = Field(
        "everyone", description="The group of a document given none, and of a token given none: all read all."
    )
    default_tenant: Label = Field("default", description="The tenant of a document or token given none.")
    groups: list[Label] = Field(
        default_factory=list,
        description="The known groups; a label or token naming another is refused. Empty: any name is accepted.",
    )
    tenants: list[Label] = Field(
        default_factory=list,
        description="The known tenants; a label or token naming another is refused. Empty: any name is accepted.",
    )
    local_tenant: Label | None = Field(
        None,
        description="Local single-user mode (no tokens): the OS user is an admin of this tenant; unset: of every "
        "tenant.",
    )


class ServeConfig(_Section):
    """``rag serve``: the HTTP query service (rag_core.serve). Port 9090 is the target of the guide's prometheus.yml."""

    host: str = Field("127.0.0.1", description="Loopback by default: bind 0.0.0.0 only behind tokens or a proxy.")
    port: int = Field(
        9090, ge=1, le=65535, description="The HTTP port; the target of the guide's prometheus.yml (/metrics)."
    )
    workers: int = Field(1, ge=1, description="Worker processes; each holds its own warm engine and model.")
    max_top_k: int = Field(100, ge=1, description="The largest top_k a request may ask for.")
    max_query_chars: int = Field(2000, ge=1, description="The longest query a request may send.")
    max_body_bytes: int = Field(64 * 1024, ge=1024, description="Larger request bodies are refused with 413.")
    drain_timeout_s: float = Field(30.0, ge=0, description="On SIGTERM, how long in-flight requests may finish.")


class ObservabilityConfig(_Section):
    """Where batch runs (Dagster jobs) push their outcome metrics; ``rag serve`` is scraped on /metrics instead."""

    pushgateway_url: str = Field(
        "", description="A Prometheus Pushgateway, e.g. http://pushgateway:9091; empty: batch runs push nothing."
    )
    push_timeout_s: float = Field(
        5.0, gt=0, description="A push that takes longer is logged and dropped: metrics never fail a run."
    )


class RAGConfig(_Section):
    data: DataConfig = Field(DataConfig(), description="Where the project writes what it keeps.")
    milvus: MilvusConfig = Field(MilvusConfig(), description="The store: a Milvus Lite file or a Milvus server.")
    index: IndexConfig = Field(IndexConfig(), description="Each collection version's HNSW index and BM25 scoring.")
    embedding: EmbeddingConfig = Field(EmbeddingConfig(), description="The embedding model and what runs it.")
    chunking: ChunkingConfig = Field(ChunkingConfig(), description="How documents are cut into chunks.")
    ingestion: IngestionConfig = Field(
        IngestionConfig(), description="Where documents come from and how they stream in."
    )
    pipeline: PipelineConfig = Field(
        PipelineConfig(), description="Fusion weight, result counts and the latency SLA of every query."
    )
    retrieval: RetrievalConfig = Field(
        RetrievalConfig(),
        description="How the dense and BM25 legs search and fuse; the query cache and latency tracking.",
    )
    reranking: RerankingConfig = Field(RerankingConfig(), description="The optional cross-encoder after fusion.")
    quality: QualityConfig = Field(QualityConfig(), description="The query log, the reports and answer faithfulness.")
    quality_gate: QualityGateConfig = Field(
        QualityGateConfig(), description="What a re-indexed candidate must show before the alias moves to it."
    )
    schedules: SchedulesConfig = Field(
        SchedulesConfig(), description="When the Dagster schedules and the reindex sensor run."
    )
    compliance: ComplianceConfig = Field(
        ComplianceConfig(),
        description="The tamper-evident audit trail (docs/compliance.md); $AUDIT_HMAC_KEY signs its checkpoints.",
    )
    security: SecurityConfig = Field(
        SecurityConfig(),
        description="Who may do what (docs/security.md); no tokens: local single-user mode, no checks.",
    )
    access: AccessConfig = Field(
        AccessConfig(), description="Which documents each principal's queries may return (docs/access.md)."
    )
    serve: ServeConfig = Field(ServeConfig(), description="`rag serve`, the HTTP query service (docs/serving.md).")
    observability: ObservabilityConfig = Field(
        ObservabilityConfig(), description="Where Dagster runs push their outcome metrics."
    )

    @model_validator(mode="after")
    def _known_labels(self) -> "RAGConfig":
        """A token naming a group or tenant the config does not know is a typo that would read nothing."""
        access = self.access
        for token in self.security.tokens:
            unknown_groups = sorted(set(token.groups or ()) - set(access.groups)) if access.groups else []
            if unknown_groups:
                raise ValueError(
                    f"security.tokens {token.name!r}: unknown groups {unknown_groups}; access.groups lists "
                    f"{access.groups}. Fix the token's groups or add them to access.groups."
                )
            if access.tenants and token.tenant is not None and token.tenant not in access.tenants:
                raise ValueError(
                    f"security.tokens {token.name!r}: unknown tenant {token.tenant!r}; access.tenants lists "
                    f"{access.tenants}. Fix the token's tenant or add it to access.tenants."
                )
        return self

    @model_validator(mode="before")
    @classmethod
    def _paths_under_data_dir(cls, raw: Any) -> Any:
        """Each path setting not given explicitly lies under ``data.dir`` (the defaults: under ``data/``)."""
        if not isinstance(raw, dict):
            return raw
        data = raw.get("data") or {}
        data_dir = data.dir if isinstance(data, DataConfig) else str(data.get("dir", DataConfig().dir))
        derived = dict(raw)
        for section, key in PATHS_UNDER_DATA_DIR:
            given = derived.get(section) or {}
            value = under_data_dir(data_dir, section, key)
            if isinstance(given, BaseModel):
                if key not in given.model_fields_set:
                    derived[section] = given.model_copy(update={key: value})
            elif key not in given:
                derived[section] = {**given, key: value}
        return derived


def load_config(path: str | Path | None = None, *, environ: dict[str, str] | None = None) -> RAGConfig:
    """Build the config from ``path`` (default: ``$RAG_CONFIG`` or ``./config.yaml`` when present).

    A missing default file is fine (defaults apply); a missing file that was asked for by name is an error.
    """
    env = dict(os.environ if environ is None else environ)
    if Path(".env").is_file():
        env = {**{k: v for k, v in dotenv_values(".env").items() if v is not None}, **env}
    explicit = path or env.get("RAG_CONFIG")
    config_path = Path(explicit or DEFAULT_CONFIG_FILE)
    raw: dict[str, Any] = _read_yaml(config_path) if (explicit or config_path.is_file()) else {}
    _apply_env(raw, env)
    try:
        return RAGConfig.model_validate(raw)
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())
        origin = str(config_path) if config_path.is_file() else "defaults"
        raise ConfigError(f"Invalid configuration ({origin} + environment): {problems}") from None


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ConfigError(f"Config file {path} not found; copy config.template.yaml to {path} or unset RAG_CONFIG.")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise ConfigError(f"Config file {path} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"Config file {path} must hold a mapping of sections (milvus:, embedding:, ...).")
    return data


# The operations guide's variables, read besides RAG__SECTION__KEY: milvus fields they set (RAG__MILVUS__<FIELD>
# wins over them), the two that build a server URI (MILVUS_URI wins over them), and the secrets (first one set wins).
GUIDE_VARIABLES = {"uri": "MILVUS_URI", "user": "MILVUS_USER", "db_name": "MILVUS_DB_NAME"}
HOST_PORT_VARIABLES = ("MILVUS_HOST", "MILVUS_PORT")
SECRET_VARIABLES = {
    "password": ("MILVUS_PASSWORD", "RAG__MILVUS__PASSWORD"),
    "token": ("MILVUS_TOKEN", "RAG__MILVUS__TOKEN"),
}


def secrets_from_environment(env: Mapping[str, str]) -> dict[str, str]:
    """Milvus credentials set in ``env``, by field: the guide's variables, or their RAG__MILVUS__ spelling."""
    found = {
        field: next((env[v] for v in variables if env.get(v)), "") for field, variables in SECRET_VARIABLES.items()
    }
    return {field: value for field, value in found.items() if value}


def _apply_env(raw: dict[str, Any], env: dict[str, str]) -> None:
    """The guide's variables (MILVUS_URI, MILVUS_HOST/PORT, credentials), then generic RAG__SECTION__KEY ones."""
    milvus = raw.setdefault("milvus", {})
    host, port = HOST_PORT_VARIABLES
    if env.get(host) or env.get(port):
        milvus["uri"] = f"http://{env.get(host, 'localhost')}:{env.get(port, '19530')}"
    for field, variable in GUIDE_VARIABLES.items():
        if env.get(variable):
            milvus[field] = env[variable]
    for key, value in env.items():
        if key.startswith(ENV_PREFIX):
            *sections, leaf = key[len(ENV_PREFIX) :].lower().split("__")
            node = raw
            for section in sections:
                node = node.setdefault(section, {})
            node[leaf] = value
    milvus.update(secrets_from_environment(env))
