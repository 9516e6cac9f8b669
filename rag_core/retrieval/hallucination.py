"""``hallucination_risk``: a logistic model over a query's label-free features, shipped as plain coefficients.

The coefficients (``hallucination_model.json`` beside this file) are fitted on SciFact **train** only by
``python -m benchmarks.fit_hallucination`` (failure = no relevant document in the top 5), so the figure on
SciFact test is an honest hold-out. Features are standardised with the training means and deviations; a feature
this query cannot have (no dense leg, BM25 inside Milvus without corpus moments) takes the training mean, i.e.
contributes nothing, rather than a made-up value.
"""

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

MODEL_FILE = Path(__file__).resolve().parent / "hallucination_model.json"


@dataclass(frozen=True)
class HallucinationModel:
    features: tuple[str, ...]
    means: tuple[float, ...]
    scales: tuple[float, ...]
    coefficients: tuple[float, ...]  # per standardised feature
    intercept: float
    fitted_on: str  # what the coefficients were fitted on, and by which command

    def risk(self, values: Mapping[str, float | None]) -> float:
        """The estimated probability that no relevant context is among the top 5, in [0, 1]."""
        logit = self.intercept
        for name, mean, scale, weight in zip(self.features, self.means, self.scales, self.coefficients):
            value = values.get(name)
            if value is not None and math.isfinite(value):
                logit += weight * (value - mean) / scale
        return 1.0 / (1.0 + math.exp(-max(min(logit, 50.0), -50.0)))

    @classmethod
    def fit(
        cls,
        rows: Sequence[Mapping[str, float | None]],
        failed: Sequence[bool],
        features: Sequence[str],
        *,
        l2: float = 1.0,
        fitted_on: str = "",
    ) -> "HallucinationModel":
        """L2-regularised logistic regression by Newton's method (a handful of features: exact and fast, no
        extra dependency). Missing values are imputed with the feature's mean, as ``risk`` does."""
        x = np.array([[np.nan if r.get(f) is None else r[f] for f in features] for r in rows], dtype=np.float64)
        y = np.asarray(failed, dtype=np.float64)
        if len(x) == 0 or y.min() == y.max():
            raise ValueError("Fitting hallucination_risk needs queries that failed and queries that did not.")
        means = np.nanmean(x, axis=0)
        scales = np.nanstd(x, axis=0)
        scales[~(scales > 0)] = 1.0
        z = np.nan_to_num((x - means) / scales, nan=0.0)
        design = np.hstack([np.ones((len(z), 1)), z])
        weights = np.zeros(design.shape[1])
        penalty = np.full(design.shape[1], l2)
        penalty[0] = 0.0  # the intercept is not shrunk
        for _ in range(100):
            p = 1.0 / (1.0 + np.exp(-design @ weights))
            gradient = design.T @ (p - y) + penalty * weights
            hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty)
            step = np.linalg.solve(hessian, gradient)
            weights -= step
            if np.abs(step).max() < 1e-10:
                break
        return cls(
            tuple(features),
            tuple(map(float, means)),
            tuple(map(float, scales)),
            tuple(map(float, weights[1:])),
            float(weights[0]),
            fitted_on,
        )

    def save(self, path: Path = MODEL_FILE) -> None:
        body = {
            "features": list(self.features),
            "means": list(self.means),
            "scales": list(self.scales),
            "coefficients": list(self.coefficients),
            "intercept": self.intercept,
            "fitted_on": self.fitted_on,
        }
        path.write_text(json.dumps(body, indent=2) + "\n")

    @classmethod
    def load(cls, path: Path = MODEL_FILE) -> "HallucinationModel":
        try:
            body = json.loads(path.read_text())
            model = cls(
                tuple(body["features"]),
                tuple(body["means"]),
                tuple(body["scales"]),
                tuple(body["coefficients"]),
                float(body["intercept"]),
                str(body.get("fitted_on", "")),
            )
        except (OSError, ValueError, KeyError, TypeError) as error:
            raise ValueError(
                f"Cannot read the hallucination model {path} ({error}); re-create it with "
                "`python -m benchmarks.fit_hallucination`."
            ) from None
        if not len(model.features) == len(model.means) == len(model.scales) == len(model.coefficients):
            raise ValueError(
                f"{path}: features, means, scales and coefficients differ in length; re-create it "
                "with `python -m benchmarks.fit_hallucination`."
            )
        return model


@cache
def shipped_model() -> HallucinationModel:
    return HallucinationModel.load(MODEL_FILE)
