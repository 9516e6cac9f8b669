"""Per-query quality signals: the features behave as their formulas say, the risk stays a probability, and every
retrieval carries them (engine, query log keys, the guide's ``metrics.hallucination_risk``)."""

import asyncio
import json
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import pytest

from rag_core import AdvancedRAGPipeline
from rag_core.quality.auroc import auroc, auroc_interval
from rag_core.retrieval.fusion import LegHit, ScoreMoments
from rag_core.retrieval.hallucination import HallucinationModel, shipped_model
from rag_core.retrieval.signals import HEAD, QueryFeatures, query_signals
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest
from tests.support.engines import engine_for

CONTEXTS = ["Compaction merges small segments and purges deleted rows.", "HNSW builds a proximity graph."]


def leg(*scores: float, prefix: str = "d") -> list[LegHit]:
    return [LegHit(f"{prefix}{i}", s) for i, s in enumerate(scores)]


def signals(
    dense: list[LegHit],
    lexical: list[LegHit],
    query: str = "compaction purges deleted rows",
    contexts: list[str] = CONTEXTS,
    similarities: tuple = (0.8, 0.2),
):  # noqa: ANN201
    return query_signals(
        query, dense, lexical, ScoreMoments(0.1, 0.1), ScoreMoments(0.5, 1.0), contexts, list(similarities)
    )


def test_features_follow_their_formulas() -> None:
    s = signals(leg(0.7, 0.5, 0.4), leg(9.0, 5.0, prefix="x"))
    f = s.features
    assert f.dense_top_z == pytest.approx((0.7 - 0.1) / 0.1)
    assert f.dense_margin_z == pytest.approx((0.7 - 0.5) / 0.1)
    assert f.dense_nqc == pytest.approx(np.std([0.7, 0.5, 0.4]) / 0.1)
    assert f.lexical_top_z == pytest.approx(8.5) and f.lexical_margin_z == pytest.approx(4.0)
    assert f.lexical_nqc == pytest.approx(np.std([9.0, 5.0]) / 0.5), "NQC: head spread over the corpus mean"
    assert f.leg_agreement == 0.0, "no key in both heads"
    assert f.coverage == 1.0 and f.query_terms == 4.0, "compact/purg/delet/row are all in the first context"
    assert s.context_relevance == pytest.approx(0.8)
    assert s.faithfulness_score == pytest.approx(0.5 * 0.8 + 0.5 * 1.0), "best context: half cosine, half terms"


def test_agreement_coverage_and_missing_legs() -> None:
    shared = leg(*[1.0 - i / 20 for i in range(HEAD)])
    assert signals(shared, shared).features.leg_agreement == 1.0
    half = signals(leg(0.9), leg(3.0), query="compaction of quantum gravitons").features
    assert half.coverage == pytest.approx(1 / 3), "only compaction of three content terms (of: a stopword)"
    dense_only = query_signals("compaction", leg(0.9), [], ScoreMoments(0.1, 0.1), None, CONTEXTS, [0.9, None])
    assert dense_only.features.lexical_top_z is None and dense_only.features.leg_agreement is None
    assert "lexical_top_z" not in dense_only.as_dict() and "dense_top_z" in dense_only.as_dict()


def test_a_number_no_context_holds_makes_the_query_unsupported() -> None:
    assert signals(leg(0.9), leg(3.0), query="compaction purges 42 deleted rows").faithfulness_score == 0.0


@pytest.mark.parametrize("value", [-1e9, -5.0, 0.0, 5.0, 1e9, float("nan"), None])
def test_risk_is_a_probability_for_any_feature_value(value: float | None) -> None:
    model = shipped_model()
    risk = model.risk({name: value for name in model.features})
    assert 0.0 <= risk <= 1.0
    if value is None or value != value:  # missing: every feature at its training mean
        assert risk == pytest.approx(1 / (1 + np.exp(-model.intercept)))


def test_shipped_model_covers_every_feature_and_says_where_it_came_from() -> None:
    model = shipped_model()
    assert model.features == tuple(f.name for f in fields(QueryFeatures))
    assert "SciFact train" in model.fitted_on and "benchmarks.fit_hallucination" in model.fitted_on
    assert all(s > 0 for s in model.scales)


def test_fit_recovers_a_separable_signal_and_round_trips(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=400)
    failed = x + rng.normal(scale=0.3, size=400) < 0
    rows = [{"a": float(v), "b": float(rng.normal())} for v in x]
    model = HallucinationModel.fit(rows, failed, ("a", "b"))
    assert model.coefficients[0] < -1 and abs(model.coefficients[1]) < 0.5
    assert auroc(failed, [model.risk(r) for r in rows]) > 0.9
    model.save(tmp_path / "m.json")
    assert HallucinationModel.load(tmp_path / "m.json") == model
    (tmp_path / "bad.json").write_text(json.dumps({"features": ["a"]}))
    with pytest.raises(ValueError, match="bad.json.*benchmarks.fit_hallucination"):
        HallucinationModel.load(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="failed and queries that did not"):
        HallucinationModel.fit(rows, [True] * len(rows), ("a", "b"))


def test_auroc_and_its_interval() -> None:
    assert auroc([True, True, False, False], [0.9, 0.8, 0.2, 0.1]) == 1.0
    assert auroc([True, False], [0.5, 0.5]) == 0.5, "ties count half"
    assert auroc([True, True, False, False], [0.1, 0.9, 0.8, 0.2]) == 0.5
    rng = np.random.default_rng(1)
    labels = rng.random(300) < 0.3
    interval = auroc_interval(labels, labels + rng.normal(scale=0.8, size=300), resamples=300)
    assert interval.low < interval.mean < interval.high and interval.queries == 300
    with pytest.raises(ValueError, match="positives and negatives"):
        auroc([True, True], [0.1, 0.2])


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_every_retrieval_carries_its_signals(config, embedder) -> None:
    engine = engine_for(config, embedder=embedder)
    result = engine.search("how does compaction purge deleted rows")
    quality = result.quality
    assert quality is not None and 0 <= quality.hallucination_risk <= 1 and 0 <= quality.faithfulness_score <= 1
    assert quality.features.dense_top_z is not None and quality.features.lexical_top_z is not None, (
        "client-side BM25: both legs have corpus moments"
    )
    assert result.signals["hallucination_risk"] == quality.hallucination_risk
    assert set(asdict(quality.features)) <= set(result.signals)
    assert result.timings_ms["signals"] >= 0
    off_topic = engine.search("medieval tapestry weaving guilds of flanders")
    assert off_topic.quality.hallucination_risk > quality.hallucination_risk
    assert off_topic.quality.faithfulness_score < quality.faithfulness_score
    assert engine.search("how does compaction purge deleted rows").quality == quality, "cached with its signals"
    assert engine_for(config, embedder=embedder).search("compaction", mode="bm25").quality.features.dense_top_z is None


def test_the_guides_snippet_runs_as_written(tmp_path: Path, embedder) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    ingest(config, RETRIEVAL_DOCS, embedder)
    pipeline = AdvancedRAGPipeline(config)

    async def guide() -> tuple[list, object]:
        return await pipeline.retrieve(query="test")

    results, metrics = asyncio.run(guide())
    assert isinstance(metrics.hallucination_risk > 0.2, bool) and isinstance(metrics.faithfulness_score < 0.7, bool)
    assert 0 <= metrics.hallucination_risk <= 1 and 0 <= metrics.faithfulness_score <= 1
    assert metrics.coverage == metrics.quality.coverage and metrics.leg_agreement == metrics.quality.leg_agreement
    assert metrics.context_relevance is not None and 0 <= metrics.context_relevance <= 1
