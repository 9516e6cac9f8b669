"""The mean and covariance of an index's vectors: the moments of any query's similarity to the whole corpus.

For a query q and corpus vectors v, the dot product q.v has mean q.mu and variance q' C q over the corpus, so the
``corpus`` fusion normalisation needs no pass over the vectors at query time. Exact for IP and for COSINE over
unit vectors (what the embedder writes).
"""

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_core.retrieval.fusion import ScoreMoments

FILE = "vector_moments.npz"


@dataclass(frozen=True)
class VectorMoments:
    mean: np.ndarray  # (dim,)
    covariance: np.ndarray  # (dim, dim), population covariance
    count: int

    @classmethod
    def from_batches(cls, batches: Iterable[np.ndarray]) -> "VectorMoments":
        """Streamed: sums in float64, one batch of vectors in memory at a time."""
        total, outer, count = None, None, 0
        for batch in batches:
            batch = np.asarray(batch, dtype=np.float64)
            if batch.size == 0:
                continue
            total = batch.sum(axis=0) if total is None else total + batch.sum(axis=0)
            outer = batch.T @ batch if outer is None else outer + batch.T @ batch
            count += len(batch)
        if not count:
            raise ValueError("No vectors to take moments of; ingest documents first.")
        mean = total / count
        return cls(mean=mean, covariance=outer / count - np.outer(mean, mean), count=count)

    def score_moments(self, queries: np.ndarray) -> list[ScoreMoments]:
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float64))
        means = queries @ self.mean
        variances = np.einsum("ij,jk,ik->i", queries, self.covariance, queries)
        return [ScoreMoments(float(m), float(np.sqrt(max(v, 0.0)))) for m, v in zip(means, variances)]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / FILE, mean=self.mean, covariance=self.covariance, count=self.count)

    @classmethod
    def load(cls, folder: Path) -> "VectorMoments":
        with np.load(folder / FILE) as data:
            return cls(mean=data["mean"], covariance=data["covariance"], count=int(data["count"]))
