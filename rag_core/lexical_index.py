"""A client-side BM25 index over chunks, for Milvus servers without BM25 functions (2.3/2.4).

Built with bm25s (sparse matrices, ~ms per query at 100k chunks) and persisted next to the asset tables; the
tokenizer (lowercase, English stopwords, Snowball stemming) is the one bm25s's published SciFact figure used.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

META_FILE = "chunks.json"
_STEMMER = Stemmer.Stemmer("english")


@dataclass(frozen=True)
class LexicalHit:
    chunk_id: str
    doc_id: str
    score: float


def tokenize(texts: Sequence[str], *, as_words: bool = False) -> bm25s.tokenization.Tokenized | list[list[str]]:
    return bm25s.tokenize(list(texts), stopwords="en", stemmer=_STEMMER, show_progress=False, return_ids=not as_words)


class LexicalIndex:
    """``collection`` names the Milvus collection version the index mirrors, so a stale index is noticed."""

    def __init__(self, model: bm25s.BM25, chunk_ids: list[str], doc_ids: list[str], collection: str) -> None:
        self._model, self.chunk_ids, self.doc_ids, self.collection = model, chunk_ids, doc_ids, collection
        self.params = (float(model.k1), float(model.b))

    @classmethod
    def build(cls, chunk_ids: Sequence[str], doc_ids: Sequence[str], texts: Sequence[str], *, collection: str,
              k1: float = 0.9, b: float = 0.4) -> "LexicalIndex":
        if not texts:
            raise ValueError("Cannot build a BM25 index over no chunks; ingest documents first.")
        model = bm25s.BM25(k1=k1, b=b)
        model.index(tokenize(texts), show_progress=False)
        return cls(model, list(chunk_ids), list(doc_ids), collection)

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def search(self, queries: Sequence[str], limit: int) -> list[list[LexicalHit]]:
        """Top ``limit`` chunks per query by BM25 score; chunks sharing no term with the query are left out."""
        k = min(limit, len(self.chunk_ids))
        indices, scores = self._model.retrieve(tokenize(queries), k=k, show_progress=False, n_threads=1)
        return [[LexicalHit(self.chunk_ids[i], self.doc_ids[i], float(s)) for i, s in zip(row_i, row_s) if s > 0]
                for row_i, row_s in zip(np.atleast_2d(indices), np.atleast_2d(scores))]

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / META_FILE).write_text(json.dumps({"collection": self.collection, "chunk_ids": self.chunk_ids,
                                                    "doc_ids": self.doc_ids}))

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        if not (folder / META_FILE).is_file():
            raise FileNotFoundError(f"No BM25 index in {folder}; materialize the bm25_index asset "
                                    "(or run `rag ingest`) first.")
        meta = json.loads((folder / META_FILE).read_text())
        model = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(model, meta["chunk_ids"], meta["doc_ids"], meta["collection"])

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / META_FILE).is_file()
