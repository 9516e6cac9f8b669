"""``faithfulness_score``: how well the returned contexts support a text, sentence by sentence.

A sentence's support by one context sentence is ``SIMILARITY_WEIGHT * cos + (1 - SIMILARITY_WEIGHT) * coverage``:
the embedding similarity (clipped to [0, 1]) says the meaning matches, the share of the sentence's content terms
(stemmed, stopwords out, the BM25 tokenizer) found in that context sentence says the words do. A sentence takes
its best support over all context sentences. Two things embeddings barely see decide on their own: a number, or a
rare term, that no context contains makes the sentence unsupported (support 0). With ``quality.nli_model`` the
support is instead a cross-encoder NLI model's entailment probability with the context as premise.

``retrieve`` scores the query itself as the claim, cheaply: the dense scores it already has stand for the
similarity and each whole context for the context sentence, so nothing more is embedded on the query path.
"""

import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from rag_core.models.embedder import Embedder
from rag_core.models.nli import NliModel
from rag_core.retrieval.lexical import tokenize

SIMILARITY_WEIGHT = 0.5
SUPPORTED = 0.5  # a sentence whose support is below this is listed as unsupported
RARE_DOCUMENT_SHARE = 0.01  # a term in under 1 % of the corpus's documents is rare
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

DocumentShare = Callable[[str], float]  # a stemmed term -> share of the corpus's documents holding it


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(" ".join(text.split())) if s.strip()]


def content_terms(texts: Sequence[str]) -> list[set[str]]:
    return [set(words) for words in tokenize(texts, as_words=True)] if texts else []


def numbers(text: str) -> set[str]:
    return {n.replace(",", "") for n in _NUMBER.findall(text)}


def coverage(terms: set[str], context: set[str]) -> float:
    """Share of ``terms`` found in ``context``; a text with no content terms is trivially covered."""
    return len(terms & context) / len(terms) if terms else 1.0


def support(similarity: float | None, lexical: float) -> float:
    """One sentence against one context: embedding similarity and lexical coverage, in [0, 1]. Without a
    similarity (no dense leg, a distance metric) the lexical coverage alone."""
    if similarity is None:
        return lexical
    return SIMILARITY_WEIGHT * min(max(similarity, 0.0), 1.0) + (1 - SIMILARITY_WEIGHT) * lexical


def query_faithfulness(
    query: str, terms: set[str], contexts: Sequence[set[str]], context_text: str, similarities: Sequence[float | None]
) -> float:
    """The query as the claim: its best support over the contexts, 0 when it names a number none holds."""
    if not contexts or numbers(query) - numbers(context_text):
        return 0.0
    return max(support(s, coverage(terms, c)) for s, c in zip(similarities, contexts))


@dataclass(frozen=True)
class SentenceSupport:
    sentence: str
    support: float  # in [0, 1]; 0 when ``missing`` is not empty
    context: int | None  # index of the best-supporting context among the results (None: no contexts)
    missing: tuple[str, ...]  # numbers and rare terms no context holds

    @property
    def supported(self) -> bool:
        return self.support >= SUPPORTED


@dataclass(frozen=True)
class FaithfulnessResult:
    score: float  # mean support over the sentences, in [0, 1]
    sentences: list[SentenceSupport]
    method: Literal["embedding", "nli"]

    @property
    def unsupported(self) -> list[SentenceSupport]:
        return [s for s in self.sentences if not s.supported]

    def as_json(self) -> dict:
        return {
            "score": self.score,
            "method": self.method,
            "sentences": [asdict(s) | {"supported": s.supported} for s in self.sentences],
        }


class AnswerScorer:
    """Scores an answer against contexts with the loaded embedder, or an NLI cross-encoder when given one.
    ``document_share`` tells rare terms (None: only numbers count as specifics)."""

    def __init__(
        self, embedder: Embedder, *, document_share: DocumentShare | None = None, nli: NliModel | None = None
    ) -> None:
        self.embedder, self.document_share, self.nli = embedder, document_share, nli

    def score(self, answer: str, contexts: Sequence[str]) -> FaithfulnessResult:
        sentences = split_sentences(answer)
        if not sentences:
            raise ValueError("The answer to score is empty; give the generated text.")
        method: Literal["embedding", "nli"] = "nli" if self.nli else "embedding"
        if not contexts:
            return FaithfulnessResult(0.0, [SentenceSupport(s, 0.0, None, ()) for s in sentences], method)
        missing = self._missing_specifics(sentences, contexts)
        best = self._nli_support(sentences, contexts) if self.nli else self._embedding_support(sentences, contexts)
        supports = [
            SentenceSupport(s, 0.0 if m else float(value), context, m)
            for s, m, (value, context) in zip(sentences, missing, best)
        ]
        return FaithfulnessResult(float(np.mean([s.support for s in supports])), supports, method)

    def _embedding_support(self, sentences: list[str], contexts: Sequence[str]) -> list[tuple[float, int]]:
        pieces = [(i, s) for i, c in enumerate(contexts) for s in split_sentences(c)]
        owner = [i for i, _ in pieces]
        vectors = self.embedder.encode_documents(sentences + [s for _, s in pieces])
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
        similarity = vectors[: len(sentences)] @ vectors[len(sentences) :].T
        terms = content_terms(sentences)
        piece_terms = content_terms([s for _, s in pieces])
        best = []
        for row, sentence_terms in enumerate(terms):
            scores = [
                support(float(similarity[row, j]), coverage(sentence_terms, t)) for j, t in enumerate(piece_terms)
            ]
            j = int(np.argmax(scores))
            best.append((scores[j], owner[j]))
        return best

    def _nli_support(self, sentences: list[str], contexts: Sequence[str]) -> list[tuple[float, int]]:
        entailment = self.nli.entailment([(c, s) for s in sentences for c in contexts])
        table = np.asarray(entailment).reshape(len(sentences), len(contexts))
        return [(float(row.max()), int(row.argmax())) for row in table]

    def _missing_specifics(self, sentences: list[str], contexts: Sequence[str]) -> list[tuple[str, ...]]:
        """Per sentence, the numbers and rare terms that no context holds."""
        context_numbers = numbers(" ".join(contexts))
        context_terms = set().union(*content_terms(contexts))
        found = []
        for sentence, terms in zip(sentences, content_terms(sentences)):
            absent = sorted(numbers(sentence) - context_numbers)
            if self.document_share is not None:
                absent += sorted(
                    t for t in terms - context_terms if not t.isdigit() and self.document_share(t) < RARE_DOCUMENT_SHARE
                )
            found.append(tuple(absent))
        return found
