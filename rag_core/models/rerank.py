"""One reranking interface with swappable implementations, chosen by ``reranking.method``.

No cross-encoder model ships with this project (none is available offline here); give one by name or path under
``reranking.model``. Without one, ``none`` keeps the fused order.
"""

from collections.abc import Sequence
from functools import cached_property
from typing import Protocol

from rag_core.config import RerankingConfig
from rag_core.models.embedder import resolve_device


class Reranker(Protocol):
    def scores(self, query: str, texts: Sequence[str]) -> list[float] | None:
        """A relevance score per text (higher is better), or None to keep the incoming order."""


class NoReranker:
    def scores(self, query: str, texts: Sequence[str]) -> list[float] | None:
        return None


class CrossEncoderReranker:
    """A sentence-transformers ``CrossEncoder`` reading query and passage together."""

    def __init__(self, model: str, device: str = "auto", batch_size: int = 32, max_length: int | None = None) -> None:
        self.model_name, self.device, self.batch_size, self.max_length = model, device, batch_size, max_length

    @cached_property
    def model(self):  # noqa: ANN201 - sentence_transformers.CrossEncoder, imported lazily
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(self.model_name, device=resolve_device(self.device), max_length=self.max_length)
        except OSError as error:
            raise OSError(
                f"Cannot load cross-encoder {self.model_name!r} ({error}); give a local path under "
                "reranking.model, or set reranking.method: none."
            ) from None

    def scores(self, query: str, texts: Sequence[str]) -> list[float] | None:
        if not texts:
            return []
        predictions = self.model.predict(
            [(query, t) for t in texts], batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True
        )
        return [float(p) for p in predictions.reshape(len(texts), -1)[:, -1]]


def make_reranker(config: RerankingConfig) -> Reranker:
    if config.method == "none":
        return NoReranker()
    if not config.model:
        raise ValueError(
            "reranking.method is cross_encoder but reranking.model is empty; name a CrossEncoder model or a local path."
        )
    return CrossEncoderReranker(config.model, config.device, config.batch_size, config.max_length)
