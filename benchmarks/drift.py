"""Drift detection on SciFact: no false alarms on unchanged data, every injected drift detected, and how long a check
takes at SciFact scale (5,183 documents, 200 probe queries).

SciFact is indexed into its own Milvus Lite file under benchmarks/scratch/ (gitignored; never data/milvus.db), and a
snapshot is taken with the 809 SciFact train queries (200 of them become the probe queries). Then:
- unchanged data: ``RUNS`` checks, each with another random 200 of the 300 test queries, and one with all 300;
- query shift: ``RUNS`` checks, each with ``SHIFT_SAMPLE`` random sentences of this project's README and docs/;
- model swap: ``MODEL_SEEDS`` checks of test queries through the bundled model with Gaussian noise of
  ``NOISE`` x each weight tensor's standard deviation added (another seed each);
- corpus swap, last: every other document's text replaced by three random sentences of this project's docs, then
  ``RUNS`` checks with random test samples. The next run of this benchmark restores the corpus (re-embedding it).

    .venv/bin/python -m benchmarks.drift     # writes benchmarks/out/drift.json
"""

import re
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report
from rag_core.config import EmbeddingConfig, RAGConfig
from rag_core.ingest.stages import document_stream
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import folder_source, ingest_documents, ingest_path
from rag_core.models.embedder import Embedder, shared_embedder
from rag_core.quality.drift import DriftReport, detect_drift, take_snapshot
from rag_core.quality.evaluation import load_beir
from rag_core.tables import batch_to_documents
from rag_core.types import Document
from tests.support.engines import engine_for

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "scratch"
ALIAS = "scifact"
RUNS = 20
SAMPLE = 200
SHIFT_SAMPLE = 50
MODEL_SEEDS = 5
NOISE = 0.05
SMALLER_NOISES = (0.005, 0.01, 0.02)  # how small a change still alarms (not part of the goal)


def config() -> RAGConfig:
    return RAGConfig.model_validate(
        {
            "milvus": {"uri": str(WORK / "drift.db"), "collection": ALIAS},
            "ingestion": {"storage_dir": str(WORK / "assets")},
            "retrieval": {"bm25_dir": str(WORK / "bm25"), "metrics_dir": str(WORK / "metrics"), "cache_size": 0},
            "quality": {"query_log": False, "query_log_dir": str(WORK / "query_log"), "drift_dir": str(WORK / "drift")},
        }
    )


def project_sentences() -> list[str]:
    """Sentences of this project's README and docs/ (code blocks and table rules left out): another domain."""
    sentences = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = re.sub(r"```.*?```", " ", path.read_text(encoding="utf-8"), flags=re.S)
        for sentence in re.split(r"(?<=[.!?])\s+|\n\s*\n", text):
            words = sentence.replace("#", " ").replace("|", " ").split()
            if 6 <= len(words) <= 40:
                sentences.append(" ".join(words))
    return sorted(set(sentences))


def perturbed_embedder(seed: int, noise: float = NOISE) -> Embedder:
    embedder = Embedder(EmbeddingConfig(backend="torch"))  # weights changed in memory reach only torch
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for weight in embedder.model.parameters():
            weight.add_(torch.randn(weight.shape, generator=generator) * noise * weight.std())
    return embedder


def swapped_corpus(path: Path, sentences: list[str]) -> Iterator[Document]:
    """SciFact with every other document's text replaced by three random project sentences (same ids)."""
    rng = np.random.default_rng(0)
    settings = config()
    stream = document_stream(
        path,
        max_file_bytes=settings.ingestion.max_file_bytes,
        batch_size=512,
        source=folder_source(path),
        access=settings.access,
    )
    for i, document in enumerate(d for batch in stream.batches for d in batch_to_documents(batch)):
        if i % 2 == 0:
            text = " ".join(sentences[j] for j in rng.choice(len(sentences), size=3, replace=False))
            document = replace(document, title="", text=text)
        yield document


def checks(run: Callable[[int], DriftReport], runs: int) -> dict:
    """``runs`` checks; how many alarmed, their magnitudes, the signals that fired and the seconds each took."""
    reports, seconds = [], []
    for i in range(runs):
        started = time.perf_counter()
        reports.append(run(i))
        seconds.append(time.perf_counter() - started)
        print(
            f"  run {i}: drift {reports[-1].drift_detected}, magnitude {reports[-1].drift_magnitude:.3f}, "
            f"{seconds[-1]:.1f}s",
            flush=True,
        )
    fired: dict[str, int] = {}
    for report in reports:
        for signal in report.signals:
            fired[signal.name] = fired.get(signal.name, 0) + signal.detected
    values = {name: [round(s.value, 4) for r in reports for s in r.signals if s.name == name] for name in fired}
    return {
        "runs": runs,
        "alarms": sum(r.drift_detected for r in reports),
        "magnitude": {
            "min": round(min(r.drift_magnitude for r in reports), 4),
            "max": round(max(r.drift_magnitude for r in reports), 4),
        },
        "signals_fired": fired,
        "signal_values": {k: {"min": min(v), "max": max(v)} for k, v in values.items()},
        "thresholds": {s.name: round(s.threshold, 4) for s in reports[-1].signals},
        "seconds": {"median": round(float(np.median(seconds)), 2), "max": round(max(seconds), 2)},
        "example": reports[-1].as_json(),
    }


def main() -> None:
    settings = config()
    train, test = load_beir(SCIFACT, "train"), load_beir(SCIFACT, "test")
    embedder = shared_embedder(settings.embedding)
    started = time.perf_counter()
    ingest_path(
        train.corpus, RagContext(settings, embedder=embedder), prune=True
    )  # reused when unchanged; restores a swap
    build_s = time.perf_counter() - started
    engine = engine_for(settings, embedder=embedder)
    started = time.perf_counter()
    take_snapshot(settings, list(train.queries.values()), engine=engine)
    snapshot_s = time.perf_counter() - started
    chunks = engine.client_index().vectors.count
    test_queries = list(test.queries.values())
    rng = np.random.default_rng(0)
    samples = [[test_queries[j] for j in rng.choice(len(test_queries), SAMPLE, replace=False)] for _ in range(RUNS)]
    sentences = project_sentences()
    shifted = [[sentences[j] for j in rng.choice(len(sentences), SHIFT_SAMPLE, replace=False)] for _ in range(RUNS)]

    print("unchanged data, random test samples", flush=True)
    unchanged = checks(lambda i: detect_drift(settings, samples[i], engine=engine), RUNS)
    print("unchanged data, all test queries", flush=True)
    all_test = checks(lambda i: detect_drift(settings, test_queries, engine=engine), 1)
    print("query shift", flush=True)
    query_shift = checks(lambda i: detect_drift(settings, shifted[i], engine=engine), RUNS)
    print("model swap", flush=True)

    def model_check(noise: float) -> Callable[[int], DriftReport]:
        return lambda i: detect_drift(
            settings, samples[i], engine=engine_for(settings, embedder=perturbed_embedder(i, noise))
        )

    model_swap = checks(model_check(NOISE), MODEL_SEEDS)
    smaller_noise = {}
    for noise in SMALLER_NOISES:
        print(f"model swap, noise {noise}", flush=True)
        smaller_noise[str(noise)] = checks(model_check(noise), MODEL_SEEDS)
    print("corpus swap", flush=True)
    started = time.perf_counter()
    ingest_documents(
        swapped_corpus(train.corpus, sentences),
        RagContext(settings, embedder=embedder),
        source=folder_source(train.corpus),
        prune=True,
    )
    swap_s = time.perf_counter() - started
    corpus_swap = checks(lambda i: detect_drift(settings, samples[i], engine=engine), RUNS)

    write_report(
        OUT / "drift.json",
        {
            "setup": {
                "corpus_chunks": chunks,
                "snapshot_queries": len(train.queries),
                "sample": SAMPLE,
                "shift_sample": SHIFT_SAMPLE,
                "shift_sentences": len(sentences),
                "noise": NOISE,
                "model": settings.embedding.model,
                "seconds": {
                    "index_build_or_reuse": round(build_s, 1),
                    "snapshot": round(snapshot_s, 2),
                    "corpus_swap_ingest": round(swap_s, 1),
                },
            },
            "false_alarms": {"unchanged_test_samples": unchanged, "all_test_vs_train_snapshot": all_test},
            "detection": {"query_shift": query_shift, "model_swap": model_swap, "corpus_swap": corpus_swap},
            "model_swap_smaller_noise": smaller_noise,
            "detect_seconds_200_queries": unchanged["seconds"],
        },
    )


if __name__ == "__main__":
    main()
