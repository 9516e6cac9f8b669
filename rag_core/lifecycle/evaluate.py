"""Evaluate a BEIR-format dataset end to end: index its corpus into a collection of its own, then score its queries
(``rag eval``, the Dagster evaluation asset)."""

import logging
from pathlib import Path

from rag_core.index.manager import VERSION_SEPARATOR
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.observability.progress import QUIET, ProgressReporter
from rag_core.quality.evaluation import (
    LATENCY_SAMPLE,
    BeirDataset,
    EvaluationReport,
    ResultHook,
    Run,
    dataset_alias,
    evaluate,
    evaluation_options,
    load_beir,
)
from rag_core.quality.probes import PROBE_SET_FILE, ProbeSet
from rag_core.retrieval.engine import Mode, SearchOptions
from rag_core.retrieval.fusion import FusionMethod

log = logging.getLogger(__name__)


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
    (``evaluate``: batched, with ``latency_sample`` queries timed one at a time); ``progress`` shows both steps.

    A probe set (``rag probes build``) has no corpus of its own: the index it was built from is its corpus, so its
    queries are run against that alias (or ``collection``) as it serves now."""
    if (root / PROBE_SET_FILE).is_file():
        dataset, alias = _probe_dataset(context, root, collection)
    else:
        dataset = load_beir(root, split)
        alias = collection or dataset_alias(root)
        ingest_path(dataset.corpus, context, collection=alias, prune=True, progress=progress)
    engine = context.engine(alias)
    engine.invalidate()  # the ingestion above may have changed what it serves
    options = evaluation_options(engine, mode=mode, alpha=alpha, fusion=fusion)
    report, run = evaluate(engine, dataset, options, on_result, progress, latency_sample=latency_sample)
    return report, run, options


def _probe_dataset(context: RagContext, root: Path, collection: str | None) -> tuple[BeirDataset, str]:
    probe_set = ProbeSet.read(root)
    alias = collection or probe_set.collection.rsplit(VERSION_SEPARATOR, 1)[0]
    serving = context.manager.resolve(alias)
    if serving is None:
        raise LookupError(
            f"The probe set {root} was built from {probe_set.collection}, and {alias!r} serves nothing at "
            f"{context.manager.uri}; give --collection the alias to evaluate."
        )
    if serving != probe_set.collection:
        log.warning(
            "The probe set %s was built from %s; %r now serves %s: its documents judge the probes, so a document "
            "the newer version lacks counts as a miss (`rag probes build` makes the serving version's own).",
            root,
            probe_set.collection,
            alias,
            serving,
        )
    return BeirDataset(root=root, corpus=Path(), queries=probe_set.queries, qrels=probe_set.qrels), alias


def dataset_qrels(root: Path, split: str = "test") -> dict[str, dict[str, int]]:
    """The judgements of a BEIR folder or of a probe set, whichever ``root`` is."""
    return ProbeSet.read(root).qrels if (root / PROBE_SET_FILE).is_file() else load_beir(root, split).qrels
