"""``rag backup DEST``: every kept version of an alias, as Parquet rows with their vectors, plus what rebuilds it.

Rows are read with strong consistency a batch at a time (memory follows the batch, not the collection) and keep
their float32 vectors, so a restore never re-embeds. The audit database (SQLite) is copied with SQLite's online
backup API, which gives a consistent copy while other processes append; a PostgreSQL audit store is left to
``pg_dump`` (see docs/security.md). The config is saved with its secrets removed.
"""

import datetime
import json
import shutil
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy.engine import make_url

from rag_core.backup.manifest import Manifest, SnapshotError, VersionEntry, file_entry
from rag_core.config import RAGConfig
from rag_core.index.manager import LABEL_FIELDS, OUTPUT_FIELDS, MilvusIndexManager
from rag_core.observability.progress import QUIET, ProgressBar, ProgressReporter
from rag_core.retrieval.engine import client_index_dir
from rag_core.types import GROUPS_FIELD, TENANT_FIELD

ROW_FIELDS = [*OUTPUT_FIELDS, *LABEL_FIELDS, "vector"]
MASKED = "**********"  # how pydantic dumps a SecretStr


@dataclass(frozen=True)
class BackupResult:
    folder: Path
    alias: str
    versions: list[str]
    rows: int
    bytes: int
    seconds: float
    notes: list[str]


def rows_schema(dimension: int) -> pa.Schema:
    return pa.schema(
        [
            ("chunk_id", pa.string()),
            ("doc_id", pa.string()),
            ("source", pa.string()),
            ("position", pa.int64()),
            ("text", pa.string()),
            ("metadata", pa.string()),
            (GROUPS_FIELD, pa.list_(pa.string())),
            (TENANT_FIELD, pa.string()),
            ("vector", pa.list_(pa.float32(), dimension)),
        ]
    )


def _write_rows(
    manager: MilvusIndexManager,
    collection: str,
    path: Path,
    dimension: int,
    present: set[str],
    written: Callable[[int], None],
) -> int:
    """Versions from before rows carried their source (``rag.schema`` 1) have no ``source``, and before they carried
    access labels (2) no labels: written as null.
    ``written(rows)`` hears the rows written so far after each batch (from 0 again when the export is retried)."""
    schema, rows, fields = rows_schema(dimension), 0, [f for f in ROW_FIELDS if f in present]
    with pq.ParquetWriter(path, schema) as writer:
        for batch in manager.iter_rows(collection, fields):
            columns = {name: [row.get(name) for row in batch] for name in ROW_FIELDS}
            columns["metadata"] = [json.dumps(m or {}, sort_keys=True) for m in columns["metadata"]]
            writer.write_table(pa.Table.from_pydict(columns, schema=schema))
            rows += len(batch)
            written(rows)
    return rows


def _index_params(manager: MilvusIndexManager, collection: str) -> dict[str, dict[str, Any]]:
    client = manager.client
    return {
        name: {k: v for k, v in client.describe_index(collection, name).items() if isinstance(v, str | int | float)}
        for name in client.list_indexes(collection)
    }


def sqlite_path(config: RAGConfig) -> Path | None:
    """The audit database's file when the store is SQLite, else None (PostgreSQL: pg_dump)."""
    url = make_url(config.compliance.database_url)
    return Path(url.database) if url.get_backend_name() == "sqlite" and url.database else None


def copy_sqlite(source: Path, target: Path) -> None:
    """A consistent copy of a live SQLite database (WAL included), page by page through the backup API."""
    with closing(sqlite3.connect(source)) as reader, closing(sqlite3.connect(target)) as writer:
        reader.backup(writer)


def public_config(config: RAGConfig) -> dict[str, Any]:
    """The config as JSON with every secret (masked when dumped) removed, so a snapshot never carries one."""

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if v != MASKED}
        return [strip(v) for v in node] if isinstance(node, list) else node

    return strip(config.model_dump(mode="json"))


def _export_version(manager: MilvusIndexManager, collection: str, dest: Path, bar: ProgressBar) -> VersionEntry:
    """One version's rows into ``collections/NAME.parquet``, with what re-creates it."""
    described = manager.client.describe_collection(collection)
    properties = {str(k): str(v) for k, v in (described.get("properties") or {}).items()}
    state = manager.state(collection)
    if state.version is None:
        raise SnapshotError(
            f"{collection} at {manager.uri} has no recorded index version (rag.* properties); "
            "it was not made by this project and cannot be restored without re-embedding"
        )
    rows_file = f"collections/{collection}.parquet"
    present = {f["name"] for f in described["fields"]}
    before = bar.count
    rows = manager.consistent_export(
        collection,
        partial(
            _write_rows,
            manager,
            collection,
            dest / rows_file,
            state.version.dimension,
            present,
            lambda written: bar.advance_to(before + written),
        ),
    )
    return VersionEntry(
        collection=collection,
        rows=rows,
        rows_file=rows_file,
        properties=properties,
        index_params=_index_params(manager, collection),
    )


def create_backup(
    config: RAGConfig, dest: Path, *, alias: str | None = None, progress: ProgressReporter = QUIET
) -> BackupResult:
    """Write a snapshot of ``alias`` (default: milvus.collection) into the new or empty folder ``dest``;
    ``progress`` counts the rows written, out of every version's."""
    started, alias = time.perf_counter(), alias or config.milvus.collection
    if dest.exists() and any(dest.iterdir()):
        raise SnapshotError(f"Backup destination {dest} is not empty; give a new folder")
    manager = MilvusIndexManager(config.milvus, config.index)
    versions = manager.versions(alias)
    if not versions:
        raise LookupError(f"No versions of {alias!r} at {manager.uri} to back up (expected {alias}__v1, ...)")
    (dest / "collections").mkdir(parents=True, exist_ok=True)
    total = sum(manager.count(c) for c in versions) if progress.enabled else None
    with progress.bar("backup", "rows", total=total) as bar:
        entries = [_export_version(manager, collection, dest, bar) for collection in versions]
    notes = []
    serving = manager.resolve(alias)
    manager.close()
    client_index = client_index_dir(config, alias)
    if client_index.is_dir():
        shutil.copytree(client_index, dest / "client_index")
    audit_file, audit = None, sqlite_path(config)
    if audit is None:
        notes.append("the audit store is PostgreSQL: back it up with pg_dump (docs/security.md)")
    elif audit.is_file():
        audit_file = "audit/audit.db"
        (dest / "audit").mkdir()
        copy_sqlite(audit, dest / audit_file)
    else:
        notes.append(f"no audit database at {audit} yet")
    (dest / "config.json").write_text(json.dumps(public_config(config), indent=2, sort_keys=True), encoding="utf-8")
    files = {p.relative_to(dest).as_posix(): file_entry(p) for p in sorted(dest.rglob("*")) if p.is_file()}
    Manifest(
        created_at=datetime.datetime.now(datetime.UTC).isoformat(),
        source_uri=config.milvus.uri,
        alias=alias,
        serving=serving,
        versions=entries,
        files=files,
        audit_file=audit_file,
        notes=notes,
    ).write(dest)
    return BackupResult(
        folder=dest,
        alias=alias,
        versions=versions,
        rows=sum(e.rows for e in entries),
        bytes=sum(f["bytes"] for f in files.values()),
        seconds=time.perf_counter() - started,
        notes=notes,
    )
