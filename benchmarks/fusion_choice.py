"""``pipeline.hybrid_alpha: auto`` on SciFact: the weight the probe set picks, and SciFact test nDCG@10 with it
against the shipped default, paired (issue 19, item 6).

The corpus and index are ``benchmarks.probe_correlation``'s shipped configuration (every test-judged document plus
a seeded sample of the others); the probe set is the one its promotion would build.

Usage: python -m benchmarks.fusion_choice [--work DIR]   (DIR: probe_correlation's, to reuse its index)
"""

import argparse
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from benchmarks.offline import SCIFACT
from benchmarks.probe_correlation import SHIPPED, indexed_configurations, subcorpus
from benchmarks.report import OUT, write_report
from rag_core.config import DEFAULT_HYBRID_ALPHA, load_config
from rag_core.quality.bootstrap import paired_bootstrap, per_query_ndcg
from rag_core.quality.evaluation import evaluate, evaluation_options
from rag_core.quality.fusion_choice import choose_for_version
from rag_core.quality.probes import build_for_version


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--distractors", type=int, default=1500)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--work", type=Path, help="probe_correlation's --work folder, to reuse its index")
    parser.add_argument("--out", default=str(OUT / "fusion_choice.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fusion-choice-") as scratch:
        root = args.work or Path(scratch)
        real = subcorpus(args.dataset, root / "corpus", args.distractors)
        context = indexed_configurations(load_config(), root, real, started, only=SHIPPED)[SHIPPED]
        collection = context.manager.resolve(context.alias())
        probe_set = build_for_version(context.manager, collection, n=args.probes)
        tick = time.perf_counter()
        choice = choose_for_version(context.config, context.manager, context.embedder, collection, probe_set)
        choice_s = time.perf_counter() - tick
        engine = context.engine()

        def test_scores(alpha: float) -> dict[str, float]:
            run = evaluate(engine, real, evaluation_options(engine, alpha=alpha), latency_sample=None)[1]
            return per_query_ndcg(run, real.qrels)

        default, chosen = test_scores(DEFAULT_HYBRID_ALPHA), test_scores(choice.chosen_on_probes)
        difference = paired_bootstrap(chosen, default)
    write_report(
        args.out,
        {
            "probes": len(probe_set.probes),
            "choice": asdict(choice) | {"adopted": choice.adopted},
            "choice_seconds": round(choice_s, 1),
            "scifact_test_ndcg_at_10": {
                "default": round(sum(default.values()) / len(default), 4),
                "chosen_on_probes": round(sum(chosen.values()) / len(chosen), 4),
                "served_with_auto": round(sum((chosen if choice.adopted else default).values()) / len(default), 4),
                "chosen_minus_default": difference.as_json(),
            },
            "test_queries": len(real.queries),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
