"""Per-query quality signals, label-free, from one query's legs and results (docs/quality.md has the formulas).

Query-performance predictors in the tradition of NQC and score-distribution QPP: how far the top score of each
leg stands out from the whole corpus (its corpus moments: ``VectorMoments.score_moments`` for dense, BM25's own
for lexical), the margin to the runner-up, the spread of the head (normalised query commitment), whether the dense
and BM25 legs agree, and whether the top contexts hold the query's content terms. ``hallucination_risk`` combines
them with the shipped logistic model; ``faithfulness_score`` scores the query itself as the claim.
"""

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from rag_core.retrieval.faithfulness import content_terms, coverage, query_faithfulness
from rag_core.retrieval.fusion import LegHit, ScoreMoments
from rag_core.retrieval.hallucination import HallucinationModel, shipped_model

HEAD = 10  # the head of each leg's ranking the spread and the agreement look at
TOP_CONTEXTS = 3  # the contexts a reader sees first: coverage and faithfulness look at these


@dataclass(frozen=True)
class QueryFeatures:
    """The model's inputs; None where this query cannot have the feature (no dense leg, no corpus moments)."""

    dense_top_z: float | None  # (top dense score - corpus mean) / corpus deviation
    dense_margin_z: float | None  # (top - second dense score) / corpus deviation
    dense_nqc: float | None  # deviation of the top HEAD dense scores / corpus deviation
    lexical_top_z: float | None  # the same for BM25, against its scores over every entry
    lexical_margin_z: float | None
    lexical_nqc: float | None  # deviation of the top HEAD BM25 scores / mean BM25 score over the corpus (NQC)
    leg_agreement: float | None  # |dense top HEAD & BM25 top HEAD| / HEAD (None: one leg only)
    coverage: float  # share of the query's content terms found in the top contexts
    query_terms: float  # number of content terms in the query


@dataclass(frozen=True)
class QualitySignals:
    hallucination_risk: float  # in [0, 1]: estimated chance that no relevant context is in the top 5
    faithfulness_score: float  # in [0, 1]: how well the top contexts support the query as a claim
    context_relevance: float | None  # best cosine similarity of the query to a top context (None: no dense leg)
    features: QueryFeatures

    @property
    def coverage(self) -> float:
        return self.features.coverage

    @property
    def leg_agreement(self) -> float | None:
        return self.features.leg_agreement

    def as_dict(self) -> dict[str, float]:
        """Flat, for the query log and JSON: the two signals, then every component that this query has."""
        values = {
            "hallucination_risk": self.hallucination_risk,
            "faithfulness_score": self.faithfulness_score,
            "context_relevance": self.context_relevance,
            **asdict(self.features),
        }
        return {k: float(v) for k, v in values.items() if v is not None}


def _leg(
    hits: Sequence[LegHit], moments: ScoreMoments | None, commitment_scale: float | None
) -> tuple[float | None, float | None, float | None]:
    """(top z, margin z, head spread / commitment_scale) of one leg; None without hits or moments."""
    if not hits or moments is None or not moments.std > 0:
        return None, None, None
    scores = np.array([h.score for h in hits[:HEAD]], dtype=np.float64)
    second = scores[1] if len(scores) > 1 else moments.mean
    nqc = float(scores.std() / commitment_scale) if commitment_scale and commitment_scale > 0 else None
    return float((scores[0] - moments.mean) / moments.std), float((scores[0] - second) / moments.std), nqc


def query_signals(
    query: str,
    dense: Sequence[LegHit],
    lexical: Sequence[LegHit],
    dense_moments: ScoreMoments | None,
    lexical_moments: ScoreMoments | None,
    contexts: Sequence[str],
    similarities: Sequence[float | None],
    model: HallucinationModel | None = None,
) -> QualitySignals:
    """``dense`` / ``lexical``: each leg's ranking keyed as fused (document or chunk ids), best first.
    ``contexts``: the returned texts, best first; ``similarities``: each one's dense (cosine) score, or None."""
    dense_top, dense_margin, dense_nqc = _leg(dense, dense_moments, dense_moments and dense_moments.std)
    lexical_top, lexical_margin, lexical_nqc = _leg(lexical, lexical_moments, lexical_moments and lexical_moments.mean)
    agreement = None
    if dense and lexical:
        agreement = len({h.key for h in dense[:HEAD]} & {h.key for h in lexical[:HEAD]}) / HEAD
    query_terms, *context_terms = content_terms([query, *contexts[:TOP_CONTEXTS]])
    top_terms = set().union(*context_terms)
    features = QueryFeatures(
        dense_top_z=dense_top,
        dense_margin_z=dense_margin,
        dense_nqc=dense_nqc,
        lexical_top_z=lexical_top,
        lexical_margin_z=lexical_margin,
        lexical_nqc=lexical_nqc,
        leg_agreement=agreement,
        coverage=coverage(query_terms, top_terms) if contexts else 0.0,
        query_terms=float(len(query_terms)),
    )
    top_similarities = [s for s in similarities[:TOP_CONTEXTS] if s is not None]
    return QualitySignals(
        hallucination_risk=(model or shipped_model()).risk(asdict(features)),
        faithfulness_score=query_faithfulness(
            query, query_terms, context_terms, " ".join(contexts[:TOP_CONTEXTS]), similarities[:TOP_CONTEXTS]
        ),
        context_relevance=min(max(max(top_similarities), 0.0), 1.0) if top_similarities else None,
        features=features,
    )
