"""Does ``hallucination_risk`` hold on other corpora, and would refitting it on a corpus's probe set help?
(issue 19, item 4, measured before anything is built on it.)

For each corpus: its probe set (the shipped derivation) is searched as served; a probe fails when its document is
not in the top 5, the event the risk model predicts. Reported: failures, the shipped model's AUROC on the probes
(95 % bootstrap CI), and the AUROC of the same model refitted on the corpus's probes, cross-validated over 5 seeded
folds (each fold scored by a model fitted on the other four). The shipped derivation's probes almost never fail,
so each corpus is also probed with harder queries (the salient sentence without the rarest half of its content
words, from ``benchmarks.probe_derivations``); on SciFact the model refitted on all those probes is scored on the
300 test queries against the shipped model (which was fitted on SciFact train).

Corpora: SciFact (``benchmarks.probe_correlation``'s sub-corpus) and this project's own Markdown docs (README and
docs/), which are nothing like abstracts.

Usage: python -m benchmarks.probe_risk [--work DIR] [--probes 500]
"""

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.offline import SCIFACT
from benchmarks.probe_correlation import SHIPPED, indexed_configurations, subcorpus, variant
from benchmarks.probe_derivations import without_rarest
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.quality.auroc import auroc_interval
from rag_core.quality.bootstrap import folds
from rag_core.quality.evaluation import BeirDataset, evaluate, evaluation_options
from rag_core.quality.probes import ROW_FIELDS, Derivation, build_probe_set, derive_query
from rag_core.quality.signal_evaluation import failed_queries
from rag_core.retrieval.hallucination import HallucinationModel, shipped_model

REPO = Path(__file__).resolve().parents[1]
MIN_FAILURES = 5  # fewer cannot fit or score a model
HARDER = "{}, probes without the rarest half of their content words"


def searched(context: RagContext, dataset: BeirDataset) -> tuple[dict[str, dict[str, float]], dict[str, bool]]:
    signals: dict[str, dict[str, float]] = {}
    engine = context.engine()
    run = evaluate(
        engine, dataset, evaluation_options(engine), lambda q, r: signals.update({q: r.signals}), latency_sample=None
    )[1]
    return signals, failed_queries(run, dataset.qrels)


def interval(labels: list[bool], scores: list[float]) -> dict | None:
    if sum(labels) < MIN_FAILURES or all(labels):
        return None
    return auroc_interval(labels, scores).as_json(4)


def cross_validated_refit(signals: dict[str, dict[str, float]], failed: dict[str, bool]) -> dict | None:
    """AUROC of a model refitted on four folds of the probes and scored on the fifth, folds pooled."""
    ids = sorted(failed)
    if sum(failed.values()) < MIN_FAILURES:
        return None
    features = shipped_model().features
    held_out = {}
    for part in folds(ids, 5, 0):
        train = [q for q in ids if q not in set(part)]
        if len({failed[q] for q in train}) < 2:
            return None
        model = HallucinationModel.fit([signals[q] for q in train], [failed[q] for q in train], features)
        held_out |= {q: model.risk(signals[q]) for q in part}
    return interval([failed[q] for q in ids], [held_out[q] for q in ids])


def corpus_figures(
    context: RagContext, probes: int, derive: Derivation = derive_query
) -> tuple[dict, dict[str, dict[str, float]], dict[str, bool]]:
    collection = context.manager.resolve(context.alias())
    rows = [row for batch in context.manager.iter_rows(collection, ROW_FIELDS) for row in batch]
    probe_set = build_probe_set(rows, collection=collection, data_version=0, n=probes, derive=derive)
    dataset = BeirDataset(root=Path(), corpus=Path(), queries=probe_set.queries, qrels=probe_set.qrels)
    signals, failed = searched(context, dataset)
    ids = sorted(failed)
    figures = {
        "probes": len(ids),
        "failed": sum(failed.values()),
        "shipped_auroc": interval([failed[q] for q in ids], [signals[q]["hallucination_risk"] for q in ids]),
        "refit_cross_validated_auroc": cross_validated_refit(signals, failed),
    }
    return figures, signals, failed


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--distractors", type=int, default=1500)
    parser.add_argument("--probes", type=int, default=500)
    parser.add_argument("--work", type=Path, help="probe_correlation's --work folder, to reuse its SciFact index")
    parser.add_argument("--out", default=str(OUT / "probe_risk.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    config = load_config()
    corpora = {}
    with tempfile.TemporaryDirectory(prefix="probe-risk-") as scratch:
        root = args.work or Path(scratch)
        real = subcorpus(args.dataset, root / "corpus", args.distractors)
        scifact = indexed_configurations(config, root, real, started, only=SHIPPED)[SHIPPED]
        corpora["SciFact"], _, _ = corpus_figures(scifact, args.probes)
        # Harder probes fail more often: enough failures to fit on, if they resemble real ones
        harder = without_rarest(0.5)
        corpora[HARDER.format("SciFact")], signals, failed = corpus_figures(scifact, args.probes, harder)
        if sum(failed.values()) >= MIN_FAILURES:
            refit = HallucinationModel.fit(
                [signals[q] for q in failed], [failed[q] for q in failed], shipped_model().features
            )
            test_signals, test_failed = searched(scifact, real)
            ids = sorted(test_failed)
            labels = [test_failed[q] for q in ids]
            corpora[HARDER.format("SciFact")]["test_queries"] = {
                "queries": len(ids),
                "failed": sum(labels),
                "shipped_auroc": interval(labels, [test_signals[q]["hallucination_risk"] for q in ids]),
                "refit_on_probes_auroc": interval(labels, [refit.risk(test_signals[q]) for q in ids]),
            }
        docs = Path(scratch) / "docs"
        docs.mkdir()
        for source in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
            (docs / source.name).write_text(source.read_text(encoding="utf-8"), encoding="utf-8")
        project = RagContext(variant(config, Path(scratch), "project-docs"))
        ingest_path(docs, project, prune=True)
        corpora["this project's docs"], _, _ = corpus_figures(project, args.probes)
        corpora[HARDER.format("this project's docs")], _, _ = corpus_figures(project, args.probes, harder)
        print(corpora, flush=True)
    write_report(args.out, {"corpora": corpora, "seconds": round(time.perf_counter() - started, 1)})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
