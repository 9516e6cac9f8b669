import numpy as np
import pytest
import torch

from rag_core.config import EmbeddingConfig
from rag_core.models.embedder import Embedder, resolve_model_path, resolve_query_precision


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
        _ = Embedder(EmbeddingConfig(model=str(tmp_path / "no-such-model"))).dimension


def test_query_precision_only_changes_the_query_encoder(embedder: Embedder) -> None:
    queries = ["which protein binds the promoter", "effects of vitamin D on bone density"]
    exact = Embedder(EmbeddingConfig(model=embedder.config.model, query_precision="float32"))
    fast = Embedder(EmbeddingConfig(model=embedder.config.model, query_precision="bfloat16"))
    assert exact.query_model is exact.model
    assert next(fast.query_model.parameters()).dtype == torch.bfloat16
    assert next(fast.model.parameters()).dtype == torch.float32
    approximate = fast.encode_queries(queries)
    assert approximate.dtype == np.float32
    # bfloat16 keeps 8 bits of mantissa; emulated on CPUs without native bfloat16 (AVX2 only) it rounds a little
    # differently than AVX512-BF16/AMX (measured cosine 0.9984 there, 0.9999 native). These bounds hold for both.
    norms = np.linalg.norm(approximate, axis=1)
    assert np.all(np.abs(norms - 1.0) <= 0.01), norms
    cosines = (exact.encode_queries(queries) * approximate).sum(axis=1) / norms
    assert cosines.min() >= 0.995, cosines  # same ranking in practice; documents stay float32 either way
    assert np.array_equal(fast.encode_documents(queries), exact.encode_documents(queries))


def test_auto_precision_keeps_float32_off_the_cpu() -> None:
    assert resolve_query_precision("auto", "cuda") == "float32"
    assert resolve_query_precision("bfloat16", "cpu") == "bfloat16"


@pytest.mark.parametrize(
    ("avx512_bf16", "amx", "expected"),
    [
        (False, False, "float32"),  # AVX2 only: bfloat16 would be emulated, slower than float32
        (True, False, "bfloat16"),
        (False, True, "bfloat16"),
    ],
)
def test_auto_precision_uses_bfloat16_only_where_the_cpu_has_it(
    monkeypatch: pytest.MonkeyPatch, avx512_bf16: bool, amx: bool, expected: str
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert resolve_query_precision("auto", "cpu") == expected


def test_auto_precision_keeps_float32_when_torch_cannot_tell(monkeypatch: pytest.MonkeyPatch) -> None:
    """An older or newer torch without the capability probes must not be guessed into bfloat16."""
    monkeypatch.delattr(torch.cpu, "_is_avx512_bf16_supported", raising=False)
    monkeypatch.delattr(torch.cpu, "_is_amx_tile_supported", raising=False)
    assert resolve_query_precision("auto", "cpu") == "float32"


def test_auto_query_encoder_is_float32_on_a_cpu_without_native_bfloat16(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
    auto = Embedder(EmbeddingConfig(model=embedder.config.model, device="cpu", query_precision="auto"))
    assert auto.query_model is auto.model and next(auto.query_model.parameters()).dtype == torch.float32


def test_query_vectors_are_reused_only_inside_reusing_query_vectors(
    embedder: Embedder, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The re-index gate and hybrid_alpha: auto ask the same probes in several modes and weights; a latency
    figure must never be a lookup's, so outside the context every call encodes."""
    queries = ["how does compaction work", "what is an alias", "how does compaction work"]
    fresh = embedder.encode_queries(queries)
    encoded: list[list[str]] = []
    encode = embedder._encode_queries
    monkeypatch.setattr(embedder, "_encode_queries", lambda texts: encoded.append(list(texts)) or encode(texts))
    with embedder.reusing_query_vectors():
        first = embedder.encode_queries(queries)
        again = embedder.encode_queries(queries[:2] + ["a new one"])
    assert encoded == [queries[:2], ["a new one"]], "each distinct query once, and a repeat not at all"
    assert np.allclose(first, fresh, atol=1e-5) and np.allclose(again[:2], fresh[:2], atol=1e-5)
    first[0] += 1.0  # a caller's array is its own
    embedder.encode_queries(queries[:1])
    assert encoded[-1] == queries[:1], "outside, every call encodes"
