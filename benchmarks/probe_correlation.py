"""Does the probe set track real quality? Probe-set nDCG@10 against SciFact test nDCG@10 over configurations of
the same corpus, with their Spearman correlation (issue 19, item 2).

The corpus is SciFact's documents judged for a test query plus a seeded sample of the others (``--distractors``),
so that each configuration that changes the vectors (weight noise, a weaker model, smaller chunks) can be
re-embedded in minutes on a laptop CPU; every configuration indexes the same documents, and the test qrels keep
only those documents (all of them are kept: every judged document is in the sub-corpus). One probe set is built,
as a promotion would, from the default configuration's index, and every configuration answers the same probes.

Usage: python -m benchmarks.probe_correlation [--distractors 1500] [--probes 200]
"""

import argparse
import gzip
import json
import random
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.offline import SCIFACT, quality_config
from benchmarks.report import OUT, write_report
from rag_core.config import RAGConfig, load_config
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_path
from rag_core.quality.evaluation import BeirDataset, evaluate, load_beir
from rag_core.quality.probes import build_probe_set
from rag_core.retrieval.engine import RetrievalEngine, SearchOptions
from tests.support.models import degraded_model

SEED = 0
PROBE_FIELDS = ["chunk_id", "doc_id", "source", "text"]


def subcorpus(scifact: Path, folder: Path, distractors: int) -> BeirDataset:
    """Every document a test query judges, plus ``distractors`` others drawn with a fixed seed."""
    test = load_beir(scifact, "test")
    judged = {d for relevant in test.qrels.values() for d in relevant}
    with gzip.open(scifact / "corpus.jsonl.gz", "rt", encoding="utf-8") as lines:
        documents = [json.loads(line) for line in lines]
    others = sorted(d["_id"] for d in documents if d["_id"] not in judged)
    kept = judged | set(random.Random(SEED).sample(others, distractors))
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / "corpus.jsonl").open("w", encoding="utf-8") as out:
        for document in documents:
            if document["_id"] in kept:
                out.write(json.dumps(document) + "\n")
    return BeirDataset(root=folder, corpus=folder / "corpus.jsonl", queries=test.queries, qrels=test.qrels)


def changed_model(kind: str, amount: float, folder: Path) -> str:
    """The bundled model with noise of ``amount`` x each weight matrix's std (``noise``), or with only its first
    ``amount`` transformer layers (``layers``): models that embed worse, as a broken upgrade would."""
    change = {"noise": amount, "seed": SEED} if kind == "noise" else {"layers": int(amount)}
    return degraded_model(folder / f"minilm-{kind}-{amount:g}", **change)


def variant(config: RAGConfig, root: Path, name: str, *, model: str | None = None, chunk: int | None = None):
    """``config`` with its own Lite file and data folders under ``root/name``, and the model or chunk size."""
    embedding = config.embedding.model_copy(update={"model": model}) if model else config.embedding
    chunking = config.chunking.model_copy(update={"chunk_size": chunk}) if chunk else config.chunking
    base = root / name
    return quality_config(config).model_copy(
        update={
            "milvus": config.milvus.model_copy(update={"uri": str(base / "milvus.db"), "collection": "probe_bench"}),
            "embedding": embedding,
            "chunking": chunking,
            "retrieval": config.retrieval.model_copy(
                update={"bm25_dir": str(base / "bm25"), "metrics_dir": str(base / "metrics"), "cache_size": 0}
            ),
            "quality": config.quality.model_copy(
                update={"query_log": False, "drift_dir": str(base / "drift"), "reports_dir": str(base / "reports")}
            ),
            "ingestion": config.ingestion.model_copy(update={"storage_dir": str(base / "assets")}),
            "compliance": config.compliance.model_copy(
                update={"database_url": f"sqlite:///{base}/audit.db", "reports_dir": str(base / "compliance")}
            ),
        }
    )


def scores(engine: RetrievalEngine, options: SearchOptions, real: BeirDataset, probes: BeirDataset) -> dict:
    return {
        "scifact_test_ndcg_at_10": round(evaluate(engine, real, options, latency_sample=0)[0].ndcg_at_10, 4),
        "probe_ndcg_at_10": round(evaluate(engine, probes, options, latency_sample=0)[0].ndcg_at_10, 4),
    }


SHIPPED = "MiniLM (shipped)"
DEPTH = {"top_k": 100, "rerank_top_k": 100, "document_level": True, "candidates": 300}
INDEXES = {
    SHIPPED: {},
    "weight noise 0.1": {"model": ("noise", 0.1)},
    "weight noise 0.3": {"model": ("noise", 0.3)},
    "weight noise 0.5": {"model": ("noise", 0.5)},
    "MiniLM, 2 of 6 layers": {"model": ("layers", 2)},
    "chunks of 64 tokens": {"chunk": 64},
}


def indexed_configurations(
    config: RAGConfig, root: Path, real: BeirDataset, started: float, only: str | None = None
) -> dict[str, RagContext]:
    """One index per configuration that embeds differently (or ``only`` the one named), under ``root`` (reused
    when already there)."""
    contexts = {}
    for name, change in INDEXES.items():
        if only and name != only:
            continue
        model = changed_model(*change["model"], root) if "model" in change else None
        contexts[name] = RagContext(variant(config, root, slug(name), model=model, chunk=change.get("chunk")))
        if contexts[name].manager.resolve(contexts[name].alias()) is None:  # a kept --work index is reused
            ingest_path(real.corpus, contexts[name], prune=True)
        print(f"indexed {name} ({time.perf_counter() - started:.0f}s)", flush=True)
    return contexts


def configuration_searches(name: str, engine: RetrievalEngine) -> dict[str, SearchOptions]:
    """The index's own configuration, and on the shipped index each leg alone and other fusions."""
    searches = {name: engine.options(**DEPTH)}
    if name == SHIPPED:
        searches |= {
            "dense only": engine.options(mode="dense", **DEPTH),
            "BM25 only": engine.options(mode="bm25", **DEPTH),
            "hybrid alpha 0.3": engine.options(alpha=0.3, **DEPTH),
            "hybrid alpha 0.95": engine.options(alpha=0.95, **DEPTH),
            "hybrid rrf": engine.options(fusion="rrf", **DEPTH),
        }
    return searches


def spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rank correlation, ties given their average rank."""

    def ranks(values: list[float]) -> np.ndarray:
        order = np.argsort(values, kind="stable")
        ranked = np.empty(len(values))
        ranked[order] = np.arange(len(values), dtype=float)
        for value in set(values):
            tied = [i for i, v in enumerate(values) if v == value]
            ranked[tied] = np.mean(ranked[tied])
        return ranked

    return float(np.corrcoef(ranks(a), ranks(b))[0, 1])


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name.lower()).strip("-")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", type=Path, default=SCIFACT)
    parser.add_argument("--distractors", type=int, default=1500)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument(
        "--work", type=Path, help="keep the indexes in this folder and reuse them next time (default: a temporary one)"
    )
    parser.add_argument("--out", default=str(OUT / "probe_correlation.json"))
    args = parser.parse_args()
    started = time.perf_counter()
    config = load_config()
    with tempfile.TemporaryDirectory(prefix="probe-bench-") as scratch:
        root = args.work or Path(scratch)
        real = subcorpus(args.dataset, root / "corpus", args.distractors)
        documents = sum(1 for _ in real.corpus.open(encoding="utf-8"))
        contexts = indexed_configurations(config, root, real, started)
        shipped = contexts[SHIPPED]
        collection = shipped.manager.resolve(shipped.alias())
        rows = [r for batch in shipped.manager.iter_rows(collection, PROBE_FIELDS) for r in batch]
        probe_set = build_probe_set(
            rows, collection=collection, data_version=shipped.manager.state(collection).data_version, n=args.probes
        )
        probes = BeirDataset(root=root, corpus=real.corpus, queries=probe_set.queries, qrels=probe_set.qrels)
        table = []
        for name, context in contexts.items():
            engine = context.engine()
            searches = configuration_searches(name, engine)
            for label, options in searches.items():
                row = {"configuration": label, "embedding_changed": label == name and name != SHIPPED}
                row |= scores(engine, options, real, probes)
                if label == name:  # the embedding's own quality: its dense leg alone, as the gate also judges it
                    dense = engine.options(mode="dense", **DEPTH)
                    row |= {f"dense_{k}": v for k, v in scores(engine, dense, real, probes).items()}
                table.append(row)
                print(table[-1], flush=True)
    rho = spearman([r["probe_ndcg_at_10"] for r in table], [r["scifact_test_ndcg_at_10"] for r in table])
    embeddings = [r for r in table if "dense_probe_ndcg_at_10" in r]
    rho_dense = spearman(
        [r["dense_probe_ndcg_at_10"] for r in embeddings], [r["dense_scifact_test_ndcg_at_10"] for r in embeddings]
    )
    write_report(
        args.out,
        {
            "corpus": {"documents": documents, "distractors": args.distractors, "test_queries": len(real.queries)},
            "probe_set": {"probes": len(probe_set.probes), "sampled": probe_set.sampled, "dropped": probe_set.dropped},
            "configurations": table,
            "spearman": round(rho, 4),
            "spearman_dense_leg_over_embeddings": round(rho_dense, 4),
            "seconds": round(time.perf_counter() - started, 1),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
