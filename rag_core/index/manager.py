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

from rag_core.config import ConfigError, IndexConfig, MilvusConfig
from rag_core.index import connection_security, lite_lock
from rag_core.index.milvus_env import DataType, Function, FunctionType, MilvusClient, MilvusException
from rag_core.index.retry import call_with_retry
from rag_core.index.version import (
    COMPLETE_KEY,
    DATA_VERSION_KEY,
    HYBRID_ALPHA_EVIDENCE_KEY,
    HYBRID_ALPHA_KEY,
    SYNC_PENDING_KEY,
    CollectionState,
    IndexVersion,
)
from rag_core.types import GROUPS_FIELD, TENANT_FIELD, Hit

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
EXPORT_BATCH = 2000
OUTPUT_FIELDS = ["chunk_id", "doc_id", "source", "position", "text", "metadata"]
LABEL_FIELDS = [GROUPS_FIELD, TENANT_FIELD]  # on versions of schema 3 on (IndexVersion.labelled)
MAX_GROUPS = 64  # access groups per document
LABEL_MAX_CHARS = 128  # config.LABEL_PATTERN's bound
SPARSE_FIELD = "sparse"
# Stemming and stopwords like the client-side index; Milvus Lite 3.2 ignores these filters (lowercase only).
ANALYZER = {
    "tokenizer": "standard",
    "filter": ["lowercase", {"type": "stop", "stop_words": ["_english_"]}, {"type": "stemmer", "language": "english"}],
}


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
    data_version: int = 0
    incomplete_versions: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class HealthReport:
    ok: bool
    uri: str
    server_version: str = ""
    latency_ms: float = 0.0
    collections: list[str] = field(default_factory=list)
    error: str = ""


@dataclass(frozen=True)
class IndexedChunk:
    """A row as a sync sees it: its document, and its access labels (empty on a version from before labels)."""

    doc_id: str
    groups: tuple[str, ...]
    tenant: str

    @property
    def labels(self) -> tuple[tuple[str, ...], str]:
        return self.groups, self.tenant


class InconsistentExportError(RuntimeError):
    """A streamed export read another number of rows than the collection holds (a write happened meanwhile)."""


@dataclass(frozen=True)
class CompactionResult:
    collection: str
    job_id: int
    state: str


@dataclass(frozen=True)
class StorageStats:
    """What a collection stores: ``stored_rows`` counts deleted rows not purged yet, ``live_rows`` does not.
    ``segments`` is None where the store does not list them (Milvus Lite)."""

    segments: int | None
    stored_rows: int
    live_rows: int

    @property
    def deleted_rows(self) -> int:
        return max(self.stored_rows - self.live_rows, 0)


def is_server_uri(uri: str) -> bool:
    return uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


def parse_version(text: str) -> tuple[int, int]:
    match = re.search(r"(\d+)\.(\d+)", text)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


class MilvusIndexManager:
    """One Milvus endpoint; every call is retried through short outages (see ``rag_core.index.retry``)."""

    def __init__(
        self,
        config: MilvusConfig,
        index: IndexConfig | None = None,
        *,
        uri: str | None = None,
        enable_sharding: bool | None = None,
        num_shards: int | None = None,
    ) -> None:
        index = index or IndexConfig()
        updates = {
            k: v
            for k, v in {"uri": uri, "enable_sharding": enable_sharding, "num_shards": num_shards}.items()
            if v is not None
        }
        self.config = config.model_copy(update=updates)
        self.index = index
        self._loaded: set[str] = set()
        self._serving: dict[str, tuple[float, str]] = {}
        self._labelled: dict[str, bool] = {}

    @property
    def uri(self) -> str:
        return self.config.uri

    @property
    def lite_file(self) -> Path:
        return Path(self.config.uri).expanduser().resolve()

    @property
    def shards(self) -> int:
        return self.config.num_shards if self.config.enable_sharding else 1

    @cached_property
    def client(self) -> MilvusClient:
        return self._retry("connect", self._connect)

    def _connect(self) -> MilvusClient:
        c = self.config
        if not is_server_uri(c.uri):
            db_file = self.lite_file
            if not db_file.parent.parent.is_dir():  # the default data/ is made; a path with a typo higher up is not
                raise ConfigError(
                    f"The folder {db_file.parent.parent} of the Milvus Lite file {c.uri} does not "
                    f"exist; create it (mkdir -p {db_file.parent}) or fix milvus.uri / MILVUS_URI."
                )
            db_file.parent.mkdir(exist_ok=True)
            lite_lock.acquire(db_file, c.lock_timeout_s)
            if ignored := connection_security.lite_ignored_settings(c):
                log.warning(
                    "Milvus Lite (%s) has no users, roles or TLS: %s are ignored; protect the file with file "
                    "permissions, or use a Milvus server for authentication",
                    db_file,
                    ", ".join(ignored),
                )
            return MilvusClient(str(db_file))
        tls = {
            k: v
            for k, v in {
                "secure": c.secure or None,
                "server_pem_path": c.server_pem_path,
                "server_name": c.server_name,
                "ca_pem_path": c.ca_pem_path,
                "client_pem_path": c.client_pem_path,
                "client_key_path": c.client_key_path,
            }.items()
            if v
        }
        try:
            # pymilvus shares one connection per address and token, whatever the TLS settings: a client with other
            # certificates gets a dedicated one, so it is checked by the server rather than riding on another's.
            return MilvusClient(
                uri=c.uri,
                user=c.user,
                password=c.password.get_secret_value(),
                token=c.token.get_secret_value(),
                db_name=c.db_name,
                timeout=c.timeout_s,
                dedicated=bool(tls),
                **tls,
            )
        except MilvusException as error:
            diagnosis = connection_security.diagnose_connect(c)
            if diagnosis.retryable:
                raise
            raise connection_security.MilvusAuthenticationError(diagnosis.message) from error

    def _retry(self, what: str, operation: Callable[[], T]) -> T:
        return call_with_retry(
            connection_security.guard(operation, self.config, what),
            what=what,
            uri=self.uri,
            attempts=self.config.retry_attempts,
            backoff_s=self.config.retry_backoff_s,
        )

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
        """Never creates anything: a Milvus Lite file in a folder that does not exist is reported, not made."""
        started = time.perf_counter()
        folder = self.lite_file.parent
        if not is_server_uri(self.uri) and not folder.is_dir():
            what = "is not a folder" if folder.exists() else "does not exist"
            return HealthReport(
                ok=False,
                uri=self.uri,
                error=(
                    f"the folder {folder} of the Milvus Lite file {self.uri} {what}; create it (mkdir -p {folder}) "
                    "or fix milvus.uri / MILVUS_URI"
                ),
            )
        try:
            collections = self._retry("list_collections", lambda: self.client.list_collections())
            version = self.capabilities.version
        except Exception as error:  # noqa: BLE001 - a health report states the failure instead of raising
            return HealthReport(ok=False, uri=self.uri, error=str(error))
        return HealthReport(
            ok=True,
            uri=self.uri,
            server_version=version,
            latency_ms=(time.perf_counter() - started) * 1000,
            collections=sorted(collections),
        )

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
        names = [
            n
            for n in self._retry("list_collections", self.client.list_collections)
            if n.startswith(prefix) and n[len(prefix) :].isdigit()
        ]
        return sorted(names, key=lambda n: int(n[len(prefix) :]))

    def state(self, collection: str) -> CollectionState:
        """Index version, data version and completeness, in one round trip."""
        return CollectionState.from_properties(collection, self.properties(collection))

    def properties(self, collection: str) -> dict[str, str]:
        """Every property of the collection: its version and state, and any kept beside them (a restore's)."""
        described = self._retry("describe_collection", lambda: self.client.describe_collection(collection))
        return dict(described.get("properties") or {})

    def index_version(self, collection: str) -> IndexVersion | None:
        return self.state(collection).version

    def version_for(self, model: str, dimension: int, chunking: str) -> IndexVersion:
        """The version an index built now with this model and chunking would have.

        Where the server has BM25 functions, collections carry a BM25 sparse field as well, so lexical search
        runs inside Milvus; elsewhere it runs on the client-side index (``rag_core.retrieval.client_index``).
        """
        lexical = "milvus" if self.capabilities.supports_bm25 else "none"
        return IndexVersion(
            model=model,
            dimension=dimension,
            metric_type=self.index.metric_type,
            index_type=self.index.index_type,
            M=self.index.M,
            efConstruction=self.index.efConstruction,
            num_shards=self.shards,
            chunking=chunking,
            lexical=lexical,
        )

    def create_version(
        self, alias: str, version: IndexVersion, *, number: int | None = None, properties: dict[str, str] | None = None
    ) -> str:
        """Create ``alias__vN`` (N = newest + 1, or ``number`` for a restore), marked incomplete until
        ``mark_complete``; the alias is not moved. ``properties`` are kept beside the version's own."""
        existing = self.versions(alias)
        if number is None:
            number = int(existing[-1].rsplit(VERSION_SEPARATOR, 1)[1]) + 1 if existing else 1
        name = f"{alias}{VERSION_SEPARATOR}{number}"
        kept = {DATA_VERSION_KEY: "0"} | (properties or {}) | version.to_properties() | {COMPLETE_KEY: "false"}
        self.create_collection(name, version, kept)
        return name

    def create_collection(self, name: str, version: IndexVersion, properties: dict[str, str]) -> None:
        """An empty collection with the schema and index ``version`` records, carrying exactly ``properties``."""
        index_params = self.client.prepare_index_params()
        index_params.add_index(
            field_name="vector",
            index_type=version.index_type,
            metric_type=version.metric_type,
            params={"M": version.M, "efConstruction": version.efConstruction},
        )
        if version.lexical == "milvus":
            index_params.add_index(
                field_name=SPARSE_FIELD,
                index_type="SPARSE_INVERTED_INDEX",
                metric_type="BM25",
                params={"bm25_k1": self.index.bm25_k1, "bm25_b": self.index.bm25_b},
            )
        extra = {"num_shards": self.shards} if self.shards > 1 else {}
        self._labelled.pop(name, None)
        self._retry(
            "create_collection",
            lambda: self.client.create_collection(
                name,
                schema=self._schema(version.dimension, bm25=version.lexical == "milvus", labelled=version.labelled),
                index_params=index_params,
                properties=properties,
                **extra,
            ),
        )

    def resumable_version(self, alias: str, version: IndexVersion) -> str | None:
        """The newest version if it is an unfinished build of ``version`` (an interrupted run): continue it."""
        versions = self.versions(alias)
        if not versions or versions[-1] == self.resolve(alias):
            return None
        state = self.state(versions[-1])
        return versions[-1] if not state.complete and state.version == version else None

    def bump_data_version(self, collection: str, *, concurrent: bool = False) -> int:
        """Record that rows changed: every reader's cache and client-side index key on this number.

        ``concurrent``: other writers may bump at the same time (partitioned ingestion); two bumps that read the
        same number would write the same next one and a reader could keep an index missing one writer's rows, so
        the number is also raised to the clock in microseconds (readers compare it for equality only).
        """
        number = self.state(collection).data_version + 1
        if concurrent:
            number = max(number, time.time_ns() // 1000)
        self._set_properties(collection, {DATA_VERSION_KEY: str(number), SYNC_PENDING_KEY: "false"})
        return number

    def begin_writes(self, collection: str) -> None:
        """Mark ``collection`` as being written until the next ``bump_data_version``: rows a sync writes before it
        dies are then still published (and the stale ones it left deleted) by the next sync, even when that one
        finds nothing more to write."""
        self._set_properties(collection, {SYNC_PENDING_KEY: "true"})

    def mark_complete(self, collection: str) -> None:
        self._set_properties(collection, {COMPLETE_KEY: "true"})

    def record_fusion_choice(self, collection: str, alpha: float, evidence: str) -> None:
        """Keep the fusion weight chosen for ``collection`` (``pipeline.hybrid_alpha: auto``) and its evidence
        beside the version's state, where every reader of the version finds them."""
        self._set_properties(collection, {HYBRID_ALPHA_KEY: f"{alpha:g}", HYBRID_ALPHA_EVIDENCE_KEY: evidence})

    def _set_properties(self, collection: str, properties: dict[str, str]) -> None:
        self._retry(
            "alter_collection_properties",
            lambda: self.client.alter_collection_properties(collection, properties=properties),
        )

    def promote(self, alias: str, collection: str) -> None:
        """Point ``alias`` at ``collection`` in one step; readers switch with no gap. Complete versions only."""
        if not self.state(collection).complete:
            raise ValueError(
                f"{collection} is an incomplete build; it cannot serve {alias!r}. Run `rag reindex` to "
                "build a complete version, or `rag versions --drop-incomplete` to remove it."
            )
        self._serving.pop(alias, None)
        if self._alias_exists(alias):
            self._retry("alter_alias", lambda: self.client.alter_alias(collection, alias))
        else:
            self._retry("create_alias", lambda: self.client.create_alias(collection, alias))

    def rollback(self, alias: str, to: str | None = None) -> str:
        """Move the alias to ``to``, or to the newest complete version older than the one it serves."""
        current, states = self.resolve(alias), [self.state(v) for v in self.versions(alias)]
        if to is not None:
            target = to if to.startswith(f"{alias}{VERSION_SEPARATOR}") else f"{alias}{VERSION_SEPARATOR}{to}"
            if target not in {s.collection for s in states}:
                raise ValueError(f"{alias!r} has no version {to!r}; versions: {[s.collection for s in states]}.")
        else:
            names = [s.collection for s in states]
            older = [s for s in states[: names.index(current)] if s.complete] if current in names else []
            if not older:
                raise ValueError(
                    f"No complete version of {alias!r} older than {current!r} to roll back to (versions: {names})."
                )
            target = older[-1].collection
        self.promote(alias, target)
        return target

    def drop_incomplete(self, alias: str) -> list[str]:
        """Drop the versions whose build never finished (never served); returns their names."""
        serving = self.resolve(alias)
        dropped = [v for v in self.versions(alias) if v != serving and not self.state(v).complete]
        for name in dropped:
            self.drop_version(name)
        return dropped

    def drop_version(self, collection: str) -> None:
        """Drop one version; the caller makes sure no alias serves it (``rag_core.index.retention``)."""
        self._retry("drop_collection", lambda: self.client.drop_collection(collection))
        self._loaded.discard(collection)
        self._labelled.pop(collection, None)

    def rename_collection(self, old: str, new: str) -> None:
        """Give a collection another name (Milvus Lite moves its aliases with it); loaded again on next use."""
        self._retry("rename_collection", lambda: self.client.rename_collection(old, new))
        self._loaded -= {old, new}
        self._labelled.pop(old, None)
        self._labelled.pop(new, None)
        self.forget_serving()

    def _alias_exists(self, alias: str) -> bool:
        return alias in self._retry("list_aliases", lambda: self.client.list_aliases())["aliases"]

    def _schema(self, dimension: int, *, bm25: bool, labelled: bool):  # noqa: ANN202 - pymilvus CollectionSchema
        """``labelled``: access labels in fields of their own. The tenant is no partition key: on Milvus 2.3.5 a
        filter on a partition key misses rows written by upsert (measured: ``tenant == "acme"`` found none of them),
        and every write here is an upsert."""
        schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("chunk_id", DataType.VARCHAR, max_length=64, is_primary=True)
        schema.add_field("doc_id", DataType.VARCHAR, max_length=1024)
        schema.add_field("source", DataType.VARCHAR, max_length=1024)
        schema.add_field("position", DataType.INT64)
        text_options = {"enable_analyzer": True, "analyzer_params": ANALYZER} if bm25 else {}
        schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES, **text_options)
        schema.add_field("metadata", DataType.JSON)
        if labelled:
            schema.add_field(
                GROUPS_FIELD,
                DataType.ARRAY,
                element_type=DataType.VARCHAR,
                max_capacity=MAX_GROUPS,
                max_length=LABEL_MAX_CHARS,
            )
            schema.add_field(TENANT_FIELD, DataType.VARCHAR, max_length=LABEL_MAX_CHARS)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dimension)
        if bm25:
            schema.add_field(SPARSE_FIELD, DataType.SPARSE_FLOAT_VECTOR)
            schema.add_function(
                Function(
                    name="text_bm25",
                    function_type=FunctionType.BM25,
                    input_field_names=["text"],
                    output_field_names=[SPARSE_FIELD],
                )
            )
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
                raise ValueError(
                    f"Chunk {row['chunk_id']} of {row['doc_id']} is over {TEXT_MAX_BYTES} bytes; "
                    "lower chunking.chunk_size."
                )
            if len(row.get(GROUPS_FIELD) or ()) > MAX_GROUPS:
                raise ValueError(
                    f"Document {row['doc_id']} has {len(row[GROUPS_FIELD])} access groups; at most {MAX_GROUPS} "
                    "fit on a row. Give it fewer, broader groups."
                )
        if not self.labelled(collection):  # a version from before labels: its rows are all the defaults'
            rows = [{k: v for k, v in row.items() if k not in LABEL_FIELDS} for row in rows]
        result = self._retry("upsert", lambda: self.client.upsert(collection, list(rows)))
        return int(result["upsert_count"])

    def flush(self, collection: str) -> None:
        """Seal what was written, once at the end of a bulk write. Milvus Lite keeps unsealed rows in an in-memory
        table that every search copies row by row in Python (evaluation after ingesting SciFact in the same process
        crawled on it); a server searches growing segments without their index."""
        self._retry("flush", lambda: self.client.flush(collection))

    def delete_chunks(self, collection: str, chunk_ids: Iterable[str]) -> int:
        ids = list(chunk_ids)
        if not ids:
            return 0
        self._retry("delete", lambda: self.client.delete(collection, ids=ids))
        return len(ids)

    def delete_where(self, collection: str, expression: str) -> int:
        """Delete the rows matching a filter (a source, a document); returns how many there were."""
        before = self.count(collection)
        self._retry("delete", lambda: self.client.delete(collection, filter=expression))
        return before - self.count(collection)

    def labelled(self, collection: str) -> bool:
        """Its rows carry access labels (``IndexVersion.labelled``); a collection's schema never changes, so the
        answer is kept until it is dropped or renamed."""
        if collection not in self._labelled:
            version = self.state(collection).version
            self._labelled[collection] = version is not None and version.labelled
        return self._labelled[collection]

    def row_fields(self, collection: str) -> list[str]:
        """Every field a row of ``collection`` carries besides its vectors: what a copy of it must read."""
        return [*OUTPUT_FIELDS, *LABEL_FIELDS] if self.labelled(collection) else list(OUTPUT_FIELDS)

    def indexed_chunks(
        self, collection: str, *, source: str | None = None, tenant: str | None = None
    ) -> dict[str, IndexedChunk]:
        """Every row (of ``source``, of ``tenant``) by chunk id, with its document and access labels: what a sync
        compares against, so Milvus itself is the truth and a change of labels alone reaches the rows. A version
        from before labels holds ``access.default_tenant``'s rows only: give ``tenant`` only for labelled ones."""
        labelled = self.labelled(collection)
        parts = [f"source == {json.dumps(source)}"] if source is not None else []
        if tenant is not None and labelled:
            parts.append(f"{TENANT_FIELD} == {json.dumps(tenant)}")
        expression = " and ".join(parts)
        fields = ["chunk_id", "doc_id", *(LABEL_FIELDS if labelled else [])]

        def read() -> dict[str, IndexedChunk]:
            return {
                r["chunk_id"]: IndexedChunk(
                    r["doc_id"], tuple(sorted(r.get(GROUPS_FIELD) or ())), r.get(TENANT_FIELD) or ""
                )
                for batch in self.iter_rows(collection, fields, filter=expression)
                for r in batch
            }

        return self.consistent_export(collection, read)

    def relabel(self, collection: str, labels: dict[str, tuple[tuple[str, ...], str]]) -> int:
        """Give the rows ``labels`` (chunk_id -> (groups, tenant)) without embedding them again: each row is read
        back whole, vector included, and written with its new labels."""
        ids, done = sorted(labels), 0
        fields = [*OUTPUT_FIELDS, "vector"]
        for start in range(0, len(ids), EXPORT_BATCH):
            batch = ids[start : start + EXPORT_BATCH]
            self._ensure_loaded(collection)
            rows = self._retry("get", lambda b=batch: self.client.get(collection, ids=b, output_fields=fields))
            done += self.upsert(
                collection,
                [
                    {f: row[f] for f in fields}
                    | {GROUPS_FIELD: list(labels[row["chunk_id"]][0]), TENANT_FIELD: labels[row["chunk_id"]][1]}
                    for row in rows
                ],
            )
        return done

    def list_chunk_ids(self, collection: str, *, source: str | None = None) -> dict[str, str]:
        """chunk_id -> doc_id for every row (of ``source``)."""
        return {chunk_id: row.doc_id for chunk_id, row in self.indexed_chunks(collection, source=source).items()}

    def consistent_export(self, collection: str, export: Callable[[], T]) -> T:
        """Run an export built on ``iter_rows`` again until it saw every row.

        The iterator may read at an older timestamp than this client's last write (pymilvus falls back to a
        client-side session time on Milvus Lite and servers < 2.4); ``iter_rows`` notices that against a strong
        count at its end.
        """
        for attempt in range(EXPORT_ATTEMPTS):
            try:
                return export()
            except InconsistentExportError as error:
                log.info("%s; reading again", error)
                time.sleep(0.5 * (attempt + 1))
        raise RuntimeError(
            f"Could not export a consistent view of {collection} at {self.uri}: the rows read never "
            "matched the row count. Is something writing to it right now?"
        )

    def iter_rows(
        self, collection: str, fields: list[str], *, filter: str = "", batch_size: int = EXPORT_BATCH
    ) -> Iterator[list[dict[str, Any]]]:
        """Rows a batch at a time with strong consistency, so an export never holds the whole collection.

        Raises ``InconsistentExportError`` at its end when it saw another number of rows than a strong count
        gives (see ``consistent_export``).
        """
        self._ensure_loaded(collection)
        iterator = self._retry(
            "query_iterator",
            lambda: self.client.query_iterator(
                collection, batch_size=batch_size, filter=filter, output_fields=fields, consistency_level="Strong"
            ),
        )
        seen = 0
        try:
            while batch := iterator.next():
                seen += len(batch)
                yield [{f: row[f] for f in fields} for row in batch]
        finally:
            iterator.close()
        if seen != (expected := self.count(collection, filter=filter)):
            raise InconsistentExportError(f"Export of {collection} read {seen} of {expected} rows")

    def iter_vectors(self, collection: str, batch_size: int = EXPORT_BATCH) -> Iterator[np.ndarray]:
        """Every vector, a batch at a time, so statistics over a large collection never hold it whole."""
        for batch in self.iter_rows(collection, ["vector"], batch_size=batch_size):
            yield np.asarray([row["vector"] for row in batch], dtype=np.float32)

    def get_chunks(self, collection: str, chunk_ids: Sequence[str]) -> list[Hit]:
        """Rows by primary key, as hits with no score (for chunks a client-side leg found); a row that is gone
        is simply absent."""
        self._ensure_loaded(collection)
        rows = self._retry("get", lambda: self.client.get(collection, ids=list(chunk_ids), output_fields=OUTPUT_FIELDS))
        return [_hit({"entity": row, "distance": 0.0}) for row in rows]

    def present_documents(self, collection: str, doc_ids: Iterable[str]) -> set[str]:
        """The documents among ``doc_ids`` that still have a chunk in ``collection``."""
        wanted = sorted(set(doc_ids))
        if not wanted:
            return set()
        self._ensure_loaded(collection)
        expression = f"doc_id in {json.dumps(wanted)}"
        rows = self._retry(
            "query",
            lambda: self.client.query(
                collection, filter=expression, output_fields=["doc_id"], consistency_level="Strong"
            ),
        )
        return {row["doc_id"] for row in rows}

    def count(self, collection: str, *, filter: str = "") -> int:
        """Live rows (matching ``filter``), read with strong consistency so a count right after a write includes it."""
        self._ensure_loaded(collection)
        rows = self._retry(
            "count",
            lambda: self.client.query(
                collection, filter=filter, output_fields=["count(*)"], consistency_level="Strong"
            ),
        )
        return int(rows[0]["count(*)"])

    def get_collection_stats(self, name: str) -> CollectionStats:
        collection = self.resolve(name)
        if collection is None:
            raise LookupError(f"No collection or alias {name!r} at {self.uri}; run the ingestion first (make run).")
        versions = self.versions(name) if collection != name else [collection]
        state = self.state(collection)
        return CollectionStats(
            name=name,
            collection=collection,
            row_count=self.count(collection),
            index_version=state.version,
            versions=versions,
            data_version=state.data_version,
            incomplete_versions=[v for v in versions if not self.state(v).complete],
        )

    def search(
        self,
        name: str,
        vectors: Sequence[Sequence[float]],
        *,
        limit: int,
        ef: int | None = None,
        filter: str = "",
        consistency_level: str | None = None,
        output_fields: Sequence[str] = tuple(OUTPUT_FIELDS),
    ) -> list[list[Hit]]:
        """Dense HNSW search; ``ef`` is raised to ``limit`` because HNSW cannot return more than ``ef`` hits.

        ``consistency_level`` defaults to ``milvus.consistency_level`` (Bounded: a write is visible within about a
        second, without making every query wait for it).
        """
        collection = self.serving(name)
        params = {"metric_type": self.index.metric_type, "params": {"ef": max(ef or self.index.ef, limit)}}
        raw = self._retry(
            "search",
            lambda: self.client.search(
                collection,
                data=[list(map(float, v)) for v in vectors],
                limit=limit,
                filter=filter,
                search_params=params,
                output_fields=list(output_fields),
                consistency_level=consistency_level or self.config.consistency_level,
            ),
        )
        return [[_hit(h) for h in hits] for hits in raw]

    def search_bm25(
        self, name: str, queries: Sequence[str], *, limit: int, filter: str = "", consistency_level: str | None = None
    ) -> list[list[Hit]]:
        """Server-side BM25 over the collection's sparse field (Milvus Lite 3.x, Milvus >= 2.5)."""
        collection = self.serving(name)
        raw = self._retry(
            "search_bm25",
            lambda: self.client.search(
                collection,
                data=list(queries),
                anns_field=SPARSE_FIELD,
                limit=limit,
                filter=filter,
                search_params={"metric_type": "BM25"},
                output_fields=OUTPUT_FIELDS,
                consistency_level=consistency_level or self.config.consistency_level,
            ),
        )
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

    def wait_for_index(self, collection: str, *, wait_s: float) -> int:
        """Wait up to ``wait_s`` until every row of ``collection`` is indexed; returns the rows still pending.
        A server's compaction passes over segments whose index is still being built, deleted rows and all."""
        deadline = time.monotonic() + wait_s
        while True:
            pending = sum(
                int(
                    self._retry("describe_index", lambda name=name: self.client.describe_index(collection, name)).get(
                        "pending_index_rows", 0
                    )
                )
                for name in self.client.list_indexes(collection)
            )
            if not pending or time.monotonic() >= deadline:
                return pending
            time.sleep(0.5)

    def storage_stats(self, collection: str) -> StorageStats:
        live = self.count(collection)
        stored = int(
            self._retry("get_collection_stats", lambda: self.client.get_collection_stats(collection))["row_count"]
        )
        if self.capabilities.is_lite:  # no segment listing (UNIMPLEMENTED); it purges deletions itself
            return StorageStats(segments=None, stored_rows=stored, live_rows=live)
        segments = self._retry("list_persistent_segments", lambda: self.client.list_persistent_segments(collection))
        return StorageStats(segments=len(segments), stored_rows=stored, live_rows=live)

    def close(self) -> None:
        if "client" in self.__dict__:
            self.client.close()
            del self.__dict__["client"]
        self._loaded.clear()
        self._serving.clear()


def _hit(hit: dict[str, Any]) -> Hit:
    entity = hit.get("entity", {})
    return Hit(
        chunk_id=str(entity.get("chunk_id") or hit.get("id") or hit.get("chunk_id")),
        doc_id=entity.get("doc_id", ""),
        score=float(hit["distance"]),
        text=entity.get("text", ""),
        position=int(entity.get("position", 0)),
        source=entity.get("source", ""),
        metadata=entity.get("metadata") or {},
    )
