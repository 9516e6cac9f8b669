"""AUROC of a score for a binary outcome, and its bootstrap interval (the ``Interval`` of ``bootstrap``).

AUROC is the chance that a random positive scores above a random negative (ties count half): the Mann-Whitney
statistic, computed by sorting. It is not a mean over queries, so its interval resamples the queries directly,
positives and negatives separately (stratified), so every resample has both.
"""

from collections.abc import Sequence

import numpy as np

from rag_core.quality.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, Interval


def _split(labels: Sequence[bool], scores: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(labels, dtype=bool)
    s = np.asarray(scores, dtype=np.float64)
    if y.shape != s.shape or y.ndim != 1:
        raise ValueError(f"AUROC needs one score per label: {y.shape} labels, {s.shape} scores")
    if y.all() or not y.any():
        raise ValueError(f"AUROC needs positives and negatives; got {int(y.sum())} positives of {len(y)}")
    return s[y], s[~y]


def _auroc(positives: np.ndarray, negatives: np.ndarray) -> float:
    ordered = np.sort(negatives)
    below = np.searchsorted(ordered, positives, side="left")
    tied = np.searchsorted(ordered, positives, side="right") - below
    return float((below + 0.5 * tied).sum() / (len(positives) * len(negatives)))


def auroc(labels: Sequence[bool], scores: Sequence[float]) -> float:
    """P(score of a positive > score of a negative); 0.5 is chance, 1 a perfect ranking."""
    return _auroc(*_split(labels, scores))


def auroc_interval(
    labels: Sequence[bool],
    scores: Sequence[float],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    confidence: float = 0.95,
    seed: int = DEFAULT_SEED,
) -> Interval:
    """AUROC and its stratified percentile-bootstrap interval."""
    positives, negatives = _split(labels, scores)
    rng = np.random.default_rng(seed)
    values = [
        _auroc(rng.choice(positives, len(positives)), rng.choice(negatives, len(negatives))) for _ in range(resamples)
    ]
    tail = (1 - confidence) / 2
    low, high = np.quantile(values, [tail, 1 - tail])
    return Interval(
        _auroc(positives, negatives), float(low), float(high), confidence, resamples, len(positives) + len(negatives)
    )
