"""A client-side BM25 index over chunks, for Milvus servers without BM25 functions (2.3/2.4).

Built with bm25s (sparse matrices, ~ms per query at 100k chunks) and persisted next to the asset tables; the
tokenizer (lowercase, English stopwords, Snowball stemming) is the one bm25s's published SciFact figure used.
"""

import json
import re
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

import bm25s
import numpy as np
import Stemmer

from rag_core.retrieval.fusion import ScoreMoments
from rag_core.types import Hit

META_FILE = "chunks.json"
_STEMMER = Stemmer.Stemmer("english")


@dataclass(frozen=True)
class LexicalRanking:
    """One query's top entries (best first, positive scores only), the requested entries outside them with their
    true scores (possibly 0), and the moments of its scores over every entry of the index."""

    hits: list[Hit]
    beyond: list[Hit]
    moments: ScoreMoments


Level = Literal["chunk", "document"]


# Han, Hiragana, Katakana and Hangul: scripts written without spaces between words, where the word pattern would
# take a whole sentence for one token. Each run becomes its overlapping character pairs, as Lucene's CJK analyzer
# does (pairs, not single characters: the tokenizer keeps words of two characters or more).
_CJK_RUN = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af]{2,}")


def _cjk_bigrams(text: str) -> str:
    return _CJK_RUN.sub(lambda run: " " + " ".join(a + b for a, b in zip(run[0], run[0][1:])) + " ", text)


def tokenize(texts: Sequence[str], *, as_words: bool = False) -> bm25s.tokenization.Tokenized | list[list[str]]:
    return bm25s.tokenize(
        [_cjk_bigrams(t) for t in texts], stopwords="en", stemmer=_STEMMER, show_progress=False, return_ids=not as_words
    )


class LexicalIndex:
    """BM25 over chunks, or over whole documents (``level``), each entry keyed by its chunk id or its document id.

    A document entry names the chunk that stands for it (its first). ``collection`` names the Milvus collection
    version the index mirrors, so a stale index is noticed.
    """

    def __init__(
        self, model: bm25s.BM25, chunk_ids: list[str], doc_ids: list[str], collection: str, level: Level = "chunk"
    ) -> None:
        self._model, self.chunk_ids, self.doc_ids, self.collection = model, chunk_ids, doc_ids, collection
        self.level = level
        self.params = (float(model.k1), float(model.b))

    @classmethod
    def build(
        cls,
        chunk_ids: Sequence[str],
        doc_ids: Sequence[str],
        texts: Sequence[str],
        *,
        collection: str,
        k1: float,
        b: float,
        level: Level = "chunk",
    ) -> "LexicalIndex":
        if not texts:
            raise ValueError("Cannot build a BM25 index over no chunks; ingest documents first.")
        model = bm25s.BM25(k1=k1, b=b)
        model.index(tokenize(texts), show_progress=False)
        return cls(model, list(chunk_ids), list(doc_ids), collection, level)

    @cached_property
    def _row_of_key(self) -> dict[str, int]:
        return {key: row for row, key in enumerate(self.chunk_ids if self.level == "chunk" else self.doc_ids)}

    def __len__(self) -> int:
        return len(self.chunk_ids)

    def __contains__(self, key: str) -> bool:
        return key in self._row_of_key

    def search(self, queries: Sequence[str], limit: int) -> list[list[Hit]]:
        """Top ``limit`` entries per query by BM25 score; entries sharing no term with the query are left out."""
        return [ranking.hits for ranking in self.rank(queries, limit)]

    def rows_of_chunks(self, chunk_ids: Collection[str]) -> np.ndarray:
        """Which entries stand for one of ``chunk_ids`` (a document entry by its first chunk), as a mask."""
        return np.fromiter((c in chunk_ids for c in self.chunk_ids), dtype=bool, count=len(self.chunk_ids))

    def rank(
        self,
        queries: Sequence[str],
        limit: int,
        *,
        also: Callable[[], Sequence[Sequence[str]]] = tuple,
        allowed: np.ndarray | None = None,
    ) -> list[LexicalRanking]:
        """Scores every entry (what BM25 does anyway), so the moments and any entry's score come for free.
        ``also()[i]``: keys whose true scores query i needs beyond its top, e.g. the dense leg's candidates; asked
        for once the first query is scored, so whatever produces them can run meanwhile. ``allowed``: a mask of the
        entries that may be returned, applied before the top is taken, so a filter still gets ``limit`` entries
        (the moments stay those of every entry)."""
        rankings, wanted = [], None
        for i, words in enumerate(tokenize(queries, as_words=True)):
            scores = self._model.get_scores(words) if words else np.zeros(len(self), dtype=np.float32)
            ranked = scores if allowed is None else np.where(allowed, scores, 0.0)
            k = min(limit, len(scores))
            top = np.argpartition(-ranked, k - 1)[:k]
            top = top[np.argsort(-ranked[top], kind="stable")]
            rows = [int(r) for r in top if ranked[r] > 0]
            taken = set(rows)
            wanted = also() if wanted is None else wanted
            extra = [
                r
                for r in (self._row_of_key.get(key) for key in dict.fromkeys(wanted[i] if wanted else ()))
                if r is not None and r not in taken
            ]
            rankings.append(
                LexicalRanking(
                    hits=[self._hit(r, scores) for r in rows],
                    beyond=[self._hit(r, scores) for r in extra],
                    moments=ScoreMoments(float(scores.mean()), float(scores.std())),
                )
            )
        return rankings

    def _hit(self, row: int, scores: np.ndarray) -> Hit:
        return Hit(self.chunk_ids[row], self.doc_ids[row], float(scores[row]))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self._model.save(str(folder), show_progress=False)
        (folder / META_FILE).write_text(
            json.dumps(
                {
                    "collection": self.collection,
                    "level": self.level,
                    "chunk_ids": self.chunk_ids,
                    "doc_ids": self.doc_ids,
                }
            )
        )

    @classmethod
    def load(cls, folder: Path) -> "LexicalIndex":
        if not (folder / META_FILE).is_file():
            raise FileNotFoundError(
                f"No BM25 index in {folder}; materialize the bm25_index asset (or run `rag ingest`) first."
            )
        meta = json.loads((folder / META_FILE).read_text())
        model = bm25s.BM25.load(str(folder), show_progress=False)
        return cls(model, meta["chunk_ids"], meta["doc_ids"], meta["collection"], meta["level"])

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / META_FILE).is_file()
