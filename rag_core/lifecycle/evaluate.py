"""Evaluate a BEIR-format dataset end to end: index its corpus into a collection of its own, then score its queries
(``rag eval``, the Dagster evaluation asset)."""

from pathlib import Path

from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.observability.progress import QUIET, ProgressReporter
from rag_core.quality.evaluation import (
    LATENCY_SAMPLE,
    EvaluationReport,
    ResultHook,
    Run,
    dataset_alias,
    evaluate,
    evaluation_options,
    load_beir,
)
from rag_core.retrieval.engine import Mode, SearchOptions
from rag_core.retrieval.fusion import FusionMethod


def evaluate_dataset(
    context: RagContext,
    root: Path,
    *,
    split: str = "test",
    mode: Mode = "hybrid",
    alpha: float | None = None,
    fusion: FusionMethod | None = None,
    collection: str | None = None,
    on_result: ResultHook | None = None,
    progress: ProgressReporter = QUIET,
    latency_sample: int = LATENCY_SAMPLE,
) -> tuple[EvaluationReport, Run, SearchOptions]:
    """Index the dataset's corpus into its own collection (reused when unchanged), then run and score its queries
    (``evaluate``: batched, with ``latency_sample`` queries timed one at a time); ``progress`` shows both steps."""
    dataset = load_beir(root, split)
    alias = collection or dataset_alias(root)
    ingest_path(dataset.corpus, context, collection=alias, prune=True, progress=progress)
    engine = context.engine(alias)
    engine.invalidate()  # the ingestion above may have changed what it serves
    options = evaluation_options(engine, mode=mode, alpha=alpha, fusion=fusion)
    report, run = evaluate(engine, dataset, options, on_result, progress, latency_sample=latency_sample)
    return report, run, options
