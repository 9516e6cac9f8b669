"""A re-index builds a candidate without moving the alias; the gate decides the move; retention keeps
``index.keep_versions`` versions; rollback goes back to the version that served before."""

import json
from pathlib import Path

import pytest

from rag_core.cli.main import main
from rag_core.config import RAGConfig
from rag_core.index.manager import MilvusIndexManager
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.reindex import build_candidate, reindex
from rag_core.quality.drift_snapshot import snapshot_path, take_snapshot
from rag_core.quality.gate import GateFailedError, evaluate_gate
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.engines import engine_for

# Paraphrases, so the dense leg (what a model change touches) decides the ranking, judged against RETRIEVAL_DOCS.
GATE_QUERIES = {
    "q1": ("how does the database get rid of rows that were removed", "compaction"),
    "q2": ("which setting trades accuracy against speed in the graph index", "hnsw"),
    "q3": ("start a pipeline automatically when new files show up", "sensor"),
    "q4": ("second stage model reading question and passage jointly", "rerank"),
    "q5": ("swap the live index for readers in one step", "alias"),
    "q6": ("unit length embeddings make two similarity measures identical", "cosine"),
    "q7": ("how long are audit records kept before removal", "retention"),
    "q8": ("lexical ranking function using word frequencies", "bm25"),
}


def write_gate_dataset(folder: Path) -> Path:
    (folder / "qrels").mkdir(parents=True)
    (folder / "corpus.jsonl").write_text(
        "".join(json.dumps({"_id": k, "title": k, "text": v}) + "\n" for k, v in RETRIEVAL_DOCS.items()),
        encoding="utf-8",
    )
    (folder / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}) + "\n" for q, (t, _) in GATE_QUERIES.items()), encoding="utf-8"
    )
    (folder / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, (_, d) in GATE_QUERIES.items()),
        encoding="utf-8",
    )
    return folder


@pytest.fixture
def served(tmp_path: Path, embedder) -> RAGConfig:
    """RETRIEVAL_DOCS served from ``semantic_index__v1`` on Milvus Lite, gated by a labelled set judging them."""
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        quality={"drift_dir": str(tmp_path / "drift")},
        quality_gate={"dataset": str(write_gate_dataset(tmp_path / "gate"))},
    )
    ingest(config, RETRIEVAL_DOCS, embedder)
    return config


def manager_of(config: RAGConfig) -> MilvusIndexManager:
    return MilvusIndexManager(config.milvus, config.index)


def test_a_candidate_is_built_without_moving_the_alias_and_an_equal_one_passes(served: RAGConfig, embedder) -> None:
    manager = manager_of(served)
    candidate = build_candidate(RagContext(served, embedder=embedder, manager=manager))
    assert candidate.collection == "semantic_index__v2" and manager.state(candidate.collection).complete
    assert manager.resolve("semantic_index") == "semantic_index__v1"
    assert candidate.rows == manager.count("semantic_index__v1")

    result = evaluate_gate(served, candidate.collection, alias="semantic_index", embedder=embedder, manager=manager)
    assert result.passed and result.metric == "ndcg@10" and result.queries == len(GATE_QUERIES)
    assert result.candidate_value == pytest.approx(result.serving_value) and result.serving_value > 0.5
    assert "passed" in result.message and f"{result.serving_value:.4f}" in result.message


def test_a_worse_candidate_fails_the_gate_leaves_the_alias_and_is_kept(
    served: RAGConfig, embedder, perturbed_model: str
) -> None:
    worse = served.model_copy(update={"embedding": served.embedding.model_copy(update={"model": perturbed_model})})
    manager = manager_of(served)
    with pytest.raises(GateFailedError) as failed:
        reindex(RagContext(worse, manager=manager), gate=True)
    result = failed.value.result
    assert not result.passed and result.candidate_value < result.serving_value - served.quality_gate.max_ndcg_drop
    assert f"{result.candidate_value:.4f}" in str(failed.value) and f"{result.serving_value:.4f}" in str(failed.value)
    assert manager.resolve("semantic_index") == "semantic_index__v1"
    assert manager.versions("semantic_index") == ["semantic_index__v1", "semantic_index__v2"]
    assert manager.state("semantic_index__v2").complete  # kept for inspection, never served


def test_a_missing_gate_dataset_is_an_error_naming_the_path(served: RAGConfig, embedder, tmp_path: Path) -> None:
    missing = served.model_copy(
        update={"quality_gate": served.quality_gate.model_copy(update={"dataset": str(tmp_path / "no-such-set")})}
    )
    with pytest.raises(FileNotFoundError, match="quality_gate.dataset .*no-such-set"):
        reindex(RagContext(missing, embedder=embedder), gate=True)
    assert manager_of(served).resolve("semantic_index") == "semantic_index__v1"


def test_promotion_keeps_the_last_versions_and_drops_refused_candidates(served: RAGConfig, embedder) -> None:
    keep_two = served.model_copy(update={"index": served.index.model_copy(update={"keep_versions": 2})})
    manager = manager_of(served)
    refused = build_candidate(
        RagContext(keep_two, embedder=embedder, manager=manager)
    ).collection  # v2, as if gated out
    third = reindex(RagContext(keep_two, embedder=embedder, manager=manager), gate=True)  # v3
    assert third.gate.passed and third.promotion.previous == "semantic_index__v1"
    assert third.promotion.dropped == [refused]
    fourth = reindex(RagContext(keep_two, embedder=embedder, manager=manager))  # v4: v1 falls out of the last two
    assert fourth.gate is None and fourth.promotion.dropped == ["semantic_index__v1"]
    assert manager.versions("semantic_index") == ["semantic_index__v3", "semantic_index__v4"]
    assert manager.rollback("semantic_index") == "semantic_index__v3"
    with pytest.raises(ValueError, match="has no version '9'; versions: .*semantic_index__v3"):
        manager.rollback("semantic_index", to="9")


def test_rag_reindex_gates_when_a_dataset_is_configured(
    served: RAGConfig,
    perturbed_model: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(json.dumps(served.model_dump(mode="json")), encoding="utf-8")
    monkeypatch.setenv("RAG_CONFIG", str(config_file))
    assert main(["reindex"]) == 0
    out = capsys.readouterr().out
    assert "quality gate passed: ndcg@10" in out and "into semantic_index__v2" in out

    monkeypatch.setenv("RAG__EMBEDDING__MODEL", perturbed_model)
    assert main(["reindex"]) == 1
    err = capsys.readouterr().err
    assert "quality gate failed: ndcg@10" in err and "semantic_index__v3 is kept for inspection" in err
    monkeypatch.delenv("RAG__EMBEDDING__MODEL")
    assert main(["versions"]) == 0
    marks = [line.split(",")[0] for line in capsys.readouterr().out.splitlines()]
    assert marks == ["semantic_index__v1: complete", "semantic_index__v2: serving", "semantic_index__v3: complete"]
    assert main(["rollback", "7"]) == 2
    assert "has no version '7'" in capsys.readouterr().err


def test_without_a_dataset_the_gate_compares_the_probe_queries_hallucination_risk(
    served: RAGConfig, embedder, perturbed_model: str
) -> None:
    unlabelled = served.model_copy(update={"quality_gate": served.quality_gate.model_copy(update={"dataset": ""})})
    manager = manager_of(served)
    snapshot_path(served, "semantic_index__v1").unlink()  # no snapshot (the ingest took one): the documents' sentences
    equal = evaluate_gate(
        unlabelled,
        build_candidate(RagContext(unlabelled, embedder=embedder, manager=manager)).collection,
        alias="semantic_index",
        embedder=embedder,
        manager=manager,
    )
    assert equal.passed and equal.metric == "hallucination_risk" and equal.queries == len(RETRIEVAL_DOCS)
    assert 0 <= equal.serving_value <= 1 and equal.candidate_value == pytest.approx(equal.serving_value, abs=1e-6)
    assert "first sentences of semantic_index__v1" in equal.message

    # users' kind of queries as probes
    take_snapshot(unlabelled, [text for text, _ in GATE_QUERIES.values()], engine=engine_for(unlabelled))
    # The risk moves less than nDCG does under this model (+0.011 measured): a tighter margin than the default.
    worse = unlabelled.model_copy(
        update={
            "embedding": unlabelled.embedding.model_copy(update={"model": perturbed_model}),
            "quality_gate": unlabelled.quality_gate.model_copy(update={"max_risk_rise": 0.005}),
        }
    )
    with pytest.raises(GateFailedError, match="quality gate failed: hallucination_risk") as failed:
        reindex(RagContext(worse, manager=manager), gate=True)
    result = failed.value.result
    assert result.candidate_value > result.serving_value + 0.005
    assert result.evidence.startswith("the drift snapshot's probe queries (no probe set: semantic_index__v1 gives only")
    assert result.queries == len(GATE_QUERIES)
    assert manager.resolve("semantic_index") == "semantic_index__v1"
