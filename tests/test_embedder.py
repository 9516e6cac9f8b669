import numpy as np
import pytest
import torch

from rag_core.config import EmbeddingConfig
from rag_core.ingest.embedder import Embedder, resolve_model_path, resolve_query_precision


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


def test_query_precision_only_changes_the_query_encoder(embedder: Embedder) -> None:
    queries = ["which protein binds the promoter", "effects of vitamin D on bone density"]
    exact = Embedder(EmbeddingConfig(model=embedder.config.model, query_precision="float32"))
    fast = Embedder(EmbeddingConfig(model=embedder.config.model, query_precision="bfloat16"))
    assert exact.query_model is exact.model
    assert next(fast.query_model.parameters()).dtype == torch.bfloat16
    assert next(fast.model.parameters()).dtype == torch.float32
    cosines = (exact.encode_queries(queries) * fast.encode_queries(queries)).sum(axis=1)
    assert cosines.min() > 0.999  # same ranking in practice; documents stay float32 either way
    assert fast.encode_queries(queries).dtype == np.float32
    assert np.array_equal(fast.encode_documents(queries), exact.encode_documents(queries))


def test_auto_precision_keeps_float32_off_the_cpu() -> None:
    assert resolve_query_precision("auto", "cuda") == "float32"
    assert resolve_query_precision("bfloat16", "cpu") == "bfloat16"
