"""Exact dense search over an in-process copy of the collection's vectors, for Milvus Lite.

Milvus Lite searches in a Python loop over its rows: at SciFact scale (12.6k chunks) that was measured as the
largest share of a hybrid query after the encoder. A matrix product over the same vectors answers the same question
exactly, in about a millisecond, and can only match or beat Lite's HNSW on recall. The copy lives in the
client-side index, so it is rebuilt from Milvus whenever the data version changes, like the BM25 index; Milvus
stays the store of record. A filtered search masks the rows the filter does not pass before taking its top, as the
client-side BM25 does.
"""

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_core.types import Hit

FILE = "dense_mirror.npz"
METRICS = ("COSINE", "IP")  # what a dot product reproduces; L2 stays in Milvus


@dataclass(frozen=True)
class DenseMirror:
    chunk_ids: np.ndarray  # (n,) str
    doc_ids: np.ndarray  # (n,) str
    vectors: np.ndarray  # (n, dim) float32; unit rows under COSINE
    metric: str

    @classmethod
    def build(cls, chunk_ids: Sequence[str], doc_ids: Sequence[str], vectors: np.ndarray, metric: str) -> "DenseMirror":
        if metric not in METRICS:
            raise ValueError(
                f"The dense mirror reproduces {' and '.join(METRICS)} only, not {metric!r}; set "
                "retrieval.dense_search: milvus."
            )
        vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(chunk_ids), -1)
        if metric == "COSINE":
            vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        return cls(np.asarray(chunk_ids, dtype=str), np.asarray(doc_ids, dtype=str), vectors, metric)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def rows_of_chunks(self, chunk_ids: Collection[str]) -> np.ndarray:
        return np.fromiter((c in chunk_ids for c in self.chunk_ids), dtype=bool, count=len(self.chunk_ids))

    def search(self, queries: np.ndarray, limit: int, allowed: np.ndarray | None = None) -> list[list[Hit]]:
        """The ``limit`` best rows per query by Milvus's score (cosine or inner product), best first; only rows
        ``allowed`` (a mask) when given."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if self.metric == "COSINE":
            queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        limit = min(limit, len(self) if allowed is None else int(allowed.sum()))
        if limit <= 0:
            return [[] for _ in queries]
        scores = queries @ self.vectors.T
        if allowed is not None:
            scores[:, ~allowed] = -np.inf
        results = []
        for row in scores:
            top = np.argpartition(-row, limit - 1)[:limit] if limit < len(row) else np.arange(len(row))
            top = top[np.argsort(-row[top], kind="stable")]
            results.append(
                [Hit(chunk_id=str(self.chunk_ids[i]), doc_id=str(self.doc_ids[i]), score=float(row[i])) for i in top]
            )
        return results

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(
            folder / FILE,
            chunk_ids=self.chunk_ids,
            doc_ids=self.doc_ids,
            vectors=self.vectors,
            metric=np.asarray(self.metric),
        )

    @classmethod
    def load(cls, folder: Path) -> "DenseMirror | None":
        """None when the index was saved without a mirror (a server, or ``dense_search: milvus``)."""
        if not (folder / FILE).is_file():
            return None
        with np.load(folder / FILE) as data:
            return cls(data["chunk_ids"], data["doc_ids"], data["vectors"], str(data["metric"]))
