"""Scoring a caller's answer against the results it was generated from, with the engine's loaded models."""

from collections.abc import Sequence
from functools import cache

import numpy as np

from rag_core.models.nli import NliModel
from rag_core.retrieval.engine import RetrievalEngine, RetrievedChunk
from rag_core.retrieval.faithfulness import AnswerScorer, DocumentShare, FaithfulnessResult
from rag_core.retrieval.lexical import LexicalIndex


@cache
def _nli_model(name: str, device: str) -> NliModel:
    """One loaded NLI model per process and name."""
    return NliModel(name, device)


def document_share(index: LexicalIndex) -> DocumentShare:
    """Share of the index's entries holding a stemmed term, read from BM25's term-by-document matrix (its column
    lengths are the document frequencies). A term the corpus never saw has share 0."""
    model = index._model  # noqa: SLF001 - bm25s keeps the document frequencies in its score matrix
    frequencies = np.diff(np.asarray(model.scores["indptr"]))
    entries = max(int(model.scores["num_docs"]), 1)
    vocabulary = model.vocab_dict

    def share(term: str) -> float:
        row = vocabulary.get(term)
        return float(frequencies[row]) / entries if row is not None and row < len(frequencies) else 0.0

    return share


def answer_scorer(engine: RetrievalEngine) -> AnswerScorer:
    """Rare terms are told by the client-side BM25 index's document frequencies where the engine keeps one; with
    BM25 inside Milvus only numbers count as specifics."""
    shares = document_share(engine.client_index().documents) if engine.lexical_backend == "local" else None
    name = engine.config.quality.nli_model
    return AnswerScorer(
        engine.embedder, document_share=shares, nli=_nli_model(name, engine.config.embedding.device) if name else None
    )


def score_answer(engine: RetrievalEngine, answer: str, results: Sequence[RetrievedChunk]) -> FaithfulnessResult:
    return answer_scorer(engine).score(answer, [c.text for c in results])
