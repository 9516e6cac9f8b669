import numpy as np
import pytest

from rag_core.config import EmbeddingConfig
from rag_core.embedder import Embedder, resolve_model_path


def test_bundled_model_embeds_offline_to_unit_vectors(embedder: Embedder) -> None:
    vectors = embedder.encode_documents(["Milvus is a vector database.", "Dagster orchestrates assets."])
    assert vectors.shape == (2, 384) and vectors.dtype == np.float32
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.max_seq_length == 256


def test_related_texts_are_closer_than_unrelated(embedder: Embedder) -> None:
    query = embedder.encode_queries(["how do I check if Milvus is healthy"])[0]
    docs = embedder.encode_documents(["Check Milvus health with curl on port 9091.", "Bananas are rich in potassium."])
    assert query @ docs[0] > query @ docs[1] + 0.2


def test_empty_input_keeps_the_dimension(embedder: Embedder) -> None:
    assert embedder.encode_documents([]).shape == (0, 384)


def test_any_model_by_path_and_unknown_names_fail_clearly(embedder: Embedder, tmp_path) -> None:
    by_path = Embedder(EmbeddingConfig(model=resolve_model_path("bundled:all-MiniLM-L6-v2"), device="cpu"))
    text = ["same model, given by path"]
    assert np.allclose(by_path.encode_documents(text), embedder.encode_documents(text), atol=1e-5)
    with pytest.raises(ValueError, match="only bundled model"):
        resolve_model_path("bundled:other")
    with pytest.raises(OSError, match="Cannot load embedding model"):
        Embedder(EmbeddingConfig(model=str(tmp_path / "no-such-model"))).dimension
