"""Drift detection: no alarm on unchanged data, an alarm for each kind of drift, clear errors otherwise."""

import asyncio
import json
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from rag_core import AdvancedRAGPipeline, RAGConfig
from rag_core.cli.main import main
from rag_core.config import EmbeddingConfig
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.models.embedder import Embedder
from rag_core.quality.drift import DriftReport, NoSnapshotError, detect_drift, take_snapshot
from rag_core.quality.drift_signals import rank_biased_overlap
from rag_core.quality.drift_snapshot import CorruptSnapshotError, DriftSnapshot, snapshot_path
from rag_core.types import Document
from tests.support.configs import make_config
from tests.support.engines import engine_for

SUBJECTS = [
    "Milvus collections",
    "the HNSW index",
    "BM25 ranking",
    "Dagster sensors",
    "the cross-encoder reranker",
    "the query cache",
    "collection aliases",
    "segment compaction",
    "the embedding model",
    "document chunking",
]
FACETS = ["search latency", "recall on long documents", "memory use", "failure recovery"]
QUESTIONS = [
    "how does {s} affect {f}",
    "what should I tune in {s} for {f}",
    "does {s} matter for {f}",
    "explain {s} and {f}",
    "why is {f} worse with {s}",
    "best practices: {s} and {f}",
    "{s} {f} trade-offs",
    "can {s} improve {f}",
]
FOODS = ["bread", "risotto", "salmon", "pancakes", "lentil soup", "roast chicken", "apple pie", "tofu curry"]
COOKING = [
    "how long do I bake {x}",
    "what spices go with {x}",
    "can I freeze {x}",
    "how do I keep {x} moist",
    "what wine pairs with {x}",
    "is {x} good for a picnic",
]


def search_docs() -> list[Document]:
    return [
        Document(
            doc_id=f"d{i}",
            title=f"{s} and {f}",
            text=f"{s.capitalize()} changes {f}. Operators tune {s} to balance {f} against cost in "
            f"production search systems; measure {f} before and after.",
        )
        for i, (s, f) in enumerate((s, f) for s in SUBJECTS for f in FACETS)
    ]


def cooking_docs(count: int) -> list[Document]:
    return [
        Document(
            doc_id=f"c{i}",
            title=f"Cooking {FOODS[i % len(FOODS)]}",
            text=f"To cook {FOODS[i % len(FOODS)]}, heat the oven, season with salt and herbs, and rest it "
            f"for {5 + i} minutes before serving at dinner.",
        )
        for i in range(count)
    ]


def search_queries() -> tuple[list[str], list[str]]:
    """Reference and sample: questions of one kind, split at random."""
    queries = [q.format(s=s, f=f) for q in QUESTIONS for s in SUBJECTS for f in FACETS[:2]]
    order = np.random.default_rng(1).permutation(len(queries))
    return [queries[i] for i in order[:80]], [queries[i] for i in order[80:160]]


def cooking_queries() -> list[str]:
    return [q.format(x=x) for q in COOKING for x in FOODS]


@pytest.fixture
def config(tmp_path: Path, embedder) -> RAGConfig:
    """The search corpus ingested (its promotion took a snapshot), then a snapshot with given probe queries."""
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        "drift_index",
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
    )
    ingest_documents(search_docs(), RagContext(config, embedder=embedder))
    take_snapshot(config, search_queries()[0], engine=engine_for(config))
    return config


def names(report: DriftReport) -> set[str]:
    return {s.name for s in report.signals if s.detected}


def test_no_drift_on_unchanged_data(config: RAGConfig) -> None:
    report = detect_drift(config, search_queries()[1], engine=engine_for(config))
    assert not report.drift_detected, report.signals
    assert report.drift_magnitude <= 0.15 and not report.low_confidence and report.sample_size == 80
    by_name = {s.name: s for s in report.signals}
    assert set(by_name) == {
        "query_drift",
        "result_overlap",
        "top1_score",
        "corpus_mean",
        "corpus_covariance",
        "model_canary",
        "probe_ndcg_drop",
    }
    assert by_name["result_overlap"].value == pytest.approx(1.0) and by_name["corpus_mean"].value == 0
    assert by_name["query_drift"].value < by_name["query_drift"].threshold
    assert report.recommendations == [] and report.collection == "drift_index__v1"


def test_query_shift_is_detected_with_the_guides_recommendations(config: RAGConfig) -> None:
    report = detect_drift(config, cooking_queries(), engine=engine_for(config))
    assert names(report) == {"query_drift"} and report.drift_magnitude > 0.15
    assert any(r.startswith("Review query distribution changes") for r in report.recommendations)


def test_corpus_swap_is_detected(config: RAGConfig, embedder) -> None:
    docs = search_docs()
    swapped = docs[: len(docs) // 2] + cooking_docs(len(docs) - len(docs) // 2)
    ingest_documents(swapped, RagContext(config, embedder=embedder), prune=True)
    report = detect_drift(config, search_queries()[1], engine=engine_for(config))
    assert {"corpus_mean", "result_overlap"} <= names(report) and "model_canary" not in names(report)
    assert any(r.startswith("Update index with fresh data") for r in report.recommendations)


def test_model_swap_is_detected(config: RAGConfig) -> None:
    # Weights changed in memory reach only the torch backend (an ONNX export is of the model's files).
    perturbed = Embedder(EmbeddingConfig(backend="torch", query_precision="float32"))
    with torch.no_grad():
        generator = torch.Generator().manual_seed(0)
        for weight in perturbed.model.parameters():
            weight.add_(torch.randn(weight.shape, generator=generator) * 0.05 * weight.std())
    engine = engine_for(config, embedder=perturbed)
    report = detect_drift(config, search_queries()[1], engine=engine)
    assert "model_canary" in names(report) and report.drift_magnitude > 0.15
    assert any(r.startswith("Retrain embeddings") for r in report.recommendations)


def test_empty_and_small_samples(config: RAGConfig) -> None:
    with pytest.raises(ValueError, match="sample is empty"):
        detect_drift(config, ["", "  "], engine=engine_for(config))
    small = detect_drift(config, search_queries()[1][:5], engine=engine_for(config))
    assert small.low_confidence and small.sample_size == 5 and "query_drift" not in {s.name for s in small.signals}
    assert not small.drift_detected
    logged = detect_drift(config, engine=engine_for(config))  # nothing logged since the snapshot
    assert logged.low_confidence and logged.sample_size == 0


def test_sample_from_the_query_log(tmp_path: Path, embedder) -> None:
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        "logged",
        retrieval={"bm25_refresh_s": 0},
        quality={"log_query_text": True, "query_log_flush_s": 0.05},
    )
    ingest_documents(search_docs(), RagContext(config, embedder=embedder))
    engine = engine_for(config, embedder=embedder)
    reference, sample = search_queries()
    for query in reference:
        engine.search(query)
    engine.query_log.flush()
    take_snapshot(config, engine=engine)
    snapshot = DriftSnapshot.load(snapshot_path(config, "logged__v1"))
    assert snapshot.probe_source == "query log" and snapshot.reference_source == "query log"
    for query in cooking_queries():
        engine.search(query)
    engine.query_log.flush()
    report = detect_drift(config, engine=engine)
    assert report.sample_size == len(cooking_queries()) and "query_drift" in names(report)


def test_no_snapshot_and_corrupt_snapshot(config: RAGConfig) -> None:
    path = snapshot_path(config, "drift_index__v1")
    path.write_bytes(b"not a snapshot")
    with pytest.raises(CorruptSnapshotError, match=rf"{path}.*rag drift --snapshot"):
        detect_drift(config, search_queries()[1], engine=engine_for(config))
    path.unlink()
    with pytest.raises(NoSnapshotError, match="rag drift --snapshot"):
        detect_drift(config, search_queries()[1], engine=engine_for(config))


def test_snapshot_taken_at_promotion_and_a_failing_one_does_not_fail_ingestion(
    tmp_path: Path, embedder, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), "promoted")
    ingest_documents(search_docs(), RagContext(config, embedder=embedder))
    snapshot = DriftSnapshot.load(snapshot_path(config, "promoted__v1"))
    assert snapshot.collection == "promoted__v1" and snapshot.probe_source == "corpus titles"
    assert len(snapshot.probe_queries) == len(search_docs()) and snapshot.corpus.count == len(search_docs())
    assert not detect_drift(config, engine=engine_for(config)).drift_detected

    blocked = make_config(tmp_path, str(tmp_path / "milvus.db"), "blocked", quality={"drift_dir": str(tmp_path / "f")})
    (tmp_path / "f").write_text("a file where the drift folder should be")
    with caplog.at_level(logging.WARNING):
        report = ingest_documents(search_docs(), RagContext(blocked, embedder=embedder))
    assert report.sync.new_version and "No drift snapshot was taken for blocked" in caplog.text
    assert "No probe set was built for blocked__v1 (NotADirectoryError" in caplog.text, "reported, never raised"


def test_the_guides_snippet(config: RAGConfig, capsys: pytest.CaptureFixture) -> None:
    pipeline = AdvancedRAGPipeline(config)
    drift_report = asyncio.run(pipeline.detect_drift(sample_queries=cooking_queries()))
    if drift_report.drift_detected:
        print("WARNING: Drift detected!")
        for rec in drift_report.recommendations:
            print(f"  - {rec}")
    out = capsys.readouterr().out
    assert "WARNING: Drift detected!" in out and "Review query distribution changes" in out


def test_rag_drift_json_and_exit_codes(config: RAGConfig, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    same, shifted = tmp_path / "same.txt", tmp_path / "queries.jsonl"
    same.write_text("\n".join(search_queries()[1]) + "\n")
    shifted.write_text("".join(json.dumps({"_id": str(i), "text": q}) + "\n" for i, q in enumerate(cooking_queries())))
    assert main(["--config", str(config_file), "drift", "--queries", str(same), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["drift_detected"] is False and {"drift_magnitude", "signals", "recommendations"} <= set(report)
    assert main(["--config", str(config_file), "drift", "--queries", str(shifted), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["drift_detected"] is True
    assert main(["--config", str(config_file), "drift", "--snapshot", "--queries", str(same)]) == 0
    assert "drift snapshot written to" in capsys.readouterr().out
    assert main(["--config", str(config_file), "drift", "--collection", "nothing_here"]) == 2
    assert "No collection or alias 'nothing_here'" in capsys.readouterr().err


def test_rank_biased_overlap() -> None:
    assert rank_biased_overlap(list("abcdefghij"), list("abcdefghij")) == pytest.approx(1.0)
    assert rank_biased_overlap(list("abcde"), list("vwxyz")) == 0.0
    assert rank_biased_overlap(list("abcdefghij"), list("bacdefghij")) == pytest.approx(0.9), "= p: top two swapped"


def test_drift_after_a_rollback_compares_with_the_serving_versions_own_snapshot(
    tmp_path: Path, embedder, capsys: pytest.CaptureFixture
) -> None:
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        "rolled",
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
    )
    ingest_documents(search_docs(), RagContext(config, embedder=embedder))  # v1, its snapshot taken at promotion
    docs = search_docs()
    swapped = docs[: len(docs) // 2] + cooking_docs(len(docs) - len(docs) // 2)
    rechunked = config.model_copy(update={"chunking": config.chunking.model_copy(update={"chunk_size": 64})})
    ingest_documents(
        swapped, RagContext(rechunked, embedder=embedder), prune=True
    )  # v2: other settings, other documents
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))
    assert main(["--config", str(config_file), "rollback"]) == 0
    assert "rolled -> rolled__v1" in capsys.readouterr().out

    assert main(["--config", str(config_file), "drift", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["collection"] == report["snapshot_of"] == "rolled__v1"
    assert report["drift_magnitude"] < 0.05, report["signals"]
    assert main(["--config", str(config_file), "drift"]) == 0
    assert "snapshot of rolled__v1 taken" in capsys.readouterr().out

    snapshot_path(config, "rolled__v1").unlink()  # v2's snapshot is still there: never a stand-in for v1's
    with pytest.raises(NoSnapshotError, match=r"No drift snapshot of rolled__v1, the version 'rolled' serves"):
        detect_drift(config, engine=engine_for(config))
