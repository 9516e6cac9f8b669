"""Fusing the dense and lexical candidate lists into one ranking.

Two methods, both over the union of the two lists:
- ``weighted``: each leg's scores normalised, then ``alpha * dense + (1 - alpha) * lexical``; a candidate missing
  from a leg gets that leg's lowest normalised score. ``alpha`` is the dense weight (the guide's "favor dense
  search" raises it). Normalisation: ``minmax`` to [0, 1] or ``zscore`` (mean 0, deviation 1) within the
  candidate list, or ``corpus``: a z-score against the leg's score distribution over the *whole* index, given as
  ``ScoreMoments``. The candidate lists are the head of each distribution, whose spread varies with the query;
  the whole distribution says how exceptional a score is, and on SciFact train that fused better (benchmarks/).
  A leg without moments falls back to ``zscore``.
- ``rrf``: reciprocal rank fusion, ``1 / (k + rank)`` summed over the legs; scale-free, so no tuning of alpha.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

FusionMethod = Literal["weighted", "rrf"]
Normalization = Literal["minmax", "zscore", "corpus"]


@dataclass(frozen=True)
class LegHit:
    """One candidate as one retrieval leg saw it."""

    key: str
    score: float


@dataclass(frozen=True)
class ScoreMoments:
    """Mean and standard deviation of one query's scores over every entry of an index."""

    mean: float
    std: float


@dataclass(frozen=True)
class FusedHit:
    key: str
    fused_score: float
    dense_score: float | None
    dense_rank: int | None
    lexical_score: float | None
    lexical_rank: int | None


def _normalised(hits: Sequence[LegHit], how: Normalization, moments: ScoreMoments | None) -> dict[str, float]:
    if not hits:
        return {}
    if how == "corpus" and moments is not None:
        return {h.key: (h.score - moments.mean) / moments.std if moments.std > 0 else 0.0 for h in hits}
    scores = [h.score for h in hits]
    if how in ("zscore", "corpus"):
        mean = sum(scores) / len(scores)
        deviation = (sum((s - mean) ** 2 for s in scores) / len(scores)) ** 0.5
        return {h.key: (h.score - mean) / deviation if deviation > 0 else 0.0 for h in hits}
    low, high = min(scores), max(scores)
    span = high - low
    return {h.key: (h.score - low) / span if span > 0 else 1.0 for h in hits}


def fuse(
    dense: Sequence[LegHit],
    lexical: Sequence[LegHit],
    *,
    method: FusionMethod = "weighted",
    alpha: float = 0.5,
    rrf_k: int = 60,
    normalization: Normalization = "minmax",
    dense_moments: ScoreMoments | None = None,
    lexical_moments: ScoreMoments | None = None,
    lexical_beyond: Mapping[str, float] | None = None,
) -> list[FusedHit]:
    """Both legs ranked best first; returns the union ranked by fused score, ties broken by dense rank.

    ``lexical_beyond``: true lexical scores of dense candidates outside the lexical list (the client-side BM25 can
    score any entry). With ``corpus`` moments those candidates fuse on that score rather than on a floor; they keep
    no lexical rank, since they are not among the lexical candidates.
    """
    dense_rank = {h.key: r for r, h in enumerate(dense, 1)}
    lexical_rank = {h.key: r for r, h in enumerate(lexical, 1)}
    dense_score = {h.key: h.score for h in dense}
    beyond = dict(lexical_beyond or {}) if normalization == "corpus" and lexical_moments is not None else {}
    lexical_score = beyond | {h.key: h.score for h in lexical}
    keys = list(dict.fromkeys([*dense_rank, *lexical_rank]))
    if method == "rrf":
        fused = {k: sum(1.0 / (rrf_k + ranks[k]) for ranks in (dense_rank, lexical_rank) if k in ranks) for k in keys}
    elif method == "weighted":
        dn = _normalised(dense, normalization, dense_moments)
        ln = _normalised(lexical, normalization, lexical_moments)
        d_floor, l_floor = min(dn.values(), default=0.0), min(ln.values(), default=0.0)
        ln = _normalised([LegHit(k, v) for k, v in beyond.items() if k not in ln], normalization, lexical_moments) | ln
        fused = {k: alpha * dn.get(k, d_floor) + (1 - alpha) * ln.get(k, l_floor) for k in keys}
    else:
        raise ValueError(f"Unknown fusion method {method!r}; use 'weighted' or 'rrf'.")
    ordered = sorted(keys, key=lambda k: (-fused[k], dense_rank.get(k, len(keys) + 1), lexical_rank.get(k, 0)))
    return [
        FusedHit(
            key=k,
            fused_score=fused[k],
            dense_score=dense_score.get(k),
            dense_rank=dense_rank.get(k),
            lexical_score=lexical_score.get(k),
            lexical_rank=lexical_rank.get(k),
        )
        for k in ordered
    ]
