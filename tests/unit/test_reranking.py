"""The cross-encoder path, wired end to end with a tiny cross-encoder built here.

No cross-encoder model is available offline, so this one is random: it proves the wiring (scores are computed
for every candidate, results are reordered by them and cut to rerank_top_k), not ranking quality.
"""

import pytest

from rag_core.config import RerankingConfig
from rag_core.models.embedder import resolve_model_path
from rag_core.models.rerank import CrossEncoderReranker, NoReranker, make_reranker
from tests.support.engines import engine_for


@pytest.fixture(scope="module")
def tiny_cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-cross-encoder")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("bundled:all-MiniLM-L6-v2"))
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=1,
        )
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_factory_and_its_errors(tiny_cross_encoder: str) -> None:
    assert isinstance(make_reranker(RerankingConfig()), NoReranker)
    assert isinstance(
        make_reranker(RerankingConfig(method="cross_encoder", model=tiny_cross_encoder)), CrossEncoderReranker
    )
    with pytest.raises(ValueError, match="reranking.model is empty"):
        make_reranker(RerankingConfig(method="cross_encoder"))
    with pytest.raises(OSError, match="Cannot load cross-encoder"):
        CrossEncoderReranker("/nonexistent/cross-encoder").scores("q", ["a"])


@pytest.mark.parametrize("milvus_uri", ["lite"], indirect=True)
def test_engine_reorders_candidates_by_cross_encoder_scores(config, embedder, tiny_cross_encoder: str) -> None:
    reranker = CrossEncoderReranker(tiny_cross_encoder, device="cpu")
    engine = engine_for(config, embedder=embedder, reranker=reranker)
    result = engine.search("how does compaction purge deleted rows", top_k=6, rerank_top_k=3)
    scores = [r.rerank_score for r in result.results]
    assert len(scores) == 3 and all(s is not None for s in scores)
    assert scores == sorted(scores, reverse=True)
    expected = reranker.scores("how does compaction purge deleted rows", [r.text for r in result.results])
    assert expected == pytest.approx(scores, abs=1e-5)
    assert result.timings_ms["rerank"] > 0
