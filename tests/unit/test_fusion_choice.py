"""``pipeline.hybrid_alpha: auto`` (issue 19): a fusion weight chosen per version on its probe set, kept only when
it wins on held-out folds, recorded with its evidence, and served from the version's first query."""

import json
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from rag_core.config import DEFAULT_HYBRID_ALPHA, RAGConfig
from rag_core.lifecycle.context import RagContext
from rag_core.lifecycle.direct import ingest_documents
from rag_core.quality.fusion_choice import ALPHAS, choose_alpha
from tests.support.configs import make_config
from tests.unit.test_probes import scifact_documents

PROBES = [f"p{i:03d}" for i in range(100)]


def scores_where(best: float, margin: float, seed: int = 0) -> dict[float, dict[str, float]]:
    """Per-probe nDCG@10 for every weight: noise around 0.8, and ``best`` ``margin`` higher on every probe."""
    rng = np.random.default_rng(seed)
    base = {q: float(v) for q, v in zip(PROBES, rng.uniform(0.6, 1.0, len(PROBES)), strict=True)}
    return {
        a: {q: v + (margin if a == best else 0.0) for q, v in base.items()} for a in {*ALPHAS, DEFAULT_HYBRID_ALPHA}
    }


def test_a_weight_better_on_held_out_folds_is_adopted_and_a_tie_keeps_the_default() -> None:
    better = choose_alpha(scores_where(best=0.3, margin=0.05))
    assert better.alpha == 0.3 and better.adopted and better.fold_alphas == [0.3] * 5
    assert better.held_out_ndcg > better.default_ndcg and "beats the default" in better.reason

    tie = choose_alpha(scores_where(best=0.3, margin=0.0))
    assert tie.alpha == DEFAULT_HYBRID_ALPHA and not tie.adopted and "the default stays" in tie.reason

    # Best on some folds only: chosen on all probes, but not better held out, so the default stays.
    rng = np.random.default_rng(1)
    noisy = {a: {q: float(rng.uniform(0.6, 1.0)) for q in PROBES} for a in {*ALPHAS, DEFAULT_HYBRID_ALPHA}}
    noisy[DEFAULT_HYBRID_ALPHA] = {q: max(v[q] for v in noisy.values()) - 0.01 for q in PROBES}
    assert choose_alpha(noisy).alpha == DEFAULT_HYBRID_ALPHA
    assert json.loads(better.evidence())["adopted"] is True


def test_the_setting_takes_a_weight_or_auto_and_names_anything_else() -> None:
    assert RAGConfig.model_validate({"pipeline": {"hybrid_alpha": "auto"}}).pipeline.hybrid_alpha == "auto"
    assert RAGConfig.model_validate({"pipeline": {"hybrid_alpha": 0.4}}).pipeline.hybrid_alpha == 0.4
    for bad in ("fast", 1.5):
        with pytest.raises(ValidationError, match="hybrid_alpha"):
            RAGConfig.model_validate({"pipeline": {"hybrid_alpha": bad}})


def test_auto_records_the_versions_weight_and_its_queries_use_it(tmp_path: Path, embedder) -> None:
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        milvus={"consistency_level": "Strong"},
        retrieval={"bm25_refresh_s": 0},
        quality_gate={"probe_set_size": 60},
        pipeline={"hybrid_alpha": "auto"},
    )
    context = RagContext(config, embedder=embedder)
    ingest_documents(scifact_documents(), context)
    manager = context.manager
    state = manager.state("semantic_index__v1")
    evidence = json.loads(manager.properties("semantic_index__v1")["rag.hybrid_alpha_evidence"])
    assert state.hybrid_alpha == evidence["alpha"] and evidence["probes"] == 60 and evidence["reason"]
    assert len(evidence["fold_alphas"]) == 5 and evidence["chosen_on_probes"] in ALPHAS

    engine = context.engine()
    query = "cerebral cortex projection neuron diversity"
    served = engine.search(query, top_k=10, rerank_top_k=10)
    explicit = engine.search(query, top_k=10, rerank_top_k=10, alpha=state.hybrid_alpha)
    assert [c.chunk_id for c in served.results] == [c.chunk_id for c in explicit.results]
    assert served.scores == pytest.approx(explicit.scores)


def test_auto_without_a_probe_set_serves_the_default_and_says_why(tmp_path: Path, embedder) -> None:
    config = make_config(
        tmp_path,
        str(tmp_path / "milvus.db"),
        milvus={"consistency_level": "Strong"},
        quality_gate={"probe_set_size": 0},
        pipeline={"hybrid_alpha": "auto"},
    )
    context = RagContext(config, embedder=embedder)
    ingest_documents(scifact_documents(10), context)
    evidence = json.loads(context.manager.properties("semantic_index__v1")["rag.hybrid_alpha_evidence"])
    assert evidence["alpha"] == DEFAULT_HYBRID_ALPHA and "no probe set" in evidence["reason"]
    assert context.engine().search("cortex").results, "queries are answered with the default weight"


def test_the_dagster_definitions_load_with_auto_and_with_a_weight() -> None:
    """Dagster's config reads no union of a number and a word: the mirrored setting takes either, and rag_core's
    config validates it."""
    from rag_assets.definitions import build_definitions

    for value in ("auto", 0.4):
        config = RAGConfig.model_validate({"pipeline": {"hybrid_alpha": value}})
        settings = build_definitions(config).resources["settings"]
        assert settings.context().config.pipeline.hybrid_alpha == value
