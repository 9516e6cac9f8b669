"""Milvus collections behind an alias: versioned, synced by upsert/delete, probed for what the server can do.

A URI that is a file path opens Milvus Lite (the embedded default); ``http(s)://host:19530`` opens a Milvus server
or cluster. A full rebuild writes ``NAME__vN`` and moves the alias ``NAME`` to it in one step, so readers never see
a half-built index and the previous version stays for rollback.
"""

import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pymilvus import DataType, Function, FunctionType, MilvusClient

from rag_core.config import IndexConfig, MilvusConfig, load_config
from rag_core.index.version import IndexVersion
from rag_core.index.retry import call_with_retry

T = TypeVar("T")
# Servers before 2.4 and Milvus Lite give no iterator timestamp; pymilvus then uses the client's clock, which is
# what a strong-consistency listing wants anyway, and warns about it on every sync.
logging.getLogger("pymilvus.client.iterator.query_iterator").setLevel(logging.ERROR)
log = logging.getLogger(__name__)
VERSION_SEPARATOR = "__v"
TEXT_MAX_BYTES = 65535
ID_QUERY_BATCH = 10000
ALIAS_REFRESH_S = 1.0
EXPORT_ATTEMPTS = 5
OUTPUT_FIELDS = ["chunk_id", "doc_id", "position", "text", "metadata"]
SPARSE_FIELD = "sparse"
# Stemming and stopwords like the client-side index; Milvus Lite 3.2 ignores these filters (lowercase only).
ANALYZER = {"tokenizer": "standard",
            "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]}, {"type": "stemmer", "language": "english"}]}


@dataclass(frozen=True)
class ServerCapabilities:
    version: str
    is_lite: bool
    supports_bm25: bool


@dataclass(frozen=True)
class CollectionStats:
    name: str
    collection: str
    row_count: int
    index_version: IndexVersion | None
    versions: list[str]


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    uri: str
    server_version: str = ""
    latency_ms: float = 0.0
    collections: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class SearchHit:
    chunk_id: str
    doc_id: str
    text: str
    score: float
    position: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class CompactionResult:
    collection: str
    job_id: int
    state: str


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


def parse_version(text: str) -> tuple[int, int]:
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class MilvusIndexManager:
    """One Milvus endpoint; every call is retried through short outages (see ``rag_core.index.retry``)."""

    def __init__(
        self,
        config: MilvusConfig | None = None,
        index: IndexConfig | None = None,
        *,
        uri: str | None = None,
        enable_sharding: bool | None = None,
        num_shards: int | None = None,
    ) -> None:
        if config is None or index is None:
            loaded = load_config()
            config, index = config or loaded.milvus, index or loaded.index
        updates = {k: v for k, v in {"uri": uri, "enable_sharding": enable_sharding, "num_shards": num_shards}.items()
                   if v is not None}
        self.config = config.model_copy(update=updates)
        self.index = index
        self._loaded: set[str] = set()
        self._serving: dict[str, tuple[float, str]] = {}

    @property
    def uri(self) -> str:
        return self.config.uri

    @property
    def shards(self) -> int:
        return self.config.num_shards if self.config.enable_sharding else 1

    @cached_property
    def client(self) -> MilvusClient:
        return self._retry("connect", self._connect)

    def _connect(self) -> MilvusClient:
        c = self.config
        if not is_server_uri(c.uri):
            Path(c.uri).expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            return MilvusClient(str(Path(c.uri).expanduser().resolve()))
        tls = {k: v for k, v in {"secure": c.secure or None, "server_pem_path": c.server_pem_path,
                                 "server_name": c.server_name, "ca_pem_path": c.ca_pem_path,
                                 "client_pem_path": c.client_pem_path, "client_key_path": c.client_key_path}.items() if v}
        return MilvusClient(uri=c.uri, user=c.user, password=c.password.get_secret_value(),
                            token=c.token.get_secret_value(), db_name=c.db_name, timeout=c.timeout_s, **tls)

    def _retry(self, what: str, operation: Callable[[], T]) -> T:
        return call_with_retry(operation, what=what, uri=self.uri, attempts=self.config.retry_attempts,
                               backoff_s=self.config.retry_backoff_s)

    # --- what the server is -------------------------------------------------------------------------------------

    @cached_property
    def capabilities(self) -> ServerCapabilities:
        """BM25 functions exist in Milvus Lite 3.x and Milvus >= 2.5; 2.3/2.4 need the client-side BM25 index."""
        version = str(self._retry("get_server_version", self.client.get_server_version))
        is_lite = "milvus_lite" in version or not is_server_uri(self.uri)
        major_minor = parse_version(version.split("milvus_lite-")[-1])
        supports_bm25 = major_minor >= (3, 0) if is_lite else major_minor >= (2, 5)
        return ServerCapabilities(version=version, is_lite=is_lite, supports_bm25=supports_bm25)

    def health(self) -> HealthReport:
        started = time.perf_counter()
        try:
            collections = self._retry("list_collections", lambda: self.client.list_collections())
            version = self.capabilities.version
        except Exception as error:  # noqa: BLE001 - a health report states the failure instead of raising
            return HealthReport(ok=False, uri=self.uri, error=str(error))
        return HealthReport(ok=True, uri=self.uri, server_version=version,
                            latency_ms=(time.perf_counter() - started) * 1000, collections=sorted(collections))

    # --- versions and the alias ---------------------------------------------------------------------------------

    def resolve(self, name: str) -> str | None:
        """The collection an alias points at, the name itself for a plain collection, None when neither exists."""
        if self._alias_exists(name):
            return self._retry("describe_alias", lambda: self.client.describe_alias(name))["collection_name"]
        return name if self._retry("has_collection", lambda: self.client.has_collection(name)) else None

    def serving(self, name: str) -> str:
        """The loaded collection queries on ``name`` go to, re-resolved at most every ``ALIAS_REFRESH_S``.

        Saves two round trips per query; a promotion elsewhere is seen within that interval.
        """
        now = time.monotonic()
        cached = self._serving.get(name)
        if cached and now - cached[0] < ALIAS_REFRESH_S:
            return cached[1]
        collection = self.resolve(name)
        if collection is None:
            raise LookupError(f"No collection or alias {name!r} at {self.uri}; run the ingestion first (make run).")
        self._ensure_loaded(collection)
        self._serving[name] = (now, collection)
        return collection

    def forget_serving(self) -> None:
        self._serving.clear()

    def versions(self, alias: str) -> list[str]:
        prefix = f"{alias}{VERSION_SEPARATOR}"
        names = [n for n in self._retry("list_collections", self.client.list_collections)
                 if n.startswith(prefix) and n[len(prefix):].isdigit()]
        return sorted(names, key=lambda n: int(n[len(prefix):]))

    def index_version(self, collection: str) -> IndexVersion | None:
        described = self._retry("describe_collection", lambda: self.client.describe_collection(collection))
        return IndexVersion.from_properties(described.get("properties") or {})

    def version_for(self, model: str, dimension: int, chunking: str) -> IndexVersion:
        """The version an index built now with this model and chunking would have.

        Where the server has BM25 functions, collections carry a BM25 sparse field as well, so lexical search
        runs inside Milvus; elsewhere it runs on the client-side index (``rag_core.retrieval.client_index``).
        """
        lexical = "milvus" if self.capabilities.supports_bm25 else "none"
        return IndexVersion(model=model, dimension=dimension, metric_type=self.index.metric_type,
                            index_type=self.index.index_type, M=self.index.M, efConstruction=self.index.efConstruction,
                            num_shards=self.shards, chunking=chunking, lexical=lexical)

    def create_version(self, alias: str, version: IndexVersion) -> str:
        """Create ``alias__vN`` (N = newest + 1) with the schema and HNSW index; the alias is not moved yet."""
        existing = self.versions(alias)
        number = int(existing[-1].rsplit(VERSION_SEPARATOR, 1)[1]) + 1 if existing else 1
        name = f"{alias}{VERSION_SEPARATOR}{number}"
        index_params = self.client.prepare_index_params()
        index_params.add_index(field_name="vector", index_type=self.index.index_type, metric_type=version.metric_type,
                               params={"M": self.index.M, "efConstruction": self.index.efConstruction})
        if version.lexical == "milvus":
            index_params.add_index(field_name=SPARSE_FIELD, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25",
                                   params={"bm25_k1": self.index.bm25_k1, "bm25_b": self.index.bm25_b})
        extra = {"num_shards": self.shards} if self.shards > 1 else {}
        self._retry("create_collection", lambda: self.client.create_collection(
            name, schema=self._schema(version.dimension, bm25=version.lexical == "milvus"), index_params=index_params,
            properties=version.to_properties(), **extra))
        return name

    def promote(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one step; readers switch with no gap."""
        self._serving.pop(alias, None)
        if self._alias_exists(alias):
            self._retry("alter_alias", lambda: self.client.alter_alias(collection, alias))
        else:
            self._retry("create_alias", lambda: self.client.create_alias(collection, alias))

    def rollback(self, alias: str) -> str:
        """Move the alias back to the version before the one it serves; returns the collection it now serves."""
        current, versions = self.resolve(alias), self.versions(alias)
        older = versions[: versions.index(current)] if current in versions else []
        if not older:
            raise ValueError(f"No version of {alias!r} older than {current!r} to roll back to (have {versions}).")
        self.promote(alias, older[-1])
        return older[-1]

    def _alias_exists(self, alias: str) -> bool:
        return alias in self._retry("list_aliases", lambda: self.client.list_aliases())["aliases"]

    def _schema(self, dimension: int, *, bm25: bool):  # noqa: ANN202 - pymilvus CollectionSchema
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("position", DataType.INT64)
        text_options = {"enable_analyzer": True, "analyzer_params": ANALYZER} if bm25 else {}
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, **text_options)
        schema.add_field("metadata", DataType.JSON)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        if bm25:
            schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(Function(name="text_bm25", function_type=FunctionType.BM25,
                                         input_field_names=["text"], output_field_names=[SPARSE_FIELD]))
        return schema

    # --- rows ---------------------------------------------------------------------------------------------------

    def _ensure_loaded(self, collection: str) -> None:
        if collection not in self._loaded:
            self._retry("load_collection", lambda: self.client.load_collection(collection))
            self._loaded.add(collection)

    def upsert(self, collection: str, rows: Sequence[dict[str, Any]]) -> int:
        if not rows:
            return 0
        for row in rows:
            if len(row["text"].encode("utf-8")) > TEXT_MAX_BYTES:
                raise ValueError(f"Chunk {row['chunk_id']} of {row['doc_id']} is over {TEXT_MAX_BYTES} bytes; "
                                 "lower chunking.chunk_size.")
        result = self._retry("upsert", lambda: self.client.upsert(collection, list(rows)))
        return int(result["upsert_count"])

    def delete_chunks(self, collection: str, chunk_ids: Iterable[str]) -> int:
        ids = list(chunk_ids)
        if not ids:
            return 0
        self._retry("delete", lambda: self.client.delete(collection, ids=ids))
        return len(ids)

    def delete_documents(self, collection: str, doc_ids: Iterable[str]) -> None:
        ids = list(doc_ids)
        if ids:
            self._retry("delete", lambda: self.client.delete(collection, filter=f"doc_id in {json.dumps(ids)}"))

    def list_chunk_ids(self, collection: str) -> dict[str, str]:
        """chunk_id -> doc_id for every row: what the sync compares against, so Milvus itself is the truth."""
        return {row["chunk_id"]: row["doc_id"] for row in self.read_rows(collection, ["chunk_id", "doc_id"])}

    def read_rows(self, collection: str, fields: list[str]) -> list[dict[str, Any]]:
        """Every row's ``fields``, read in pages with strong consistency (a whole-collection export)."""
        self._ensure_loaded(collection)

        def read_all() -> list[dict[str, Any]]:
            iterator = self.client.query_iterator(collection, batch_size=ID_QUERY_BATCH, filter="",
                                                  output_fields=fields, consistency_level="Strong")
            rows: list[dict[str, Any]] = []
            try:
                while batch := iterator.next():
                    rows.extend({f: row[f] for f in fields} for row in batch)
            finally:
                iterator.close()
            return rows

        # The iterator may read at an older timestamp than the last write of this same client (pymilvus falls back
        # to a client-side session time on Milvus Lite and servers < 2.4): re-read until it agrees with a strong count.
        for attempt in range(EXPORT_ATTEMPTS):
            rows = self._retry("query_iterator", read_all)
            expected = self.count(collection)
            if len(rows) == expected:
                return rows
            log.info("Export of %s read %d of %d rows; reading again", collection, len(rows), expected)
            time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(f"Could not export a consistent view of {collection} at {self.uri}: read {len(rows)} rows, "
                           f"the collection holds {expected}. Is something writing to it right now?")

    def iter_vectors(self, collection: str, batch_size: int = 2000) -> Iterator[np.ndarray]:
        """Every vector, a batch at a time, so statistics over a large collection never hold it whole."""
        self._ensure_loaded(collection)
        iterator = self._retry("query_iterator", lambda: self.client.query_iterator(
            collection, batch_size=batch_size, filter="", output_fields=["vector"], consistency_level="Strong"))
        try:
            while batch := iterator.next():
                yield np.asarray([row["vector"] for row in batch], dtype=np.float32)
        finally:
            iterator.close()

    def get_chunks(self, collection: str, chunk_ids: Sequence[str]) -> list[SearchHit]:
        """Rows by primary key, as hits with no score (for chunks a client-side leg found)."""
        self._ensure_loaded(collection)
        rows = self._retry("get", lambda: self.client.get(collection, ids=list(chunk_ids), output_fields=OUTPUT_FIELDS))
        return [_hit({"entity": row, "distance": 0.0}) for row in rows]

    def matching_ids(self, collection: str, chunk_ids: Sequence[str], filter: str) -> set[str]:
        """The chunks among ``chunk_ids`` that pass a Milvus filter expression (for client-side candidates)."""
        if not chunk_ids:
            return set()
        self._ensure_loaded(collection)
        expression = f"chunk_id in {json.dumps(sorted(set(chunk_ids)))} and ({filter})"
        rows = self._retry("query", lambda: self.client.query(collection, filter=expression,
                                                               output_fields=["chunk_id"]))
        return {row["chunk_id"] for row in rows}

    def count(self, collection: str) -> int:
        """Live rows, read with strong consistency so a count right after a write includes it."""
        self._ensure_loaded(collection)
        rows = self._retry("count", lambda: self.client.query(
            collection, filter="", output_fields=["count(*)"], consistency_level="Strong"))
        return int(rows[0]["count(*)"])

    def get_collection_stats(self, name: str) -> CollectionStats:
        collection = self.resolve(name)
        if collection is None:
            raise LookupError(f"No collection or alias {name!r} at {self.uri}; run the ingestion first (make run).")
        return CollectionStats(name=name, collection=collection, row_count=self.count(collection),
                               index_version=self.index_version(collection),
                               versions=self.versions(name) if collection != name else [collection])

    def search(self, name: str, vectors: Sequence[Sequence[float]], *, limit: int, ef: int | None = None,
               filter: str = "", consistency_level: str | None = None,
               output_fields: Sequence[str] = tuple(OUTPUT_FIELDS)) -> list[list[SearchHit]]:
        """Dense HNSW search; ``ef`` is raised to ``limit`` because HNSW cannot return more than ``ef`` hits.

        ``consistency_level`` defaults to ``milvus.consistency_level`` (Bounded: a write is visible within about a
        second, without making every query wait for it).
        """
        collection = self.serving(name)
        params = {"metric_type": self.index.metric_type, "params": {"ef": max(ef or self.index.ef, limit)}}
        raw = self._retry("search", lambda: self.client.search(
            collection, data=[list(map(float, v)) for v in vectors], limit=limit, filter=filter,
            search_params=params, output_fields=list(output_fields),
            consistency_level=consistency_level or self.config.consistency_level))
        return [[_hit(h) for h in hits] for hits in raw]

    def search_bm25(self, name: str, queries: Sequence[str], *, limit: int, filter: str = "",
                    consistency_level: str | None = None) -> list[list[SearchHit]]:
        """Server-side BM25 over the collection's sparse field (Milvus Lite 3.x, Milvus >= 2.5)."""
        collection = self.serving(name)
        raw = self._retry("search_bm25", lambda: self.client.search(
            collection, data=list(queries), anns_field=SPARSE_FIELD, limit=limit, filter=filter,
            search_params={"metric_type": "BM25"}, output_fields=OUTPUT_FIELDS,
            consistency_level=consistency_level or self.config.consistency_level))
        # Milvus Lite reports BM25 as a negated distance; the score itself is never negative.
        return [[replace(h, score=abs(h.score)) for h in map(_hit, hits)] for hits in raw]

    def compact(self, name: str, *, wait_s: float = 60.0) -> CompactionResult:
        """Merge segments and purge deleted rows; waits up to ``wait_s`` for the job to finish."""
        collection = self.resolve(name) or name
        job_id = int(self._retry("compact", lambda: self.client.compact(collection)) or 0)
        state = "Completed" if job_id == 0 else "Executing"
        deadline = time.monotonic() + wait_s
        while job_id and state != "Completed" and time.monotonic() < deadline:
            time.sleep(0.5)
            state = str(self._retry("get_compaction_state", lambda: self.client.get_compaction_state(job_id)))
        return CompactionResult(collection=collection, job_id=job_id, state=state)

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
        self._loaded.clear()
        self._serving.clear()


def _hit(hit: dict[str, Any]) -> SearchHit:
    entity = hit.get("entity", {})
    return SearchHit(chunk_id=str(entity.get("chunk_id") or hit.get("id") or hit.get("chunk_id")),
                     doc_id=entity.get("doc_id", ""), text=entity.get("text", ""), score=float(hit["distance"]),
                     position=int(entity.get("position", 0)), metadata=entity.get("metadata") or {})
