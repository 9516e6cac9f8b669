"""The drift signals, each a comparison of now against the reference snapshot with its own threshold.

- query drift: can a classifier tell the sample's query embeddings from the reference ones? Cross-validated ROC AUC
  of a logistic regression (Evidently's embeddings "model" method, done with scikit-learn directly). Its threshold
  is 0.55 or, for small samples, the 95th percentile of the AUCs the same classifier reaches with shuffled labels,
  whichever is higher: with a few dozen queries a chance AUC of 0.6 is common, and that must not alarm.
  Evidently itself is not a dependency: `pip install --dry-run evidently` beside the pinned stack wants 28 more
  packages (a web server, telemetry, nltk, statsmodels, plotly) for what is one scikit-learn classifier here.
- result drift: rank-biased overlap (Webber et al. 2010, p 0.9) of the probe queries' top 10 now and then, and a
  two-sample Kolmogorov-Smirnov test (scipy) on their top-1 scores.
- corpus drift: the shift of the stored vectors' mean, in units of the reference spread, and the relative change
  of their covariance (Frobenius norm).
- model drift: the lowest cosine between a fixed canary text's embedding now and in the snapshot.
- result-quality drift: the nDCG@10 the version's probe set (queries derived from the corpus, their documents the
  known answers) has lost since the snapshot, as a paired bootstrap's one-sided 95 % lower bound, so a handful of
  probes that moved by chance never alarms. The other result signals say that answers changed; this one says
  whether they got worse.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from rag_core.quality.bootstrap import paired_bootstrap
from rag_core.retrieval.moments import VectorMoments

QUERY_AUC_THRESHOLD = 0.55  # Evidently's default for the model method
NULL_PERMUTATIONS = 20
NULL_QUANTILE = 0.95
CV_FOLDS = 5
RBO_P = 0.9
RBO_DEPTH = 10
RBO_THRESHOLD = 0.8  # below: on average a fifth of the probe rankings' weight moved
KS_ALPHA = 0.01
MEAN_SHIFT_THRESHOLD = 0.1  # of the reference spread, sqrt(trace C)
COVARIANCE_THRESHOLD = 0.2  # relative Frobenius change
CANARY_THRESHOLD = 0.001  # 1 - cosine; the same model gave exactly 0 in every benchmark check, noise 0.01 x std 5e-4
PROBE_NDCG_DROP_THRESHOLD = 0.05  # probe-set nDCG@10 lost, at least (95 %): a re-index gate allows 0.01 by default
PROBE_DROP_RISK = 0.05  # one-sided: the drop's bound is the lower end of a two-sided 90 % interval
SEED = 0


@dataclass(frozen=True)
class DriftSignal:
    """One comparison: ``detected`` when ``value`` is beyond ``threshold`` (below it for ``result_overlap``)."""

    name: str
    value: float
    threshold: float
    detected: bool
    detail: str


def query_drift(reference: np.ndarray, sample: np.ndarray) -> DriftSignal:
    """Domain-classifier ROC AUC of sample (1) against reference (0) query embeddings, cross-validated."""
    features = np.vstack([reference, sample]).astype(np.float64)
    labels = np.r_[np.zeros(len(reference)), np.ones(len(sample))]
    auc = _cross_validated_auc(features, labels)
    rng = np.random.default_rng(SEED)
    null = [_cross_validated_auc(features, rng.permutation(labels)) for _ in range(NULL_PERMUTATIONS)]
    threshold = max(QUERY_AUC_THRESHOLD, float(np.quantile(null, NULL_QUANTILE)))
    return DriftSignal(
        "query_drift",
        auc,
        threshold,
        auc > threshold,
        f"a classifier tells {len(sample)} sample queries from {len(reference)} reference queries "
        f"with ROC AUC {auc:.3f} (0.5 = indistinguishable; shuffled labels reach "
        f"{np.quantile(null, NULL_QUANTILE):.3f} at the 95th percentile)",
    )


def _cross_validated_auc(features: np.ndarray, labels: np.ndarray) -> float:
    from sklearn.linear_model import LogisticRegression  # scikit-learn takes a second to import: only when used
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    folds = StratifiedKFold(
        min(CV_FOLDS, int(min(labels.sum(), len(labels) - labels.sum()))), shuffle=True, random_state=SEED
    )
    scores = cross_val_predict(LogisticRegression(max_iter=1000), features, labels, cv=folds, method="predict_proba")[
        :, 1
    ]
    return float(roc_auc_score(labels, scores))


def rank_biased_overlap(first: Sequence[str], second: Sequence[str], p: float = RBO_P) -> float:
    """Extrapolated RBO of two rankings cut at the same depth (1 for identical lists, 0 for disjoint ones)."""
    depth = max(len(first), len(second))
    if depth == 0:
        return 1.0
    seen_first: set[str] = set()
    seen_second: set[str] = set()
    overlap, total = 0, 0.0  # overlap: how many items the two lists share down to depth d
    for d in range(1, depth + 1):
        a, b = first[d - 1] if d <= len(first) else None, second[d - 1] if d <= len(second) else None
        overlap += (a is not None and (a in seen_second or a == b)) + (b is not None and b in seen_first)
        seen_first.add(a)
        seen_second.add(b)
        total += overlap / d * p**d
    return float(overlap / depth * p**depth + (1 - p) / p * total)


def result_overlap(before: Sequence[Sequence[str]], now: Sequence[Sequence[str]]) -> DriftSignal:
    overlaps = [rank_biased_overlap(list(a)[:RBO_DEPTH], list(b)[:RBO_DEPTH]) for a, b in zip(before, now)]
    value = float(np.mean(overlaps))
    changed = sum(o < 1 for o in overlaps)
    return DriftSignal(
        "result_overlap",
        value,
        RBO_THRESHOLD,
        value < RBO_THRESHOLD,
        f"mean rank-biased overlap (p {RBO_P}) of {len(overlaps)} probe queries' top {RBO_DEPTH} "
        f"now vs the snapshot; {changed} rankings changed",
    )


def top_score_shift(before: Sequence[float], now: Sequence[float]) -> DriftSignal:
    """KS statistic; its threshold is the asymptotic critical value at ``KS_ALPHA`` for these sample sizes."""
    from scipy import stats

    n, m = len(before), len(now)
    statistic = float(stats.ks_2samp(before, now).statistic)
    critical = float(np.sqrt(-np.log(KS_ALPHA / 2) / 2) * np.sqrt((n + m) / (n * m)))
    return DriftSignal(
        "top1_score",
        statistic,
        critical,
        statistic > critical,
        f"two-sample Kolmogorov-Smirnov statistic of the probe queries' top-1 scores (median "
        f"{np.median(before):.3f} then, {np.median(now):.3f} now); critical value at alpha {KS_ALPHA}",
    )


def corpus_drift(reference: VectorMoments, now: VectorMoments) -> list[DriftSignal]:
    if reference.mean.shape != now.mean.shape:
        return [
            DriftSignal(
                "corpus_mean",
                1.0,
                MEAN_SHIFT_THRESHOLD,
                True,
                f"the vectors have {now.mean.shape[0]} dimensions, {reference.mean.shape[0]} in the "
                "snapshot: the embedding model changed",
            )
        ]
    spread = float(np.sqrt(max(np.trace(reference.covariance), 1e-12)))
    shift = float(np.linalg.norm(now.mean - reference.mean)) / spread
    change = float(
        np.linalg.norm(now.covariance - reference.covariance) / max(np.linalg.norm(reference.covariance), 1e-12)
    )
    counts = f"{now.count} vectors now, {reference.count} in the snapshot"
    return [
        DriftSignal(
            "corpus_mean",
            shift,
            MEAN_SHIFT_THRESHOLD,
            shift > MEAN_SHIFT_THRESHOLD,
            f"the stored vectors' mean moved {shift:.3f} of the reference spread ({counts})",
        ),
        DriftSignal(
            "corpus_covariance",
            change,
            COVARIANCE_THRESHOLD,
            change > COVARIANCE_THRESHOLD,
            f"their covariance changed by {change:.3f} (relative Frobenius norm)",
        ),
    ]


def model_drift(reference: np.ndarray, now: np.ndarray) -> DriftSignal:
    if reference.shape != now.shape:
        return DriftSignal(
            "model_canary",
            1.0,
            CANARY_THRESHOLD,
            True,
            f"canary embeddings have shape {now.shape}, {reference.shape} in the snapshot: the embedding model changed",
        )
    cosines = np.sum(_unit(reference) * _unit(now), axis=1)
    value = float(1 - cosines.min())
    return DriftSignal(
        "model_canary",
        value,
        CANARY_THRESHOLD,
        value > CANARY_THRESHOLD,
        f"lowest cosine of {len(cosines)} canary texts' embeddings now vs the snapshot: {cosines.min():.6f}",
    )


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def probe_ndcg_drop(before: Mapping[str, float], now: Mapping[str, float], left_out: int) -> DriftSignal:
    """Probe-set nDCG@10 at the snapshot against now, paired by probe; ``left_out`` of the snapshot's probes were
    not scored, their documents deleted or erased since (corpus change, not worse answers)."""
    drop = paired_bootstrap(before, now, confidence=1 - 2 * PROBE_DROP_RISK)
    gone = f"; {left_out} left out, their documents deleted or erased since" if left_out else ""
    return DriftSignal(
        "probe_ndcg_drop",
        drop.low,
        PROBE_NDCG_DROP_THRESHOLD,
        drop.low > PROBE_NDCG_DROP_THRESHOLD,
        f"probe-set nDCG@10 {np.mean(list(before.values())):.4f} at the snapshot, {np.mean(list(now.values())):.4f} "
        f"now over {len(now)} probes{gone}; the drop is at least {drop.low:+.4f} (95 % one-sided)",
    )
