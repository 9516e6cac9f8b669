"""``rag backup DEST`` and ``rag restore SRC [--uri URI] [--force]``: what they wrote or rebuilt, one line each."""

import argparse
import json
from dataclasses import asdict
from pathlib import Path

from rag_core.actions import perform
from rag_core.lifecycle.context import RagContext
from rag_core.observability.progress import ProgressReporter


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


def run_backup(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.backup.snapshot import create_backup  # here, not above: every other command starts without it

    progress = ProgressReporter(enabled=not args.quiet)
    result = perform(
        context,
        "backup",
        lambda: create_backup(context.config, Path(args.dest), alias=args.collection, progress=progress),
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


def run_restore(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.backup.restore import restore_backup

    progress = ProgressReporter(enabled=not args.quiet)
    result = perform(
        context,
        "restore",
        lambda: restore_backup(context.config, Path(args.src), uri=args.uri, force=args.force, progress=progress),
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
