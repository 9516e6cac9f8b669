"""``rag restore SRC [--uri URI] [--force]``: rebuild a snapshot into an empty Milvus, Lite or server.

The whole snapshot is checked against its manifest before the target is touched. Each version is re-created
under its own name with its index parameters and properties, its rows inserted with their stored vectors (no
re-embedding), and marked complete only once every row is in; then the alias is pointed at the version it served.
A version whose BM25 sparse field the target cannot hold (Milvus < 2.5) is restored without it and recorded as
``lexical: none``: lexical search then runs on the client-side index, which is what queries used on Milvus Lite
and 2.3/2.4 anyway (``retrieval.lexical_backend: auto``).
"""

import dataclasses
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq

from rag_core.backup.manifest import Manifest, SnapshotError, VersionEntry
from rag_core.backup.snapshot import copy_sqlite, sqlite_path
from rag_core.config import RAGConfig
from rag_core.index.manager import LABEL_FIELDS, SPARSE_FIELD, VERSION_SEPARATOR, MilvusIndexManager
from rag_core.index.version import COMPLETE_KEY, IndexVersion
from rag_core.observability.progress import QUIET, ProgressBar, ProgressReporter
from rag_core.retrieval.engine import client_index_dir

INSERT_BATCH = 1000


@dataclass(frozen=True)
class RestoreResult:
    uri: str
    alias: str
    versions: list[str]
    rows: int
    serving: str | None
    seconds: float
    notes: list[str]


def _refuse_non_empty(manager: MilvusIndexManager, manifest: Manifest, force: bool) -> None:
    existing = sorted(manager.client.list_collections())
    if existing and not force:
        raise SnapshotError(
            f"Milvus at {manager.uri} is not empty (collections: {', '.join(existing)}); restore "
            "into an empty Milvus, or pass --force to replace this snapshot's alias and versions there"
        )
    if manifest.alias in manager.client.list_aliases()["aliases"]:
        manager.client.drop_alias(manifest.alias)
    for entry in manifest.versions:
        if entry.collection in existing:
            manager.drop_version(entry.collection)


def _restore_version(
    config: RAGConfig, uri: str, folder: Path, alias: str, entry: VersionEntry, bar: ProgressBar
) -> tuple[str, int, str | None]:
    """One version, under its own name; returns its name, its row count, and a note when BM25 had to go."""
    properties, rows_file = entry.properties, entry.rows_file
    version = IndexVersion.from_properties(properties)
    if version is None:
        raise SnapshotError(f"{rows_file}: its version has no rag.* index properties in the manifest")
    bm25 = {
        key: float(value)
        for key, value in entry.index_params.get(SPARSE_FIELD, {}).items()
        if key in ("bm25_k1", "bm25_b")
    }
    index = config.index.model_copy(
        update={"M": version.M, "efConstruction": version.efConstruction, "metric_type": version.metric_type, **bm25}
    )
    manager = MilvusIndexManager(
        config.milvus, index, uri=uri, enable_sharding=version.num_shards > 1, num_shards=version.num_shards
    )
    note = None
    if version.lexical == "milvus" and not manager.capabilities.supports_bm25:
        version = dataclasses.replace(version, lexical="none")
        note = f"{manager.capabilities.version} has no BM25 functions: lexical search uses the client-side index"
    number = int(Path(rows_file).stem.rsplit(VERSION_SEPARATOR, 1)[1])
    name = manager.create_version(alias, version, number=number, properties=properties)
    rows = 0
    for batch in pq.ParquetFile(folder / rows_file).iter_batches(batch_size=INSERT_BATCH):
        # A version from before rows carried their source (schema 1) comes back with an empty one; one from before
        # they carried labels (2) without them.
        records = [
            row | {"metadata": json.loads(row["metadata"]), "source": row["source"] or ""}
            for row in (_without_nulls(r) for r in batch.to_pylist())
        ]
        rows += manager.upsert(name, records)
        bar.advance(len(records))
    # Sealed and indexed like the source's rows, rather than left in a growing segment searched by brute force.
    manager.client.flush(name)
    if properties.get(COMPLETE_KEY, "true") == "true":
        manager.mark_complete(name)
    manager.close()
    return name, rows, note


def restore_backup(
    config: RAGConfig, source: Path, *, uri: str | None = None, force: bool = False, progress: ProgressReporter = QUIET
) -> RestoreResult:
    """Rebuild the snapshot at ``source`` into the Milvus at ``uri`` (default: milvus.uri); see the module doc.
    ``progress`` counts the rows inserted, out of the snapshot's."""
    started = time.perf_counter()
    manifest = Manifest.read(source)  # every file checked before anything is touched
    audit_target = sqlite_path(config)
    if manifest.audit_file and audit_target is not None and audit_target.exists() and not force:
        raise SnapshotError(
            f"An audit database already exists at {audit_target}; restoring would replace it. Move "
            "it away or pass --force"
        )
    target = MilvusIndexManager(config.milvus, config.index, uri=uri)
    _refuse_non_empty(target, manifest, force)
    names, rows, notes = [], 0, list(manifest.notes)
    with progress.bar("restore", "rows", total=sum(e.rows for e in manifest.versions)) as bar:
        for entry in manifest.versions:
            name, count, note = _restore_version(config, target.uri, source, manifest.alias, entry, bar)
            if count != entry.rows:
                raise SnapshotError(f"{entry.collection}: restored {count} rows, the snapshot holds {entry.rows}")
            names.append(name)
            rows += count
            if note and note not in notes:
                notes.append(note)
    if manifest.serving:
        target.promote(manifest.alias, manifest.serving)
    target.close()
    if (source / "client_index").is_dir():
        folder = client_index_dir(config, manifest.alias)
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(source / "client_index", folder)
    if manifest.audit_file and audit_target is not None:
        audit_target.parent.mkdir(parents=True, exist_ok=True)
        for stale in (audit_target, *(audit_target.with_name(audit_target.name + s) for s in ("-wal", "-shm"))):
            stale.unlink(missing_ok=True)
        copy_sqlite(source / manifest.audit_file, audit_target)
    elif manifest.audit_file:
        notes.append(
            "the audit store is PostgreSQL: load the snapshot's audit/audit.db with your own tooling, or "
            "restore a pg_dump of the source's store (docs/security.md)"
        )
    return RestoreResult(
        uri=target.uri,
        alias=manifest.alias,
        versions=names,
        rows=rows,
        serving=manifest.serving,
        seconds=time.perf_counter() - started,
        notes=notes,
    )


def _without_nulls(row: dict) -> dict:
    """A snapshot row without the label columns an older version left empty (null)."""
    return {k: v for k, v in row.items() if v is not None or k not in LABEL_FIELDS}
