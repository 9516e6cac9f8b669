"""An NLI cross-encoder (``quality.nli_model``): the probability that a premise entails a hypothesis.

None ships offline; name a sentence-transformers ``CrossEncoder`` NLI model or its local path. The entailment
class is found by name in the model's ``id2label`` (e.g. ``contradiction / entailment / neutral``).
"""

from collections.abc import Sequence
from functools import cached_property

import numpy as np

from rag_core.models.embedder import resolve_device


class NliModel:
    def __init__(self, model: str, device: str = "auto", batch_size: int = 32) -> None:
        self.model_name, self.device, self.batch_size = model, device, batch_size

    @cached_property
    def model(self):  # noqa: ANN201 - sentence_transformers.CrossEncoder, imported lazily
        from sentence_transformers import CrossEncoder

        try:
            return CrossEncoder(self.model_name, device=resolve_device(self.device))
        except OSError as error:
            raise OSError(
                f"Cannot load the NLI model {self.model_name!r} ({error}); give a local path under "
                "quality.nli_model, or unset it to score with embeddings."
            ) from None

    @cached_property
    def entailment_index(self) -> int:
        labels = {int(i): str(name).lower() for i, name in self.model.config.id2label.items()}
        found = [i for i, name in labels.items() if name.startswith("entail")]
        if len(labels) < 2 or len(found) != 1:
            raise ValueError(
                f"quality.nli_model {self.model_name!r} has labels {sorted(labels.values())}, none "
                "of them 'entailment'; give an NLI cross-encoder (contradiction/entailment/neutral)."
            )
        return found[0]

    def entailment(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """P(entailment) per (premise, hypothesis) pair, from the softmax over the model's classes."""
        if not pairs:
            return []
        index = self.entailment_index
        probabilities = self.model.predict(
            list(pairs), batch_size=self.batch_size, show_progress_bar=False, convert_to_numpy=True, apply_softmax=True
        )
        return [float(p) for p in np.asarray(probabilities).reshape(len(pairs), -1)[:, index]]
