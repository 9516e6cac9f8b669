"""Per-query nDCG@10 and seeded bootstrap confidence intervals of its mean, one run or two runs paired.

A benchmark's nDCG@10 is the mean over a few hundred queries; which queries were judged is itself a sample, so
every figure carries a 95 % percentile-bootstrap interval (queries resampled with replacement). Two settings
scored on the same queries are compared paired: the same resampled queries for both, so the interval is the one
of their difference, much narrower than two unpaired intervals would suggest.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np

from rag_core.quality.evaluation import Run, ndcg_at_k

DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20261125


def per_query_ndcg(run: Run, qrels: Mapping[str, Mapping[str, int]], k: int = 10) -> dict[str, float]:
    """nDCG@k of every judged query (one with no hits scores 0), as ``score_run`` averages them."""
    return {q: ndcg_at_k([d for d, _ in run.get(q, [])], dict(qrels[q]), k) for q in qrels}


@dataclass(frozen=True)
class Interval:
    """A mean and its percentile-bootstrap interval."""

    mean: float
    low: float
    high: float
    confidence: float
    resamples: int
    queries: int

    def as_json(self, digits: int = 5) -> dict:
        return {
            "mean": round(self.mean, digits),
            "ci": [round(self.low, digits), round(self.high, digits)],
            "confidence": self.confidence,
            "queries": self.queries,
            "resamples": self.resamples,
        }


@dataclass(frozen=True)
class PairedInterval(Interval):
    """The mean difference a - b, its interval, and the share of resamples in which a's mean exceeds b's."""

    share_a_better: float = 0.0

    def as_json(self, digits: int = 5) -> dict:
        return super().as_json(digits) | {"share_of_resamples_a_better": round(self.share_a_better, 4)}


def _resampled_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Means of ``resamples`` samples of the rows of ``values`` (queries) drawn with replacement; chunked so
    memory stays small for large query sets."""
    rng = np.random.default_rng(seed)
    n = len(values)
    means = np.empty((resamples,) + values.shape[1:])
    step = max(1, 2_000_000 // max(n, 1))
    for start in range(0, resamples, step):
        rows = rng.integers(0, n, size=(min(step, resamples - start), n))
        means[start : start + len(rows)] = values[rows].mean(axis=1)
    return means


def _check(resamples: int, confidence: float) -> None:
    if resamples < 1:
        raise ValueError(f"resamples must be at least 1, got {resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")


def bootstrap_ci(
    scores: Mapping[str, float] | np.ndarray | list[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """Percentile bootstrap interval of the mean of per-query scores (a mapping, or the scores themselves)."""
    _check(resamples, confidence)
    values = np.asarray(list(scores.values()) if isinstance(scores, Mapping) else scores, dtype=np.float64)
    if values.ndim != 1 or not len(values):
        raise ValueError("bootstrap_ci needs a non-empty list of per-query scores")
    means = _resampled_means(values, resamples, seed)
    tail = (1 - confidence) / 2
    low, high = np.quantile(means, [tail, 1 - tail])
    return Interval(float(values.mean()), float(low), float(high), confidence, resamples, len(values))


def paired_bootstrap(
    a: Mapping[str, float],
    b: Mapping[str, float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> PairedInterval:
    """Interval of mean(a) - mean(b) over the same queries, each resample drawing the same queries for both."""
    _check(resamples, confidence)
    if set(a) != set(b):
        raise ValueError(f"paired runs must score the same queries: {len(set(a) ^ set(b))} differ")
    if not a:
        raise ValueError("paired_bootstrap needs at least one query")
    keys = sorted(a)
    values = np.array([[a[q], b[q]] for q in keys], dtype=np.float64)
    means = _resampled_means(values, resamples, seed)
    differences = means[:, 0] - means[:, 1]
    tail = (1 - confidence) / 2
    low, high = np.quantile(differences, [tail, 1 - tail])
    mean = float(values[:, 0].mean() - values[:, 1].mean())
    return PairedInterval(
        mean, float(low), float(high), confidence, resamples, len(keys), share_a_better=float((differences > 0).mean())
    )


def folds(query_ids: Iterable[str], k: int, seed: int) -> list[list[str]]:
    """``k`` disjoint folds of the queries, shuffled with a fixed seed (sorted first, so the order read is moot)."""
    ids = sorted(query_ids)
    order = np.random.default_rng(seed).permutation(len(ids))
    return [[ids[i] for i in sorted(part)] for part in np.array_split(order, k)]
