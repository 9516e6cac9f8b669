"""SciFact retrieval replayed offline: each leg computed once, then any BM25 k1/b and any fusion setting scored.

What ``RetrievalEngine`` does for a document-level query, split so a grid costs seconds per point:
- dense: the query embedded and searched in the dataset's Milvus collection once (``candidates`` chunks), with the
  query's corpus moments from the client-side index's vector moments;
- BM25: the engine's ``LexicalIndex`` over whole documents (rejoined from the collection's chunks with the
  engine's ``documents_from_chunks``), rebuilt per (k1, b) from tokens computed once;
- fusion: the engine's own ``_fuse_legs`` on those legs.
``benchmarks.tune_retrieval`` scores the shipped setting both ways on test, so the replay is shown to be faithful.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import bm25s
import numpy as np

from rag_core.config import RAGConfig
from rag_core.lifecycle.context import RagContext
from rag_core.quality.bootstrap import folds as seeded_folds
from rag_core.quality.bootstrap import per_query_ndcg
from rag_core.quality.evaluation import BeirDataset, Run, dataset_alias, load_beir
from rag_core.retrieval.client_index import documents_from_chunks
from rag_core.retrieval.engine import SearchOptions, _fuse_legs
from rag_core.retrieval.fusion import ScoreMoments
from rag_core.retrieval.lexical import LexicalIndex, LexicalRanking, tokenize
from tests.support.engines import engine_for

CANDIDATES = 300  # per leg, the depth `rag eval` uses (max(retrieval.candidates, 300))
TOP = 100  # results kept per query, as `rag eval`
FOLDS = 5
FOLD_SEED = 0
SCIFACT = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "scifact"


def quality_config(config: RAGConfig) -> RAGConfig:
    """The benchmarks' engine: the query cache off, so every setting is computed rather than remembered."""
    return config.model_copy(update={"retrieval": config.retrieval.model_copy(update={"cache_size": 0})})


def folds(query_ids: Iterable[str], k: int = FOLDS, seed: int = FOLD_SEED) -> list[list[str]]:
    return seeded_folds(query_ids, k, seed)


def fold_means(scores: dict[str, float], parts: Sequence[Sequence[str]]) -> list[float]:
    return [float(np.mean([scores[q] for q in part])) for part in parts]


def spread(values: Sequence[float]) -> dict[str, Any]:
    return {
        "mean": round(float(np.mean(values)), 5),
        "min": round(float(min(values)), 5),
        "max": round(float(max(values)), 5),
        "std": round(float(np.std(values, ddof=1)), 5),
        "folds": [round(v, 5) for v in values],
    }


@dataclass
class DenseLeg:
    hits: list[list[Any]]  # per query, the engine's dense hits (chunk_id, doc_id, score), best first
    moments: list[ScoreMoments | None]


class OfflineSciFact:
    """The dataset's collection (built by `rag eval` / ``ingest_path`` on first use) and its legs, per split."""

    def __init__(self, config: RAGConfig, root: Path = SCIFACT) -> None:
        from rag_core.lifecycle.direct import ingest_path  # the embedding stack

        self.config = quality_config(config)
        self.root = root
        self.alias = dataset_alias(root)
        self.splits: dict[str, BeirDataset] = {s: load_beir(root, s) for s in ("train", "test")}
        ingest_path(
            self.splits["test"].corpus, RagContext(self.config), collection=self.alias, prune=True
        )  # as `rag eval`
        self.engine = engine_for(self.config, alias=self.alias)
        self.collection = self.engine.manager.serving(self.alias)
        self._dense: dict[str, DenseLeg] = {}
        self._lexical: dict[tuple[float, float], LexicalIndex] = {}

    def options(self, mode: str = "hybrid", **fusion: Any) -> SearchOptions:
        return self.engine.options(
            mode=mode, top_k=TOP, rerank_top_k=TOP, candidates=CANDIDATES, document_level=True, **fusion
        )

    # --- the legs -----------------------------------------------------------------------------------------------

    def dense(self, split: str) -> DenseLeg:
        if split not in self._dense:
            texts = list(self.splits[split].queries.values())
            # One query per call, as the engine embeds a user's query: the bfloat16 encoder's scores move in the
            # last digits with the batch's padding, enough to swap near-ties.
            vectors = np.vstack([self.engine.embedder.encode_queries([t]) for t in texts])
            hits = self.engine.manager.search(self.alias, vectors, limit=CANDIDATES, output_fields=["doc_id"])
            moments = self.engine.client_index().vectors.score_moments(vectors)
            self._dense[split] = DenseLeg(hits, moments)
        return self._dense[split]

    @cached_property
    def _documents(self) -> tuple[list[str], list[str], Any]:
        """(first chunk ids, document ids, tokens) of the whole documents, as the client-side index builds them."""
        manager = self.engine.manager
        fields = ["chunk_id", "doc_id", "position", "text"]
        raw = manager.consistent_export(
            self.collection, lambda: [r for batch in manager.iter_rows(self.collection, fields) for r in batch]
        )
        first_chunks, doc_ids, texts = documents_from_chunks(SimpleNamespace(**{f: r[f] for f in fields}) for r in raw)
        return first_chunks, doc_ids, tokenize(texts)

    def lexical_index(self, k1: float, b: float) -> LexicalIndex:
        """``LexicalIndex.build`` at document level, from tokens computed once."""
        if (k1, b) not in self._lexical:
            first_chunks, doc_ids, tokens = self._documents
            model = bm25s.BM25(k1=k1, b=b)
            model.index(tokens, show_progress=False)
            self._lexical = {(k1, b): LexicalIndex(model, first_chunks, doc_ids, self.collection, "document")}
        return self._lexical[(k1, b)]

    def lexical(self, split: str, k1: float, b: float) -> list[LexicalRanking]:
        """Per query: BM25's candidates, the true scores of the dense candidates outside them, its moments."""
        also = [[h.doc_id for h in hits] for hits in self.dense(split).hits]
        return self.lexical_index(k1, b).rank(list(self.splits[split].queries.values()), CANDIDATES, also=lambda: also)

    # --- runs ---------------------------------------------------------------------------------------------------

    def run(self, split: str, options: SearchOptions, lexical: list[LexicalRanking] | None = None) -> Run:
        """The engine's fusion over the cached legs, exactly as ``_search_uncached`` calls it (``corpus`` moments
        only for a weighted hybrid; a single-leg mode fuses its leg with nothing)."""
        ids = list(self.splits[split].queries)
        dense = self.dense(split)
        corpus = options.mode == "hybrid" and options.fusion == "weighted" and options.normalization == "corpus"
        run: Run = {}
        for i, qid in enumerate(ids):
            d = dense.hits[i] if options.mode != "bm25" else []
            ranking = lexical[i] if options.mode != "dense" and lexical is not None else None
            lex = ranking.hits if ranking else []
            beyond = ranking.beyond if ranking and corpus else []
            fused = _fuse_legs(
                d,
                lex,
                beyond,
                options,
                dense.moments[i] if corpus else None,
                ranking.moments if ranking and corpus else None,
            )[: options.top_k]
            run[qid] = [(f.key, f.fused_score) for f, _ in fused if f.key != qid][:TOP]
        return run

    def scores(self, split: str, options: SearchOptions, k1: float, b: float) -> dict[str, float]:
        lexical = self.lexical(split, k1, b) if options.mode != "dense" else None
        return per_query_ndcg(self.run(split, options, lexical), self.splits[split].qrels)
