import pytest

from rag_core.ingest.chunking import TokenChunker
from rag_core.types import Document
from tests.support.paths import SCIFACT


@pytest.fixture(scope="module")
def chunker(embedder) -> TokenChunker:
    return TokenChunker(embedder.tokenizer, chunk_size=64, chunk_overlap=12, max_seq_length=embedder.max_seq_length)


def model_tokens(embedder, text: str) -> int:
    return len(embedder.tokenizer(text, add_special_tokens=True)["input_ids"])


def test_no_chunk_exceeds_what_the_model_reads(embedder) -> None:
    limit = embedder.max_seq_length - 2
    chunker = TokenChunker(embedder.tokenizer, limit, 32, embedder.max_seq_length)
    text = " ".join(f"word{i} antidisestablishmentarianism." for i in range(600))
    chunks = chunker.chunk(Document("long", text))
    assert len(chunks) > 3
    assert max(model_tokens(embedder, c.text) for c in chunks) <= embedder.max_seq_length


def test_chunk_size_above_the_model_limit_is_refused_with_the_fix(embedder) -> None:
    with pytest.raises(ValueError, match="set chunking.chunk_size to 254 or less"):
        TokenChunker(embedder.tokenizer, 300, 10, embedder.max_seq_length)


def test_breaks_prefer_paragraphs_then_sentences(chunker: TokenChunker) -> None:
    paragraph = "The first sentence is here. " * 3
    text = "\n\n".join([paragraph.strip()] * 6)
    chunks = chunker.chunk(Document("d", text))
    assert len(chunks) > 1
    for chunk in chunks[:-1]:
        assert chunk.text.endswith("."), f"chunk cut mid-sentence: {chunk.text[-30:]!r}"


def test_chunks_are_exact_slices_that_overlap_and_cover_the_document(chunker: TokenChunker) -> None:
    text = " ".join(f"Sentence number {i} talks about topic {i % 7}." for i in range(80))
    chunks = chunker.chunk(Document("d", text))
    for chunk in chunks:
        assert chunk.text in text and chunk.token_count <= 64
    for before, after in zip(chunks, chunks[1:]):
        assert text.index(after.text) < text.index(before.text) + len(before.text), "consecutive chunks overlap"
    assert chunks[0].text.startswith("Sentence number 0") and chunks[-1].text.endswith("topic 2.")


def test_ids_are_stable_and_follow_document_position_and_text(chunker: TokenChunker) -> None:
    document = Document("a.md", "One sentence. " * 100)
    first, second = chunker.chunk(document), chunker.chunk(document)
    assert [c.chunk_id for c in first] == [c.chunk_id for c in second]
    assert len({c.chunk_id for c in first}) == len(first)
    other = chunker.chunk(Document("b.md", document.text))
    assert first[0].chunk_id != other[0].chunk_id
    alone = chunker.chunk(Document("a.md", first[0].text))  # same document, position and text: same id
    assert [c.chunk_id for c in alone] == [first[0].chunk_id]


def test_empty_document_gives_no_chunks(chunker: TokenChunker) -> None:
    assert chunker.chunk(Document("e", "   ")) == []


def test_scifact_abstracts_fit_the_model(embedder) -> None:
    import gzip
    import json

    path = SCIFACT / "corpus.jsonl.gz"
    if not path.exists():
        pytest.skip("SciFact is not in ../shared/data")
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        documents = [Document(str(r["_id"]), r["text"], r["title"]) for r in map(json.loads, lines)][:300]
    chunker = TokenChunker(embedder.tokenizer, 200, 32, embedder.max_seq_length)
    chunks = list(chunker.chunk_documents(documents))
    assert {c.doc_id for c in chunks} == {d.doc_id for d in documents}
    assert max(model_tokens(embedder, c.text) for c in chunks) <= embedder.max_seq_length
