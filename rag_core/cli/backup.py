"""``rag backup DEST`` and ``rag restore SRC [--uri URI] [--force]``: what they wrote or rebuilt, one line each."""

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from rag_core.backup.restore import restore_backup
from rag_core.backup.snapshot import create_backup
from rag_core.compliance.audit import audit_trail
from rag_core.compliance.events import AuditEventType
from rag_core.config import RAGConfig
from rag_core.observability.progress import ProgressReporter
from rag_core.security.actor import current_actor


def add_backup_arguments(backup: argparse.ArgumentParser, restore: argparse.ArgumentParser) -> None:
    backup.add_argument("dest", help="a new (or empty) folder for the snapshot")
    backup.add_argument("--collection", help="alias to back up (default: milvus.collection)")
    backup.add_argument("--json", action="store_true")
    restore.add_argument("src", help="a snapshot folder written by rag backup")
    restore.add_argument(
        "--uri",
        help="the Milvus to restore into (default: milvus.uri): a file for Milvus Lite, "
        "http(s)://host:19530 for a server",
    )
    restore.add_argument(
        "--force",
        action="store_true",
        help="restore into a Milvus that is not empty, replacing this snapshot's alias and versions (and audit db)",
    )
    restore.add_argument("--json", action="store_true")


def run_backup(args: argparse.Namespace, config: RAGConfig) -> int:
    result = create_backup(
        config, Path(args.dest), alias=args.collection, progress=ProgressReporter(enabled=not args.quiet)
    )
    audit_trail(config).record(
        AuditEventType.CONFIG_CHANGE,
        actor=current_actor(),
        details={"action": "backup", "alias": result.alias, "versions": result.versions, "rows": result.rows},
    )
    if args.json:
        print(json.dumps(asdict(result), default=str))
        return 0
    print(
        f"backed up {result.alias}: {len(result.versions)} versions ({', '.join(result.versions)}), "
        f"{result.rows} rows, {result.bytes / 1e6:.1f} MB in {result.seconds:.1f} s -> {result.folder}"
    )
    for note in result.notes:
        print(f"note: {note}")
    return 0


def run_restore(args: argparse.Namespace, config: RAGConfig) -> int:
    result = restore_backup(
        config, Path(args.src), uri=args.uri, force=args.force, progress=ProgressReporter(enabled=not args.quiet)
    )
    audit_trail(config).record(
        AuditEventType.CONFIG_CHANGE,
        actor=current_actor(),
        details={
            "action": "restore",
            "alias": result.alias,
            "versions": result.versions,
            "rows": result.rows,
            "uri": result.uri,
        },
    )
    if args.json:
        print(json.dumps(asdict(result), default=str))
        return 0
    print(
        f"restored {result.alias} into {result.uri}: {len(result.versions)} versions, {result.rows} rows, "
        f"serving {result.serving} ({result.seconds:.1f} s)"
    )
    for note in result.notes:
        print(f"note: {note}")
    return 0
