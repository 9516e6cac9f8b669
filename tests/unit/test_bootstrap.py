"""Per-query nDCG@10 and the seeded bootstrap intervals the benchmarks report."""

import numpy as np
import pytest

from rag_core.quality.bootstrap import bootstrap_ci, paired_bootstrap, per_query_ndcg
from rag_core.quality.evaluation import score_run

QRELS = {"q1": {"d1": 1}, "q2": {"d2": 1, "d3": 1}, "q3": {"d9": 1}}
RUN = {"q1": [("d1", 3.0), ("d4", 2.0)], "q2": [("d5", 1.0), ("d3", 0.5)]}  # q3 has no hits: scores 0


def test_per_query_ndcg_averages_to_score_run() -> None:
    scores = per_query_ndcg(RUN, QRELS)
    assert set(scores) == set(QRELS)
    assert scores["q1"] == pytest.approx(1.0)
    assert scores["q3"] == 0.0
    assert np.mean(list(scores.values())) == pytest.approx(score_run(RUN, QRELS)[0])


def test_interval_is_seeded_and_brackets_the_mean() -> None:
    rng = np.random.default_rng(1)
    scores = {f"q{i}": float(v) for i, v in enumerate(rng.random(300))}
    first, again = bootstrap_ci(scores, resamples=1000, seed=7), bootstrap_ci(scores, resamples=1000, seed=7)
    assert first == again
    assert first.low < first.mean < first.high
    assert first.mean == pytest.approx(np.mean(list(scores.values())))
    # uniform(0, 1) over 300 queries: standard error 0.289 / sqrt(300) = 0.0167, so the 95 % interval is ~0.065 wide
    assert 0.05 < first.high - first.low < 0.08
    assert bootstrap_ci(scores, resamples=1000, seed=8) != first


def test_interval_narrows_with_more_queries_and_is_a_point_for_constant_scores() -> None:
    rng = np.random.default_rng(2)
    few, many = bootstrap_ci(rng.random(50), resamples=1000), bootstrap_ci(rng.random(5000), resamples=1000)
    assert many.high - many.low < (few.high - few.low) / 5
    constant = bootstrap_ci([0.5] * 20, resamples=200)
    assert constant.low == constant.high == constant.mean == 0.5


def test_paired_interval_of_a_run_against_itself_is_zero() -> None:
    scores = per_query_ndcg(RUN, QRELS)
    same = paired_bootstrap(scores, scores, resamples=500)
    assert same.mean == same.low == same.high == 0.0
    assert same.share_a_better == 0.0


def test_paired_interval_sees_a_consistent_small_gain_that_unpaired_intervals_hide() -> None:
    rng = np.random.default_rng(3)
    base = {f"q{i}": float(v) for i, v in enumerate(rng.random(300))}
    better = {q: v + 0.01 for q, v in base.items()}
    paired = paired_bootstrap(better, base, resamples=1000)
    assert paired.mean == pytest.approx(0.01)
    assert paired.low == pytest.approx(0.01) and paired.high == pytest.approx(0.01)
    assert paired.share_a_better == 1.0
    a, b = bootstrap_ci(better, resamples=1000), bootstrap_ci(base, resamples=1000)
    assert a.low < b.high  # unpaired, the two intervals overlap


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="same queries"):
        paired_bootstrap({"q1": 1.0}, {"q2": 1.0})
    with pytest.raises(ValueError, match="non-empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0], confidence=1.5)
    with pytest.raises(ValueError, match="resamples"):
        bootstrap_ci([1.0], resamples=0)


def test_json_form() -> None:
    figures = bootstrap_ci([0.0, 1.0, 0.5, 0.25], resamples=100, seed=1).as_json()
    assert figures["mean"] == 0.4375
    assert figures["confidence"] == 0.95 and figures["resamples"] == 100 and figures["queries"] == 4
    low, high = figures["ci"]
    assert 0 <= low <= figures["mean"] <= high <= 1
    paired = paired_bootstrap({"a": 1.0, "b": 0.0}, {"a": 0.5, "b": 0.0}, resamples=100).as_json()
    assert paired["mean"] == 0.25 and 0 < paired["share_of_resamples_a_better"] <= 1
