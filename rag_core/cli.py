"""``rag``: ingest, inspect and check the index from a shell, with errors that say what to fix."""

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path

from rag_core.config import ConfigError, RAGConfig, load_config
from rag_core.index.manager import MilvusIndexManager
from rag_core.index.retry import MilvusUnavailableError


def _ingest(args: argparse.Namespace, config: RAGConfig) -> int:
    from rag_core.ingest.direct import ingest_path  # imports torch: only when embedding is needed

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


def _compact(args: argparse.Namespace, config: RAGConfig) -> int:
    manager = MilvusIndexManager(config.milvus, config.index)
    result = manager.compact(args.collection or config.milvus.collection)
    print(f"compacted {result.collection}: job {result.job_id}, {result.state}")
    return 0


def _query(args: argparse.Namespace, config: RAGConfig) -> int:
    from rag_core.retrieval.engine import RetrievalEngine

    engine = RetrievalEngine(config, alias=args.collection)
    top_k = args.top_k or config.pipeline.rerank_top_k
    result = engine.search(args.text, top_k=max(top_k, config.pipeline.top_k), rerank_top_k=top_k, mode=args.mode)
    engine.latency.save()
    if args.json:
        print(json.dumps({"query": result.query, "collection": result.collection,
                          "lexical_backend": result.lexical_backend, "timings_ms": result.timings_ms,
                          "results": [asdict(c) for c in result.results]}, indent=2))
        return 0
    for rank, chunk in enumerate(result.results, 1):
        print(f"{rank}. [{chunk.fused_score:.3f}] {chunk.doc_id}: {' '.join(chunk.text.split())[:200]}")
    stages = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
    print(f"({len(result.results)} results from {result.collection}, BM25 {result.lexical_backend}; ms: {stages})")
    return 0


def _eval(args: argparse.Namespace, config: RAGConfig) -> int:
    from rag_core.quality.evaluation import evaluate_dataset, write_trec_run

    result, run, options = evaluate_dataset(config, Path(args.dataset), split=args.split, mode=args.mode,
                                            alpha=args.alpha, fusion=args.fusion, collection=args.collection)
    if args.run_out:
        write_trec_run(run, Path(args.run_out), tag=f"{args.mode}-{options.fusion}-{options.alpha}")
    if args.json:
        print(json.dumps(result.as_json()))
    else:
        print(f"{args.mode} ({options.fusion}, alpha {options.alpha}) on {result.queries} {args.split} queries: "
              f"nDCG@10 {result.ndcg_at_10:.4f}, Recall@100 {result.recall_at_100:.4f}, MRR@10 {result.mrr_at_10:.4f}; "
              f"latency p50 {result.latency_p50_ms:.1f} ms, p95 {result.latency_p95_ms:.1f} ms")
    return 0


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
    compact = commands.add_parser("compact", help="merge segments and purge deleted rows (weekly operation)")
    compact.add_argument("--collection")
    compact.set_defaults(run=_compact)
    query = commands.add_parser("query", help="hybrid search: dense + BM25, fused, reranked")
    query.add_argument("text")
    query.add_argument("--top-k", type=int, help="results to return (default: pipeline.rerank_top_k)")
    query.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    query.add_argument("--collection")
    query.add_argument("--json", action="store_true")
    query.set_defaults(run=_query)
    evaluation = commands.add_parser("eval", help="nDCG@10 / Recall@100 / MRR@10 on a BEIR-format dataset")
    evaluation.add_argument("--dataset", required=True, help="folder with corpus.jsonl(.gz), queries.jsonl, qrels/")
    evaluation.add_argument("--split", default="test")
    evaluation.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    evaluation.add_argument("--alpha", type=float, help="dense weight for weighted fusion (default: pipeline.hybrid_alpha)")
    evaluation.add_argument("--fusion", choices=["weighted", "rrf"])
    evaluation.add_argument("--collection", help="alias for the dataset's index (default: eval_<folder name>)")
    evaluation.add_argument("--json", action="store_true")
    evaluation.add_argument("--run-out", help="write a TREC run file (qid Q0 docid rank score tag)")
    evaluation.set_defaults(run=_eval)
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
