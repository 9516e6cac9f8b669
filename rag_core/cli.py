"""``rag``: ingest, inspect and check the index from a shell, with errors that say what to fix."""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from rag_core.config import ConfigError, RAGConfig, load_config
from rag_core.index_manager import MilvusIndexManager
from rag_core.retry import MilvusUnavailableError


def _ingest(args: argparse.Namespace, config: RAGConfig) -> int:
    from rag_core.ingest import ingest_path  # imports torch: only when embedding is needed

    report = ingest_path(Path(args.path), config, collection=args.collection)
    for skipped in report.skipped:
        print(f"skipped {skipped}", file=sys.stderr)
    sync = report.sync
    print(f"ingested {report.documents} documents ({report.chunks} chunks) into {sync.alias} -> {sync.collection}: "
          f"{sync.upserted} embedded and upserted, {sync.deleted} stale deleted, {sync.unchanged} unchanged; "
          f"{sync.rows} rows; {len(report.skipped)} skipped; {report.seconds:.1f}s")
    return 0


def _stats(args: argparse.Namespace, config: RAGConfig) -> int:
    stats = MilvusIndexManager(config.milvus, config.index).get_collection_stats(args.collection or config.milvus.collection)
    if args.json:
        print(json.dumps(asdict(stats), indent=2))
    else:
        version = stats.index_version
        print(f"{stats.name} -> {stats.collection}: {stats.row_count} rows; versions {', '.join(stats.versions)}")
        if version:
            print(f"model {version.model} ({version.dimension} dims), {version.index_type} {version.metric_type} "
                  f"M={version.M} efConstruction={version.efConstruction}, fingerprint {version.fingerprint}")
    return 0


def _health(args: argparse.Namespace, config: RAGConfig) -> int:
    report = MilvusIndexManager(config.milvus, config.index).health()
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    elif report.ok:
        print(f"ok: {report.uri} (Milvus {report.server_version}) answered in {report.latency_ms:.1f} ms; "
              f"collections: {', '.join(report.collections) or 'none'}")
    else:
        print(f"unhealthy: {report.error}", file=sys.stderr)
    return 0 if report.ok else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rag", description="advanced-rag-milvus command line")
    parser.add_argument("--config", help="config file (default: $RAG_CONFIG or ./config.yaml)")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = commands.add_parser("ingest", help="ingest a file or folder into Milvus")
    ingest.add_argument("path")
    ingest.add_argument("--collection", help="alias to ingest into (default: milvus.collection)")
    ingest.set_defaults(run=_ingest)
    stats = commands.add_parser("stats", help="rows, versions and index parameters of the collection")
    stats.add_argument("--collection")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(run=_stats)
    health = commands.add_parser("health", help="is Milvus reachable, and what version is it")
    health.add_argument("--json", action="store_true")
    health.set_defaults(run=_health)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args, load_config(args.config))
    except (ConfigError, MilvusUnavailableError, LookupError, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
