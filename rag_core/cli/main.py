"""``rag``: ingest, inspect and check the index from a shell, with errors that say what to fix."""

import argparse
import json
import logging
import math
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import asdict
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from rag_core.actions import Action, action, perform
from rag_core.cli.audit import add_audit_parser, run_audit
from rag_core.cli.backup import add_backup_arguments, run_backup, run_restore
from rag_core.config import ConfigError, load_config
from rag_core.index.lite_lock import IndexLockedError
from rag_core.index.retry import MilvusUnavailableError
from rag_core.lifecycle.context import RagContext
from rag_core.observability.progress import ProgressReporter
from rag_core.quality.evaluation import LATENCY_SAMPLE
from rag_core.security.actor import acting_through
from rag_core.security.labels import AccessLabels
from rag_core.security.pii import install_log_redaction
from rag_core.security.rbac import Identity, acting_principal

PACKAGE = "advanced-rag-milvus"
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what a shell reports for Ctrl-C
EXIT_LOCKED = 75  # EX_TEMPFAIL: another process holds the Milvus Lite file; try again later
EXIT_OUTPUT_CLOSED = 141  # 128 + SIGPIPE, what a shell reports for a tool whose reader left (`seq 99999 | head -1`)

# Read by the libraries when they are first imported, which for the heavy ones (transformers, huggingface_hub,
# sentence-transformers) happens inside a command, after main() sets them. A user's own setting wins.
QUIET_ENVIRONMENT = {
    "TRANSFORMERS_VERBOSITY": "error",  # transformers' info and warnings about the model files
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",  # "Loading weights: 100%|...": transformers >= 5 draws it with the hub's tqdm
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
}  # GRPC_VERBOSITY: rag_core.index.milvus_env, which imports gRPC
# Third-party loggers, at the level from which their records are worth a user's attention: bm25s sets its logger
# to DEBUG when imported; Milvus Lite's in-process gRPC server logs a traceback at ERROR for each call it does not
# implement (pymilvus's AllocTimestamp while it waits for an index), and any real failure of it reaches us as the
# client's exception anyway.
NOISY_LOGGERS = {
    **dict.fromkeys(
        (
            "bm25s",
            "dagster",
            "transformers",
            "sentence_transformers",
            "huggingface_hub",
            "pymilvus",
            "grpc",
            "milvus_lite",
            "urllib3",
            "filelock",
            "httpx",
            "torch",
            "absl",
        ),
        logging.WARNING,
    ),
    "grpc._server": logging.CRITICAL,
}
# --- argument types: a bad value is an argparse error (exit 2) that names the option --------------------------------


def int_at_least(minimum: int, meaning: str, maximum: int | None = None) -> Callable[[str], int]:
    """For counts: ``--top-k 0`` or ``-5`` would silently mean "the default" or "all", so values under ``minimum``
    are refused (``--latency-sample 0`` means every query, so its minimum is 0); and over ``maximum``, where a
    larger value would be quietly changed (``--port 99999`` was announced, and another port bound)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {text!r}") from None
        if value < minimum or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"must be {meaning}, got {value}")
        return value

    return parse


positive_int = int_at_least(1, "a positive integer")
non_negative_int = int_at_least(0, "an integer >= 0")
tcp_port = int_at_least(1, "a TCP port from 1 to 65535", maximum=65535)


def unit_fraction(text: str) -> float:
    """For weights such as ``--alpha``: a number from 0 to 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text!r}") from None
    if not (math.isfinite(value) and 0 <= value <= 1):
        raise argparse.ArgumentTypeError(f"must be a number from 0 to 1, got {text}")
    return value


# --- commands: one function per subcommand ---------------------------------------------------------------------------


def _ingest(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.lifecycle.direct import ingest_path  # imports torch: only when embedding is needed

    path = Path(args.path)
    if args.prune and path.is_file():
        raise ValueError(
            f"--prune needs a folder, and {path} is a file: pruning would delete every other document "
            "of its folder from the index. Give the folder instead."
        )
    report = perform(
        context,
        "ingest",
        lambda: ingest_path(
            path,
            context,
            collection=args.collection,
            prune=args.prune,
            groups=_names(args.groups) if args.groups else None,
            tenant=args.tenant,
            writer=acting_principal(),
            progress=_progress(args),
        ),
        source=str(path),
    )
    for skipped in report.skipped:
        print(f"skipped {skipped}", file=sys.stderr)
    sync = report.sync
    print(
        f"ingested {report.documents} documents ({report.chunks} chunks) into {sync.alias} -> {sync.collection}: "
        f"{sync.upserted} embedded and upserted, {sync.deleted} stale deleted, {sync.unchanged} unchanged; "
        f"{sync.rows} rows; {len(report.skipped)} skipped; {report.seconds:.1f}s"
    )
    return 0


def _stats(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.index.sources import source_stats

    manager, alias = context.manager, context.alias(args.collection)
    stats = manager.get_collection_stats(alias)
    sources = source_stats(manager, stats.collection)
    if args.json:
        print(json.dumps(asdict(stats) | {"sources": [asdict(s) for s in sources]}, indent=2))
    else:
        version = stats.index_version
        print(
            f"{stats.name} -> {stats.collection}: {stats.row_count} rows, data version {stats.data_version}; "
            f"versions {', '.join(stats.versions)}"
        )
        if stats.incomplete_versions:
            print(
                f"incomplete (never served): {', '.join(stats.incomplete_versions)}; "
                "`rag versions --drop-incomplete` removes them"
            )
        if version:
            print(
                f"model {version.model} ({version.dimension} dims), {version.index_type} {version.metric_type} "
                f"M={version.M} efConstruction={version.efConstruction}, fingerprint {version.fingerprint}"
            )
        for source in sources:
            print(f"source {source.source}: {source.documents} documents, {source.rows} rows")
    return 0


def _health(args: argparse.Namespace, context: RagContext) -> int:
    """Exit 0: healthy; 1: not. While another process holds the Milvus Lite file (one process per file) and the
    configured service answers, the service is asked instead: it serving is the store being healthy."""
    from rag_core.serve.probe import served_health

    served = served_health(context.config)
    report = served or context.manager.health()  # creates nothing, not even a folder
    if args.json:
        print(json.dumps(asdict(report), indent=2))
    elif not report.ok:
        print(f"unhealthy: {report.error}", file=sys.stderr)
    elif served:
        print(
            f"ok: {served.uri} is held by {served.held_by}; the service at {served.url} is ready, serving "
            f"{served.collection} ({served.rows} rows)"
        )
    else:
        print(
            f"ok: {report.uri} (Milvus {report.server_version}) answered in {report.latency_ms:.1f} ms; "
            f"collections: {', '.join(report.collections) or 'none'}"
        )
    return 0 if report.ok else 1


def _delete(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.index.delete import delete_from_index
    from rag_core.lifecycle.direct import writable_rows

    alias = context.alias(args.collection)
    report = perform(
        context,
        "delete",
        lambda: delete_from_index(
            context.manager,
            alias,
            doc_ids=args.doc_id,
            source=args.source,
            within=writable_rows(context, alias, acting_principal()),
        ),
        doc_ids=args.doc_id,
        source=args.source,
    )
    print(f"deleted {report.deleted_chunks} chunks from {report.collection}; data version {report.data_version}")
    return 0


def _reindex(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.lifecycle.reindex import reindex  # imports torch
    from rag_core.quality.gate import GateFailedError

    gate = bool(context.config.quality_gate.dataset) if args.gate is None else args.gate
    try:
        report = perform(
            context,
            "reindex",
            lambda: reindex(context, collection=args.collection, gate=gate, progress=_progress(args)),
        )
    except GateFailedError as error:
        print(
            f"error: {error}; the alias did not move and {error.result.candidate} is kept for inspection "
            "(`rag versions`)",
            file=sys.stderr,
        )
        return 1
    build = report.build
    if report.gate:
        print(report.gate.message)
    dropped = f"; dropped {', '.join(report.promotion.dropped)}" if report.promotion.dropped else ""
    print(
        f"rebuilt {build.alias} into {build.collection} ({build.rows} rows, {build.upserted} embedded) and "
        f"moved the alias to it; the previous version stays for `rag rollback`{dropped}; {build.seconds:.1f}s"
    )
    return 0


def _versions(args: argparse.Namespace, context: RagContext) -> int:
    manager, alias = context.manager, context.alias(args.collection)
    if args.drop_incomplete:
        dropped = perform(context, "versions --drop-incomplete", lambda: manager.drop_incomplete(alias), alias=alias)
        print(f"dropped {len(dropped)} incomplete versions{': ' if dropped else ''}{', '.join(dropped)}")
        return 0
    serving = manager.resolve(alias)
    for name in manager.versions(alias):
        state = manager.state(name)
        mark = "serving" if name == serving else ("complete" if state.complete else "incomplete")
        fingerprint = state.version.fingerprint if state.version else "?"
        print(
            f"{name}: {mark}, {manager.count(name)} rows, data version {state.data_version}, "
            f"index version {fingerprint}"
        )
    return 0


def _rollback(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.index.retention import roll_back

    alias = context.alias(args.collection)
    rolled = perform(context, "rollback", lambda: roll_back(context.manager, alias, to=args.version))
    print(f"{alias} -> {rolled.serving}")
    return 0


def _perf_report(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.observability.performance import performance_report

    config = context.config
    report = performance_report(
        Path(config.quality.query_log_dir), period=args.period, target_latency_ms=config.pipeline.target_latency_ms
    )
    if args.json:
        print(json.dumps(asdict(report), indent=2))
        return 0
    print(
        f"{args.period} performance, {report.start} to {report.end}: {report.queries} queries logged under "
        f"{config.quality.query_log_dir}"
    )
    if not report.queries:
        print("nothing to report yet: queries are logged as they run (quality.query_log)")
        return 0
    total = report.latency_ms["retrieval"]
    print(
        f"retrieval p50 {total.p50:.1f} ms, p95 {total.p95:.1f} ms, p99 {total.p99:.1f} ms; SLA "
        f"({report.target_latency_ms:g} ms) {report.sla_compliance:.1%}; cache hits {report.cache_hit_rate:.1%}"
    )
    for day in report.days:
        latency = day.latency_ms["retrieval"]
        print(
            f"  {day.day}: {day.queries} queries, p95 {latency.p95:.1f} ms, SLA {day.sla_compliance:.1%}, "
            f"cache {day.cache_hit_rate:.1%}, " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(day.signals.items()))
        )
    print("slowest: " + ", ".join(f"{q.query_id[:8]} {q.retrieval_ms:.0f} ms" for q in report.slowest[:5]))
    return 0


def _drift(args: argparse.Namespace, context: RagContext) -> int:
    """Exit 0: no drift; 1: drift detected (so a cron job or CI step can alert); 2: an error, such as no snapshot."""
    from rag_core.quality.drift import detect_drift, take_snapshot
    from rag_core.quality.drift_queries import read_queries_file

    config = context.config
    queries = read_queries_file(Path(args.queries)) if args.queries else None
    engine = context.engine(args.collection)
    if args.snapshot:
        path = take_snapshot(config, queries, alias=args.collection, engine=engine)
        print(json.dumps({"snapshot": str(path)}) if args.json else f"drift snapshot written to {path}")
        return 0
    report = perform(context, "drift", lambda: detect_drift(config, queries, alias=args.collection, engine=engine))
    if args.json:
        print(json.dumps(report.as_json()))
        return 1 if report.drift_detected else 0
    verdict = "DRIFT DETECTED" if report.drift_detected else "no drift"
    print(
        f"{verdict}: magnitude {report.drift_magnitude:.3f} (alert above 0.15) on {report.collection}, "
        f"{report.sample_size} sample queries, snapshot of {report.snapshot_of} taken {report.snapshot_taken_at}"
    )
    if report.low_confidence:
        print("low confidence: too few sample queries for the query-drift signal (give --queries FILE)")
    for drift_signal in report.signals:
        mark = "DRIFT" if drift_signal.detected else "ok"
        print(
            f"  {mark:5} {drift_signal.name}: {drift_signal.value:.4f} (threshold {drift_signal.threshold:.4f}) "
            f"{drift_signal.detail}"
        )
    for recommendation in report.recommendations:
        print(f"  - {recommendation}")
    return 1 if report.drift_detected else 0


def _compact(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.index.compaction import compact_versions

    alias = context.alias(args.collection)
    for report in perform(context, "compact", lambda: compact_versions(context.manager, alias)):
        before, after = report.before, report.after
        segments = "" if before.segments is None else f", segments {before.segments} -> {after.segments}"
        note = f" ({report.note})" if report.note else ""
        print(
            f"compacted {report.collection}: {report.state}; deleted rows {before.deleted_rows} -> "
            f"{after.deleted_rows}{segments}; {report.seconds:.1f}s{note}"
        )
    return 0


def _query(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.api import result_depth
    from rag_core.quality.answers import score_answer

    engine = context.engine(args.collection)
    depth = result_depth(context.config.pipeline, args.top_k)
    impersonating = _impersonated(context, args.as_principal) if args.as_principal else None

    def search():  # noqa: ANN202 - a RetrievalResult (the engine is imported lazily)
        principal = impersonating or acting_principal()
        return engine.search(args.text, **depth, mode=args.mode, filter=args.filter, principal=principal)

    result = perform(context, "query", search, mode=args.mode, principal=args.as_principal)
    engine.latency.save()
    answer = score_answer(engine, args.answer, result.results) if args.answer is not None else None
    if args.json:
        print(
            json.dumps(
                {
                    "query": result.query,
                    "collection": result.collection,
                    "lexical_backend": result.lexical_backend,
                    "timings_ms": result.timings_ms,
                    "signals": result.signals,
                    "results": [asdict(c) for c in result.results],
                }
                | ({"answer": answer.as_json()} if answer else {}),
                indent=2,
            )
        )
        return 0
    for rank, chunk in enumerate(result.results, 1):
        print(f"{rank}. [{chunk.fused_score:.3f}] {chunk.doc_id}: {' '.join(chunk.text.split())[:200]}")
    stages = ", ".join(f"{k} {v:.1f}" for k, v in result.timings_ms.items())
    print(f"({len(result.results)} results from {result.collection}, BM25 {result.lexical_backend}; ms: {stages})")
    print("signals: " + ", ".join(f"{k} {v:.3f}" for k, v in result.signals.items()))
    if answer:
        print(
            f"answer faithfulness {answer.score:.3f} ({answer.method}): {len(answer.unsupported)} of "
            f"{len(answer.sentences)} sentences unsupported"
        )
        for sentence in answer.unsupported:
            missing = f" (no context holds {', '.join(sentence.missing)})" if sentence.missing else ""
            print(f"  unsupported: {sentence.sentence}{missing}")
    return 0


def _names(text: str) -> list[str]:
    """``--groups a,b``: the names, without blanks."""
    return [name.strip() for name in text.split(",") if name.strip()]


def _impersonated(context: RagContext, name: str) -> Identity:
    """``--as NAME``: the caller must be an admin (of NAME's tenant); a refusal is audited like any other."""
    from rag_core.compliance.access import denials_audited
    from rag_core.security.rbac import Permission, authorize, impersonated

    with denials_audited(context.config):
        caller = authorize(context.config, Permission.QUERY, action="query --as")
        return impersonated(context.config, caller, name)


def _eval(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.lifecycle.evaluate import dataset_qrels, evaluate_dataset
    from rag_core.quality.evaluation import write_trec_run
    from rag_core.quality.signal_evaluation import signal_report, write_signal_lines

    signals: dict[str, dict[str, float]] = {}
    result, run, options = perform(
        context,
        "eval",
        lambda: evaluate_dataset(
            context,
            Path(args.dataset),
            split=args.split,
            mode=args.mode,
            alpha=args.alpha,
            fusion=args.fusion,
            collection=args.collection,
            on_result=lambda qid, r: signals.update({qid: r.signals}),
            progress=_progress(args),
            latency_sample=args.latency_sample,
        ),
        dataset=Path(args.dataset).name,
        split=args.split,
        mode=args.mode,
    )
    if args.run_out:
        write_trec_run(run, Path(args.run_out), tag=f"{args.mode}-{options.fusion}-{options.alpha_label}")
    if args.signals_out:
        write_signal_lines(Path(args.signals_out), signals)
    quality = signal_report(signals, run, dataset_qrels(Path(args.dataset), args.split))
    if args.json:
        print(json.dumps(result.as_json() | {"signals": quality.as_json()}))
    else:
        print(
            f"{args.mode} ({options.fusion}, alpha {options.alpha_label}) on {result.queries} {args.split} queries: "
            f"nDCG@10 {result.ndcg_at_10:.4f}, Recall@100 {result.recall_at_100:.4f}, MRR@10 {result.mrr_at_10:.4f}; "
            f"latency p50 {result.latency_p50_ms:.1f} ms, p95 {result.latency_p95_ms:.1f} ms "
            f"({result.latency_queries} queries one at a time)"
        )
        print(quality.describe())
    return 0


def _probes(args: argparse.Namespace, context: RagContext) -> int:
    """``rag probes build``: the serving version's probe set, as its promotion builds it."""
    from rag_core.quality.probes import build_for_version, store_probe_set

    alias = context.alias(args.collection)
    serving = context.manager.resolve(alias)
    if serving is None:
        raise LookupError(f"No index {alias!r} at {context.manager.uri} to build probes from; run `rag ingest` first.")
    size = args.n or context.config.quality_gate.probe_set_size
    if not size:
        raise ValueError("quality_gate.probe_set_size is 0 (probe sets are off); give the number wanted with --n N")
    probe_set = perform(context, "probes build", lambda: build_for_version(context.manager, serving, n=size))
    folder = store_probe_set(context.config, probe_set)
    dropped = ", ".join(f"{reason}: {count}" for reason, count in probe_set.dropped.items()) or "none"
    print(
        f"probe set of {serving}: {len(probe_set.probes)} probes from {probe_set.sampled} chunks drawn "
        f"(dropped: {dropped}) -> {folder}"
    )
    print(f"score it: rag eval --dataset {folder}")
    return 0


def _erase(args: argparse.Namespace, context: RagContext) -> int:
    """Exit 0: erased; 1: no such document anywhere (a mistyped id erases nothing, and says so).

    What it prints is PII-redacted like a log line (an id or file name may be an e-mail address): output is often
    captured to a log, and the caller knows which document they named."""
    from rag_core.lifecycle.compliance_manager import ComplianceManager
    from rag_core.security.pii import redact

    report = ComplianceManager(context=context).erase_document(args.doc_id, collection=args.collection)
    doc_id = redact(args.doc_id).text
    if not report.found:
        print(
            f"{doc_id}: not found in any version of the index or asset table; nothing erased (recorded)",
            file=sys.stderr,
        )
        return 1
    versions = ", ".join(f"{name} {n}" for name, n in report.milvus_chunks.items()) or "none"
    tables = ", ".join(f"{name} {n}" for name, n in report.asset_rows.items()) or "none"
    purged = ", ".join(f"{name} {state}" for name, state in report.purged.items()) or "none"
    print(
        f"erased {doc_id}: chunks per version: {versions}; purged from storage: {purged}; asset rows: {tables}; "
        f"query-log records cleaned: {report.query_log_rows}; drift snapshots cleaned: {report.drift_snapshots}; "
        f"probe sets cleaned: {report.probe_sets}; "
        f"client-side index {'cleared' if report.client_index_cleared else 'none'}"
    )
    if report.source_file:
        print(
            redact(
                f"warning: its source file {report.source_file} still exists; the next ingestion of its folder "
                "would index it again: delete or move the file"
            ).text,
            file=sys.stderr,
        )
    return 0


def _serve(args: argparse.Namespace, context: RagContext) -> int:
    from rag_core.serve.server import serve

    config = context.config
    serve(
        config,
        config_file=args.config,
        host=args.host or config.serve.host,
        port=args.port or config.serve.port,
        workers=args.workers or config.serve.workers,
    )
    return 0


def _token(args: argparse.Namespace, context: RagContext) -> int:
    """``hash`` reads the token from stdin, so it stays out of shell history; ``new`` prints a fresh one once."""
    import secrets

    from rag_core.security.rbac import hash_token

    if args.action == "hash":
        print(hash_token(sys.stdin.readline()))
        return 0
    if not args.name or not args.role:
        raise ValueError("rag token new needs --name NAME and --role admin|auditor|operator|reader")
    if args.all_tenants and args.role != "admin":
        raise ValueError("--all-tenants is for admins only: give --role admin, or leave it out")
    groups = _names(args.groups) if args.groups is not None else None
    if groups == []:
        raise ValueError("--groups is empty: list at least one group (a,b), or leave it out for access.default_group")
    labels = AccessLabels.checked(groups, args.tenant, context.config.access, where="rag token new")
    token = secrets.token_urlsafe(32)
    print(f"token (shown once; give it to {args.name} as RAG_API_TOKEN): {token}")
    principal = (
        (f", groups: [{', '.join(labels.groups)}]" if groups else "")
        + (f", tenant: {labels.tenant}" if labels.tenant else "")
        + (", all_tenants: true" if args.all_tenants else "")
    )
    print(
        f"add to config.yaml under security.tokens:\n  - {{name: {args.name}, role: {args.role}, "
        f"token_sha256: {hash_token(token)}{principal}}}"
    )
    return 0


def _authorized(args: argparse.Namespace, context: RagContext) -> int:
    """Every command checks the caller's permissions first (``rag_core.security.rbac``; a denial is audited), then
    runs as the caller: the actions it performs (``rag_core.actions.perform``) check and audit under that identity."""
    from rag_core.actions import allow
    from rag_core.compliance.access import denials_audited
    from rag_core.security.rbac import acting_as, authorize

    declared = _action(args)
    if not declared.permissions:
        return args.run(args, context)
    with denials_audited(context.config):
        identity = authorize(context.config, action=_running(args))
        allow(declared, identity, action=_running(args))
    with acting_as(identity):
        return args.run(args, context)


# --- the parser ------------------------------------------------------------------------------------------------------


def _global_options(*, in_subcommand: bool) -> argparse.ArgumentParser:
    """Options accepted before and after the subcommand (``rag --config X stats`` and ``rag stats --config X``).

    After the subcommand the default is SUPPRESS, so a value given before it is kept unless one is given after it,
    which then wins.
    """
    options = argparse.ArgumentParser(add_help=False)
    options.add_argument(
        "--config",
        metavar="FILE",
        default=argparse.SUPPRESS if in_subcommand else None,
        help="config file (default: $RAG_CONFIG or ./config.yaml)",
    )
    return options


def _command(
    commands: argparse._SubParsersAction,
    name: str,
    help: str,  # noqa: A002 - add_parser's own name
    run: Callable[[argparse.Namespace, RagContext], int],
) -> argparse.ArgumentParser:
    """A subcommand that accepts the global options too and runs ``run(args, context)``."""
    parser = commands.add_parser(name, help=help, description=help, parents=[_global_options(in_subcommand=True)])
    parser.set_defaults(run=run)
    return parser


def _with_progress(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A long command: a progress bar on a terminal, a line every 10 s in a log (stderr), unless ``--quiet``."""
    parser.add_argument("-q", "--quiet", action="store_true", help="show no progress (bar or lines) on stderr")
    return parser


def _progress(args: argparse.Namespace) -> ProgressReporter:
    return ProgressReporter(enabled=not args.quiet)


def _package_version() -> str:
    try:
        return version(PACKAGE)
    except PackageNotFoundError:  # running from a checkout that was never installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="rag", description="advanced-rag-milvus command line", parents=[_global_options(in_subcommand=False)]
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_package_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    ingest = _with_progress(_command(commands, "ingest", "ingest a file or folder into Milvus", _ingest))
    ingest.add_argument("path")
    ingest.add_argument("--collection", help="alias to ingest into (default: milvus.collection)")
    ingest.add_argument(
        "--prune",
        action="store_true",
        help="also remove this folder's documents that are no longer in it (other sources are kept)",
    )
    ingest.add_argument(
        "--groups", metavar="A,B", help="who may read its documents (a NAME.access.json wins; docs/access.md)"
    )
    ingest.add_argument("--tenant", metavar="T", help="whose its documents are (default: access.default_tenant)")
    delete = _command(commands, "delete", "remove documents: by id, or everything a source holds", _delete)
    delete.add_argument("--doc-id", action="append", metavar="ID", help="a document id (repeatable)")
    delete.add_argument("--source", metavar="NAME", help="a source: a folder's canonical path, or an API source name")
    delete.add_argument("--collection")
    reindex = _with_progress(
        _command(commands, "reindex", "rebuild every document into a new version, then move the alias", _reindex)
    )
    reindex.add_argument("--collection")
    reindex.add_argument(
        "--gate",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="gate the alias move on the candidate's quality (default: when quality_gate.dataset is set)",
    )
    versions = _command(commands, "versions", "the versions of the alias: serving, complete or incomplete", _versions)
    versions.add_argument("--drop-incomplete", action="store_true", help="drop versions whose build never finished")
    versions.add_argument("--collection")
    rollback = _command(commands, "rollback", "serve the newest complete older version (or VERSION)", _rollback)
    rollback.add_argument("version", nargs="?", help="a version number or collection name (default: the previous)")
    rollback.add_argument("--collection")
    stats = _command(commands, "stats", "rows, versions and index parameters of the collection", _stats)
    stats.add_argument("--collection")
    stats.add_argument("--json", action="store_true")
    health = _command(commands, "health", "is Milvus reachable, and what version is it", _health)
    health.add_argument("--json", action="store_true")
    compact = _command(
        commands,
        "compact",
        "merge segments and purge deleted rows in every complete version (the weekly operation)",
        _compact,
    )
    compact.add_argument("--collection")
    drift = _command(
        commands,
        "drift",
        "compare queries, results, stored vectors and the model with the snapshot "
        "taken at promotion (exit 1 when drift is detected)",
        _drift,
    )
    drift.add_argument(
        "--queries",
        metavar="FILE",
        help="sample queries (with --snapshot: probe queries): one per "
        "line, or a BEIR queries.jsonl (default: the query log)",
    )
    drift.add_argument("--snapshot", action="store_true", help="take a new reference snapshot instead")
    drift.add_argument("--collection")
    drift.add_argument("--json", action="store_true", help="print one JSON object")
    perf = _command(commands, "perf-report", "latency, SLA, cache and quality trends from the query log", _perf_report)
    perf.add_argument("--period", choices=["daily", "weekly", "monthly"], default="monthly")
    perf.add_argument("--json", action="store_true")
    query = _command(commands, "query", "hybrid search: dense + BM25, fused, reranked", _query)
    query.add_argument("text")
    query.add_argument(
        "--top-k", type=positive_int, metavar="N", help="results to return, at least 1 (default: pipeline.rerank_top_k)"
    )
    query.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    query.add_argument("--collection")
    query.add_argument("--filter", default="", metavar="EXPR", help="a Milvus filter, e.g. 'doc_id like \"hr/%%\"'")
    query.add_argument(
        "--as", dest="as_principal", metavar="NAME", help="admins: see what the token named NAME would see"
    )
    query.add_argument("--json", action="store_true")
    query.add_argument(
        "--answer", metavar="TEXT", help="score this answer's faithfulness to the results, sentence by sentence"
    )
    evaluation = _with_progress(
        _command(commands, "eval", "nDCG@10 / Recall@100 / MRR@10 on a BEIR-format dataset", _eval)
    )
    evaluation.add_argument("--dataset", required=True, help="folder with corpus.jsonl(.gz), queries.jsonl, qrels/")
    evaluation.add_argument("--split", default="test")
    evaluation.add_argument("--mode", choices=["hybrid", "dense", "bm25"], default="hybrid")
    evaluation.add_argument(
        "--alpha",
        type=unit_fraction,
        metavar="A",
        help="dense weight for weighted fusion, 0 to 1 (default: pipeline.hybrid_alpha)",
    )
    evaluation.add_argument("--fusion", choices=["weighted", "rrf"])
    evaluation.add_argument("--collection", help="alias for the dataset's index (default: eval_<folder name>)")
    evaluation.add_argument(
        "--latency-sample",
        type=non_negative_int,
        default=LATENCY_SAMPLE,
        metavar="N",
        help="queries timed one at a time for the latency figures, a fixed seeded sample; the "
        f"quality figures come from all queries in batches (default {LATENCY_SAMPLE}; 0: "
        "every query one at a time, slow on Milvus Lite)",
    )
    evaluation.add_argument("--json", action="store_true")
    evaluation.add_argument("--run-out", help="write a TREC run file (qid Q0 docid rank score tag)")
    evaluation.add_argument(
        "--signals-out",
        metavar="FILE",
        help="write one JSON line per query: qid, hallucination_risk, faithfulness_score, components",
    )
    probes = _command(
        commands,
        "probes",
        "a probe set built from the corpus: queries derived from its own chunks, their documents the answers",
        _probes,
    )
    probes.add_argument("probes_command", choices=["build"], metavar="build")
    probes.add_argument(
        "--n",
        type=positive_int,
        default=None,
        metavar="N",
        help="probes wanted (default: quality_gate.probe_set_size)",
    )
    probes.add_argument("--collection")
    erase = _command(
        commands,
        "erase",
        "right to erasure: remove a document from every version (and its files), "
        "asset table, client-side index, drift snapshot, cache and query-log result list",
        _erase,
    )
    erase.add_argument("--doc-id", required=True, metavar="ID")
    erase.add_argument("--collection")
    serve = _command(
        commands,
        "serve",
        "the HTTP query service: POST /query and /score, /health, /ready, /metrics (docs/serving.md)",
        _serve,
    )
    serve.add_argument("--host", help="address to bind (default: serve.host, loopback)")
    serve.add_argument("--port", type=tcp_port, help="port, 1 to 65535 (default: serve.port, 9090)")
    serve.add_argument(
        "--workers", type=positive_int, help="worker processes, at least 1 (default: serve.workers; >1 needs a server)"
    )
    token = _command(commands, "token", "API tokens for security.tokens: hash one read from stdin, or mint one", _token)
    token.add_argument("action", choices=["hash", "new"])
    token.add_argument("--name", help="with new: the identity's name")
    token.add_argument("--role", choices=["admin", "auditor", "operator", "reader"], help="with new: its role")
    token.add_argument("--groups", metavar="A,B", help="with new: the groups whose documents it may read")
    token.add_argument("--tenant", metavar="T", help="with new: its tenant (default: access.default_tenant)")
    token.add_argument("--all-tenants", action="store_true", help="with new: an admin of every tenant")
    add_audit_parser(
        _command(
            commands, "audit", "the tamper-evident audit trail: verify, query, monthly report, retention", run_audit
        ),
        parents=[_global_options(in_subcommand=True)],
    )
    add_backup_arguments(
        _with_progress(
            _command(
                commands,
                "backup",
                "write a checksummed snapshot: every kept version (rows, vectors, "
                "schema, index parameters, properties), the alias, client-side indexes, audit db, "
                "config",
                run_backup,
            )
        ),
        _with_progress(
            _command(
                commands,
                "restore",
                "rebuild a snapshot into an empty Milvus (Lite or server) without re-embedding",
                run_restore,
            )
        ),
    )
    return parser


# --- entry point -----------------------------------------------------------------------------------------------------


def quiet_third_parties() -> None:
    """Only our own lines on the terminal, with no personal data in them: no weight-loading bars, no DEBUG records,
    and every record of the project's loggers redacted (``install_log_redaction``).

    Done by the entry points (``main``, ``rag_assets.demo``), never when a library module is imported.
    """
    install_log_redaction()
    for variable, value in QUIET_ENVIRONMENT.items():
        os.environ.setdefault(variable, value)
    if "huggingface_hub" in sys.modules and os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1":
        # Imported before us (by an application, a test), it read the variable then: tell it again, and transformers,
        # which copied the hub's setting when it was imported.
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils.logging import disable_progress_bar

            disable_progress_bar()
    root = logging.getLogger()
    if root.handlers:  # logging was configured by whoever runs us (an application, pytest): theirs to decide
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    handler.setLevel(logging.WARNING)  # records of loggers set lower (bm25s sets DEBUG when imported) stop here too
    root.addHandler(handler)
    root.setLevel(logging.WARNING)
    for name, level in NOISY_LOGGERS.items():
        logging.getLogger(name).setLevel(level)


def _action(args: argparse.Namespace) -> Action:
    return action(args.command, getattr(args, f"{args.command}_command", None))


def _running(args: argparse.Namespace) -> str:
    path = getattr(args, "path", None)
    return f"rag {args.command}" + (f" {path}" if path else "")


def _output_closed() -> int:
    """The reader of stdout left (``rag query ... | head -3``): stop quietly, as Unix tools do when SIGPIPE ends
    them. Exit 141 like them rather than 0: the output was cut short, and a ``set -o pipefail`` script should tell
    that apart from a complete run, as it does for ``seq``. Python flushes stdout once more at exit, so stdout is
    pointed at /dev/null first (the Python docs' recipe, "Note on SIGPIPE")."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    return EXIT_OUTPUT_CLOSED


def main(argv: list[str] | None = None) -> int:
    quiet_third_parties()
    args = build_parser().parse_args(argv)
    try:
        with acting_through("cli"):  # audit records name the caller user@cli; an in-process caller keeps its own
            code = _authorized(args, RagContext(load_config(args.config)))
        sys.stdout.flush()  # output still buffered meets a closed pipe here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        return _output_closed()
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # a second Ctrl-C while we wind down ends the process at once
        print(f"interrupted: {_running(args)}; {_action(args).on_interrupt}", file=sys.stderr, flush=True)
        return EXIT_INTERRUPTED
    except IndexLockedError as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_LOCKED
    except (
        ConfigError,
        MilvusUnavailableError,
        LookupError,
        FileNotFoundError,
        NotADirectoryError,
        PermissionError,
        ValueError,
    ) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
