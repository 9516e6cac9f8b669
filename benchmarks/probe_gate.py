"""The re-index gate on a probe set, without labels (issue 19, item 3): which degraded models it blocks, whether it
ever blocks an unchanged rebuild, and what building the probe set and gating add to a re-index.

The corpus is SciFact's documents judged for a test query plus a seeded sample of the others (``--distractors``);
the serving version is built with the shipped model, and its probe set is built as its promotion would. Then:
- ``--rebuilds`` candidates are rebuilt with the same settings and gated: every block is a false block;
- one candidate per noise level (Gaussian noise of that many times each weight matrix's std) is gated: the smallest
  level blocked is the smallest degradation caught. Each also reports its SciFact test nDCG@10 against the serving
  version's, so a pass can be told from a miss.
Cost: a re-index's wall time (build and promote), against building the probe set and running the gate.

Usage: python -m benchmarks.probe_gate [--distractors 200] [--rebuilds 20]
"""

import argparse
import tempfile
import time
from pathlib import Path

from benchmarks.offline import SCIFACT
from benchmarks.probe_correlation import changed_model, subcorpus, variant
from benchmarks.report import OUT, write_report
from rag_core.config import load_config
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.lifecycle.promotion import promote_candidate
from rag_core.lifecycle.reindex import build_candidate, gate_candidate
from rag_core.quality.evaluation import evaluate
from rag_core.quality.probes import build_for_version, probe_ndcg, store_probe_set

NOISE_LEVELS = (0.05, 0.1, 0.2, 0.3, 0.5)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--distractors", type=int, default=200)
    parser.add_argument("--rebuilds", type=int, default=20)
    parser.add_argument(
        "--noise",
        type=float,
        nargs="*",
        default=list(NOISE_LEVELS),
        help="weight-noise levels of the degraded models to gate (none: only the unchanged rebuilds and the cost)",
    )
    parser.add_argument("--out", default=str(OUT / "probe_gate.json"))
    args = parser.parse_args()
    config = load_config()
    with tempfile.TemporaryDirectory(prefix="probe-gate-") as scratch:
        root = Path(scratch)
        real = subcorpus(args.dataset, root / "corpus", args.distractors)
        settings = variant(config, root, "index")
        context = RagContext(settings)
        ingest_path(real.corpus, context, prune=True)
        alias = context.alias()

        def test_ndcg(context: RagContext, collection: str) -> float:
            engine = context.engine(collection)
            options = engine.options(top_k=100, rerank_top_k=100, document_level=True, candidates=300)
            return round(evaluate(engine, real, options, latency_sample=0)[0].ndcg_at_10, 4)

        serving = context.manager.resolve(alias)
        serving_ndcg = test_ndcg(context, serving)
        started = time.perf_counter()
        probe_set = build_for_version(context.manager, serving, n=settings.quality_gate.probe_set_size)
        store_probe_set(settings, probe_set)
        probe_build_s = time.perf_counter() - started
        started = time.perf_counter()
        probe_ndcg(context.engine(serving), probe_set)  # what each promotion's drift snapshot adds to score it
        probe_score_s = time.perf_counter() - started

        rebuilds, gate_s, reindex_s = [], [], []
        for number in range(args.rebuilds):
            started = time.perf_counter()
            candidate = build_candidate(context).collection
            built = time.perf_counter()
            result = gate_candidate(context, candidate)
            gated = time.perf_counter()
            promote_candidate(context, candidate, alias=alias)  # as a re-index would: the next one rebuilds this
            reindex_s.append(built - started + time.perf_counter() - gated)
            gate_s.append(gated - built)
            rebuilds.append({"candidate": candidate, "passed": result.passed, "evidence": result.evidence})
            print(f"rebuild {number + 1}: {'passed' if result.passed else 'BLOCKED'}; {result.evidence}", flush=True)

        noisy = []
        for level in args.noise:
            model = changed_model("noise", level, root)
            changed = RagContext(
                settings.model_copy(update={"embedding": settings.embedding.model_copy(update={"model": model})})
            )
            candidate = build_candidate(changed).collection
            result = gate_candidate(changed, candidate)
            noisy.append(
                {
                    "noise": level,
                    "blocked": not result.passed,
                    "probe_ndcg_serving": round(result.serving_value, 4),
                    "probe_ndcg_candidate": round(result.candidate_value, 4),
                    "scifact_test_ndcg_serving": test_ndcg(context, context.manager.resolve(alias)),
                    "scifact_test_ndcg_candidate": test_ndcg(changed, candidate),
                    "evidence": result.evidence,
                }
            )
            print(noisy[-1], flush=True)
    caught = [n["noise"] for n in noisy if n["blocked"]]
    median = sorted(reindex_s)[len(reindex_s) // 2] if reindex_s else 0.0
    gate_median = sorted(gate_s)[len(gate_s) // 2] if gate_s else 0.0
    added = probe_build_s + probe_score_s + gate_median
    write_report(
        args.out,
        {
            "corpus": {"distractors": args.distractors, "probes": len(probe_set.probes)},
            "serving_scifact_test_ndcg": serving_ndcg,
            "unchanged_rebuilds": {"count": len(rebuilds), "blocked": sum(not r["passed"] for r in rebuilds)},
            "noisy_models": noisy,
            "smallest_noise_blocked": min(caught) if caught else None,
            "cost": {
                "reindex_median_s": round(median, 2),
                "probe_set_build_s": round(probe_build_s, 2),
                "snapshot_probe_scoring_s": round(probe_score_s, 2),
                "gate_median_s": round(gate_median, 2),
                # the probe work over a re-index without it (its promotion builds and scores the probe set)
                "added_share": round(added / (median - probe_build_s - probe_score_s), 4) if median else None,
            },
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
