"""Faithfulness of an answer to its contexts: supported sentences score high, a changed number or rare term and an
unrelated sentence do not; the NLI path is wired with a tiny random cross-encoder (proves wiring, not quality)."""

import asyncio
import json
from pathlib import Path

import pytest

from rag_core import AdvancedRAGPipeline
from rag_core.cli.main import main
from rag_core.models.embedder import resolve_model_path
from rag_core.models.nli import NliModel
from rag_core.retrieval.faithfulness import AnswerScorer, split_sentences
from tests.support.configs import make_config
from tests.support.corpus import RETRIEVAL_DOCS, ingest, write_corpus
from tests.unit.test_cli import write_beir

CONTEXTS = [
    "Compaction merges small segments and purges deleted rows. It runs weekly at 03:00 on Sundays.",
    "HNSW builds a layered proximity graph. The ef parameter trades accuracy for speed.",
]
RARE = {"compact", "hnsw", "ef", "quasar"}  # the stemmed terms this test calls rare


def share(term: str) -> float:
    return 0.001 if term in RARE else 0.2


@pytest.fixture(scope="module")
def scorer(embedder) -> AnswerScorer:
    return AnswerScorer(embedder, document_share=share)


def test_sentences_split_on_their_ends() -> None:
    assert split_sentences("One. Two?  Three!\nFour 4.5 units") == ["One.", "Two?", "Three!", "Four 4.5 units"]
    assert split_sentences("  ") == []


def test_sentences_from_the_contexts_are_supported(scorer: AnswerScorer) -> None:
    result = scorer.score(
        "Compaction merges small segments and purges deleted rows. The ef parameter trades accuracy for speed.",
        CONTEXTS,
    )
    assert result.method == "embedding" and result.score > 0.95 and not result.unsupported
    assert [s.context for s in result.sentences] == [0, 1]


def test_a_changed_number_or_rare_term_is_unsupported(scorer: AnswerScorer) -> None:
    number = scorer.score("It runs weekly at 04:00 on Sundays.", CONTEXTS)
    assert number.score == 0.0 and number.sentences[0].missing == ("04",)
    rare = scorer.score("Compaction merges small segments and purges deleted quasars.", CONTEXTS)
    assert rare.score == 0.0 and rare.sentences[0].missing == ("quasar",)
    common = scorer.score("Compaction merges small segments and purges deleted tables.", CONTEXTS)
    assert 0.5 < common.score < 0.95 and not common.sentences[0].missing, "a common term lowers, never vetoes"


def test_unrelated_sentences_score_low_and_are_listed(scorer: AnswerScorer) -> None:
    result = scorer.score("Compaction purges deleted rows. Bees pollinate sunflowers in late summer.", CONTEXTS)
    assert [s.supported for s in result.sentences] == [True, False]
    assert [s.sentence for s in result.unsupported] == ["Bees pollinate sunflowers in late summer."]
    assert 0 <= result.score <= 1


def test_bad_input(scorer: AnswerScorer) -> None:
    with pytest.raises(ValueError, match="answer to score is empty"):
        scorer.score("   ", CONTEXTS)
    nothing = scorer.score("Compaction purges deleted rows.", [])
    assert nothing.score == 0.0 and nothing.sentences[0].context is None


@pytest.fixture(scope="module")
def tiny_nli(tmp_path_factory: pytest.TempPathFactory) -> str:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    folder = tmp_path_factory.mktemp("tiny-nli")
    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("bundled:all-MiniLM-L6-v2"))
    labels = {0: "contradiction", 1: "entailment", 2: "neutral"}
    model = BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=3,
            id2label=labels,
            label2id={v: k for k, v in labels.items()},
        )
    )
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_the_nli_path_uses_the_entailment_probability(embedder, tiny_nli: str) -> None:
    nli = NliModel(tiny_nli, device="cpu")
    answer = "Compaction purges deleted rows. The ef parameter trades accuracy for speed."
    result = AnswerScorer(embedder, nli=nli).score(answer, CONTEXTS)
    assert result.method == "nli"
    sentences = split_sentences(answer)
    for sentence, scored in zip(sentences, result.sentences):
        expected = nli.entailment([(c, sentence) for c in CONTEXTS])
        assert scored.support == pytest.approx(max(expected), abs=1e-6) and 0 <= scored.support <= 1
        assert scored.context == expected.index(max(expected))
    logits = nli.model.predict([(CONTEXTS[0], sentences[0])], apply_softmax=False, convert_to_numpy=True)[0]
    assert nli.entailment([(CONTEXTS[0], sentences[0])])[0] == pytest.approx(
        float(pytest.importorskip("scipy.special").softmax(logits)[1]), abs=1e-6
    ), "softmax, column 'entailment'"


def test_an_nli_model_without_an_entailment_label_is_refused(tmp_path: Path) -> None:
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    tokenizer = AutoTokenizer.from_pretrained(resolve_model_path("bundled:all-MiniLM-L6-v2"))
    BertForSequenceClassification(
        BertConfig(
            vocab_size=tokenizer.vocab_size,
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=64,
            num_labels=1,
        )
    ).save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="none of them 'entailment'"):
        NliModel(str(tmp_path), device="cpu").entailment([("a", "b")])
    with pytest.raises(OSError, match="quality.nli_model"):
        NliModel(str(tmp_path / "missing"), device="cpu").entailment([("a", "b")])


def test_pipeline_scores_an_answer_with_its_results(tmp_path: Path, embedder, tiny_nli: str) -> None:
    config = make_config(tmp_path, str(tmp_path / "milvus.db"))
    ingest(config, RETRIEVAL_DOCS, embedder)
    pipeline = AdvancedRAGPipeline(config)

    async def guide() -> tuple:
        results, _ = await pipeline.retrieve(query="how does compaction purge deleted rows")
        return (
            await pipeline.score_answer("Compaction merges small segments and purges deleted rows.", results),
            await pipeline.score_answer("Compaction merges small segments and purges deleted zeppelins.", results),
        )

    supported, changed = asyncio.run(guide())
    assert supported.score > 0.9 and not supported.unsupported
    assert changed.score == 0.0 and changed.sentences[0].missing == ("zeppelin",), (
        "a term the corpus never saw is rare (corpus document frequencies from the client-side index)"
    )

    with_nli = AdvancedRAGPipeline(
        config.model_copy(update={"quality": config.quality.model_copy(update={"nli_model": tiny_nli})})
    )
    results, _ = asyncio.run(with_nli.retrieve(query="how does compaction purge deleted rows"))
    assert asyncio.run(with_nli.score_answer("Compaction purges deleted rows.", results)).method == "nli"


def test_rag_query_prints_signals_and_scores_an_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("MILVUS_URI", "MILVUS_HOST", "MILVUS_PORT", "RAG_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    write_corpus(tmp_path / "docs")
    assert main(["ingest", "docs"]) == 0
    capsys.readouterr()
    assert (
        main(
            [
                "query",
                "How are deleted rows purged in Milvus?",
                "--answer",
                "Segments are compacted to purge deleted rows. Bees pollinate sunflowers.",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "hallucination_risk " in out and "faithfulness_score " in out and "coverage " in out
    assert "answer faithfulness" in out and "unsupported: Bees pollinate sunflowers." in out
    assert (
        main(
            [
                "query",
                "How are deleted rows purged in Milvus?",
                "--json",
                "--answer",
                "Segments are compacted to purge deleted rows.",
            ]
        )
        == 0
    )
    payload = json.loads(capsys.readouterr().out)
    assert 0 <= payload["signals"]["hallucination_risk"] <= 1 and "leg_agreement" in payload["signals"]
    assert payload["answer"]["score"] > 0.9 and payload["answer"]["sentences"][0]["supported"]


def test_rag_eval_writes_one_signals_line_per_query(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, embedder, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("MILVUS_URI", "MILVUS_HOST", "MILVUS_PORT", "RAG_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    dataset = write_beir(tmp_path / "tiny")
    assert main(["eval", "--dataset", str(dataset), "--signals-out", "signals.jsonl"]) == 0
    out = capsys.readouterr().out
    assert "hallucination_risk AUROC: not defined" in out, "every tiny query succeeds: no failures to rank"
    lines = [json.loads(line) for line in (tmp_path / "signals.jsonl").read_text().splitlines()]
    assert [line["qid"] for line in lines] == ["q1", "q2", "q3"]
    assert all({"hallucination_risk", "faithfulness_score", "coverage", "leg_agreement"} <= set(line) for line in lines)
