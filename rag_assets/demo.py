"""``make run``: materialize the ingestion chain on the sample corpus (examples/corpus), then answer one question.

Dagster, rag_core and the libraries under them are imported inside ``main``, after the output is quieted:
gRPC reads its log level once, when it is first imported (by dagster and by pymilvus).
"""

import asyncio
import sys

SAMPLE_QUERY = "How do I check that Milvus is healthy?"
GUIDE_SAMPLE_QUERIES = [
    SAMPLE_QUERY,
    "How are documents chunked before embedding?",
    "What happens when the embedding model changes?",
    "How do I roll back to the previous version?",
    "Which schedules run by default?",
    "How is the hybrid score computed?",
]
# The run's own event log (STEP_START, LOADED_INPUT, ... at DEBUG, a failed step's traceback at ERROR) is for
# `make ui`; here the summary below says what the run did, or one line says why it failed.
QUIET_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}


def main() -> int:
    from rag_core.cli.main import quiet_third_parties

    quiet_third_parties()

    import dagster as dg

    from rag_assets.definitions import build_definitions
    from rag_core.api import AdvancedRAGPipeline
    from rag_core.config import load_config
    from rag_core.lifecycle.context import RagContext

    config = load_config()
    definitions = build_definitions(config)
    with dg.DagsterInstance.get() as instance:
        result = definitions.resolve_job_def("ingestion").execute_in_process(
            run_config=QUIET_RUN_CONFIG, instance=instance, raise_on_error=False
        )
    if not result.success:
        for event in result.all_events:
            if event.is_step_failure:
                print(
                    f"The ingestion run failed at {event.step_key}: {_root_cause(event.step_failure_data.error)}",
                    file=sys.stderr,
                )
        print("Fix that and run `make run` again; `make ui` shows the whole run log.", file=sys.stderr)
        return 1
    for event in result.get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        metadata = {k: v.value for k, v in materialization.metadata.items() if isinstance(v.value, (int, float, str))}
        interesting = {
            k: metadata[k]
            for k in (
                "documents",
                "skipped_inputs",
                "chunks",
                "tokens",
                "embedded_chunks",
                "reused_chunks",
                "upserted",
                "deleted",
                "rows",
                "collection",
                "seconds",
            )
            if k in metadata
        }
        print(f"{materialization.asset_key.to_user_string():>15}: {interesting}")
    checks = result.get_asset_check_evaluations()
    print(f"{'checks':>15}: {sum(c.passed for c in checks)}/{len(checks)} passed")
    context = RagContext(config)
    result = context.engine().search(SAMPLE_QUERY, rerank_top_k=3)
    print(
        f"\nQ: {SAMPLE_QUERY}  (hybrid: dense + BM25 {result.lexical_backend}, {result.timings_ms['retrieval']:.0f} ms)"
    )
    for rank, chunk in enumerate(result.results, 1):
        print(f"  {rank}. [{chunk.fused_score:.3f}] {chunk.doc_id}: {' '.join(chunk.text.split())[:160]}")
    asyncio.run(operations_guide_monitoring(AdvancedRAGPipeline(context=context)))
    return 0


async def operations_guide_monitoring(pipeline) -> None:  # noqa: ANN001 - rag_core.api.AdvancedRAGPipeline
    from rag_core.quality.drift import take_snapshot
    from rag_core.quality.drift_snapshot import snapshot_path

    """The guide's drift and quality checks, as it writes them, against the index just built (the drift reference
    is the snapshot its promotion took)."""
    if not snapshot_path(pipeline.settings, pipeline.engine.serving_state().collection).exists():
        # An index promoted before drift detection existed has no reference yet: take it now, as a user would.
        print(f"\nDrift reference snapshot taken: {take_snapshot(pipeline.settings, engine=pipeline.engine)}")
    drift_report = await pipeline.detect_drift(sample_queries=GUIDE_SAMPLE_QUERIES)
    print(
        f"\nDrift: magnitude {drift_report.drift_magnitude:.3f} over {drift_report.sample_size} sample queries"
        f"{' (low confidence: a small sample)' if drift_report.low_confidence else ''}"
    )
    if drift_report.drift_detected:
        print("WARNING: Drift detected!")
        for rec in drift_report.recommendations:
            print(f"  - {rec}")

    results, metrics = await pipeline.retrieve(query="test")
    print(
        f"Quality of the query 'test': hallucination_risk {metrics.hallucination_risk:.2f}, "
        f"faithfulness_score {metrics.faithfulness_score:.2f}"
    )
    if metrics.hallucination_risk > 0.2:
        print("WARNING: High hallucination risk")
    if metrics.faithfulness_score < 0.7:
        print("WARNING: Low faithfulness score")


def _root_cause(error) -> str:  # noqa: ANN001 - dagster's SerializableErrorInfo
    """The user's own exception, which Dagster wraps in its own errors."""
    while error.cause is not None:
        error = error.cause
    return error.message.strip()


if __name__ == "__main__":
    sys.exit(main())
