"""Large documents are chunked window by window, so memory follows the batch size and not the document.

Streaming must not change what chunking gives: the chunks of a document that spans many windows are compared
with those of the whole-document algorithm the chunker used before (kept here, frozen, as the reference).
"""

import bisect
import logging
import random
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rag_core.ingest import stages
from rag_core.ingest.chunking import WINDOW_CHARS, TokenChunker
from rag_core.ingest.parquet_store import ParquetTable
from rag_core.ingest.stages import chunk_batches, chunk_stream
from rag_core.retrieval.client_index import _overlap_start, documents_from_chunks
from rag_core.tables import documents_to_batch
from rag_core.types import Chunk, Document, sha256_hex

CHUNK_SIZE, OVERLAP = 64, 12
WORDS = (
    "the model reads tokens chunk window paragraph sentence retrieval index vector Milvus query answer "
    "document memory batch stream large file théâtre naïve café 東京 data-driven well-known e.g. U.S.A. "
    "3.14 1,024 (parenthesis) \"quoted\" it's O'Brien x86_64 https://example.org/a?b=c"
).split()


def varied_text(chars: int, seed: int = 7) -> str:
    """English-like text with paragraphs, sentences of every kind of ending, lists, and odd tokens."""
    rng = random.Random(seed)
    parts: list[str] = []
    size = 0
    while size < chars:
        sentence = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 30)))
        sentence = sentence[0].upper() + sentence[1:] + rng.choice([".", ".", "!", "?", ";", ":", ".)", '."'])
        end = rng.choices([" ", "\n", "\n\n", "  \n\n", "\n- ", "\t"], weights=[60, 8, 10, 2, 3, 1])[0]
        parts.append(sentence + end)
        size += len(sentence) + len(end)
    return "".join(parts)


def reference_chunks(tokenizer, document: Document, chunk_size: int, overlap: int) -> list[tuple]:  # noqa: ANN001
    """The whole-document algorithm as it was before windows, one tokenizer call over all of the text: each chunk's
    (position, text, token_count, text_hash)."""
    text = (
        f"{document.title}\n\n{document.text}"
        if document.title and document.title not in document.text[:200]
        else document.text
    )
    offsets = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False)[
        "offset_mapping"
    ]
    if not offsets:
        return []
    starts = [begin for begin, _ in offsets]
    strength = [0] * (len(offsets) + 1)
    for i in range(1, len(offsets)):
        if offsets[i][0] > offsets[i - 1][1] or not text[offsets[i][0]].isalnum():
            strength[i] = 1
    for pattern, level in ((re.compile(r"[.!?;:][\"')\]]*\s+"), 2), (re.compile(r"\n\s*\n"), 3)):
        for match in pattern.finditer(text):
            i = bisect.bisect_left(starts, match.end())
            if 0 < i < len(offsets):
                strength[i] = max(strength[i], level)
    spans, n, start = [], len(offsets), 0
    while start < n:
        limit = start + chunk_size
        if limit >= n:
            spans.append((start, n))
            break
        end, best = limit, 0
        for i in range(limit, start + max(1, chunk_size // 2) - 1, -1):
            if strength[i] > best:
                end, best = i, strength[i]
                if best == 3:
                    break
        spans.append((start, end))
        if overlap == 0:
            start = end
        else:
            start = max(end - overlap, start + 1)
            while start < end and strength[start] == 0:
                start += 1
    pieces = [(text[offsets[first][0] : offsets[last - 1][1]], last - first) for first, last in spans]
    return [(position, piece, count, sha256_hex(piece)[:32]) for position, (piece, count) in enumerate(pieces)]


def described(chunks: list[Chunk]) -> list[tuple]:
    return [(c.position, c.text, c.token_count, c.text_hash) for c in chunks]


def in_one_window(embedder, text: str) -> TokenChunker:  # noqa: ANN001
    """A chunker reading all of ``text`` in one window, as before windows existed: its ids are the reference."""
    return TokenChunker(embedder.tokenizer, CHUNK_SIZE, OVERLAP, embedder.max_seq_length, window_chars=len(text) + 1)


@pytest.fixture(scope="module")
def large_text() -> str:
    return varied_text(300_000)


@pytest.fixture(scope="module")
def chunker(embedder) -> TokenChunker:
    return TokenChunker(embedder.tokenizer, CHUNK_SIZE, OVERLAP, embedder.max_seq_length)


@pytest.fixture(scope="module")
def large_chunks(chunker: TokenChunker, large_text: str) -> list[Chunk]:
    return chunker.chunk(Document("big.txt", large_text))


def test_a_document_over_many_windows_gives_the_whole_document_chunks(
    embedder, chunker, large_text, large_chunks
) -> None:
    assert len(large_text) > 4 * WINDOW_CHARS
    document = Document("big.txt", large_text)
    assert described(large_chunks) == reference_chunks(embedder.tokenizer, document, CHUNK_SIZE, OVERLAP)
    assert large_chunks == in_one_window(embedder, large_text).chunk(document)
    small_windows = TokenChunker(embedder.tokenizer, CHUNK_SIZE, OVERLAP, embedder.max_seq_length, window_chars=997)
    assert small_windows.chunk(document) == large_chunks


def test_every_chunk_fits_overlaps_the_next_and_all_cover_the_text(embedder, large_text, large_chunks) -> None:
    encoded = embedder.tokenizer([c.text for c in large_chunks], add_special_tokens=False)["input_ids"]
    counts = [len(ids) for ids in encoded]
    assert max(counts) <= CHUNK_SIZE
    assert all(c.token_count <= CHUNK_SIZE for c in large_chunks)
    spans, cursor = [], 0
    for chunk in large_chunks:
        begin = large_text.index(chunk.text, cursor)  # exact slices, in document order
        spans.append((begin, begin + len(chunk.text)))
        cursor = begin + 1
    for (_, before_end), (after_begin, _) in zip(spans, spans[1:]):
        assert after_begin < before_end, "consecutive chunks overlap"
    rebuilt = large_chunks[0].text + "".join(
        large_text[before_end:end] for (_, before_end), (_, end) in zip(spans, spans[1:])
    )
    assert rebuilt == large_text.strip()


def test_ids_and_texts_are_stable_from_run_to_run(embedder, large_text, large_chunks) -> None:
    again = TokenChunker(embedder.tokenizer, CHUNK_SIZE, OVERLAP, embedder.max_seq_length).chunk(
        Document("big.txt", large_text)
    )
    assert [(c.chunk_id, c.text) for c in again] == [(c.chunk_id, c.text) for c in large_chunks]
    assert len({c.chunk_id for c in large_chunks}) == len(large_chunks)


@pytest.mark.parametrize("title", ["", "A title not in the text", "The"])
def test_a_document_within_one_window_is_chunked_as_before(embedder, chunker, title: str) -> None:
    document = Document("short.md", varied_text(20_000, seed=3), title=title)
    chunks = chunker.chunk(document)
    assert described(chunks) == reference_chunks(embedder.tokenizer, document, CHUNK_SIZE, OVERLAP)
    assert all(c.title == title and c.doc_hash == document.content_hash for c in chunks)
    many = TokenChunker(embedder.tokenizer, CHUNK_SIZE, OVERLAP, embedder.max_seq_length, window_chars=300)
    assert many.chunk(document) == chunks


def test_text_without_whitespace_is_cut_hard_but_chunks_still_fit(embedder) -> None:
    text = "prefix words here. " + "abcdefghij" * 3000 + " and words after it."
    chunker = TokenChunker(embedder.tokenizer, CHUNK_SIZE, OVERLAP, embedder.max_seq_length, window_chars=1000)
    chunks = chunker.chunk(Document("blob", text))
    assert chunks and all(c.text in text and c.token_count <= CHUNK_SIZE for c in chunks)
    assert chunks[0].text.startswith("prefix") and chunks[-1].text.endswith("after it.")


def test_chunks_stream_before_the_whole_document_is_read(chunker, large_text) -> None:
    heard: list[tuple[int, int]] = []
    chunks = chunker.iter_chunks(
        Document("big.txt", large_text), progress=lambda done, total: heard.append((done, total))
    )
    next(chunks)
    assert len(heard) == 1 and heard[0][0] <= WINDOW_CHARS and heard[0][1] == len(large_text)
    for _ in chunks:
        pass
    assert heard[-1] == (len(large_text), len(large_text)) and len(heard) >= 5


def test_chunk_batches_split_one_huge_document_into_bounded_batches(chunker, large_text, large_chunks) -> None:
    counts: dict[str, int] = {}
    batches = list(chunk_batches([Document("big.txt", large_text)], chunker, 100, counts=counts))
    assert len(batches) > 5 and all(b.num_rows <= 100 for b in batches)
    assert all(b.num_rows == 100 for b in batches[:-1])
    table = pa.Table.from_batches(batches)
    assert table.column("chunk_id").to_pylist() == [c.chunk_id for c in large_chunks]
    assert counts == {"documents": 1, "chunks": len(large_chunks), "tokens": sum(c.token_count for c in large_chunks)}


def test_a_large_documents_chunks_go_on_in_small_batches_so_its_progress_moves(
    chunker, large_text, large_chunks, monkeypatch
) -> None:
    """Its progress can only say what the last batch back has done: a batch of 512 chunks took 8 s to embed and
    write on 2 cores, and 40 s or more on a shared machine, so a large document's batches are smaller."""
    monkeypatch.setattr(stages, "LARGE_DOCUMENT_CHARS", 100_000)
    documents = [Document("before.txt", varied_text(3_000)), Document("big.txt", large_text)]
    documents.append(Document("after.txt", varied_text(60_000, seed=2)))
    batches = list(chunk_batches(documents, chunker, 512))
    holding_big = [b for b in batches if "big.txt" in b.column("doc_id").to_pylist()]
    assert len(holding_big) >= len(large_chunks) // stages.LARGE_DOCUMENT_BATCH
    assert all(b.num_rows == stages.LARGE_DOCUMENT_BATCH for b in holding_big[:-1])
    assert batches[-1].num_rows > stages.LARGE_DOCUMENT_BATCH, "the next, small document: full batches again"
    assert [i for b in batches for i in b.column("chunk_id").to_pylist()] == [
        c.chunk_id for d in documents for c in chunker.chunk(d)
    ]


def test_chunk_batches_stream_across_documents_in_order(chunker, large_text) -> None:
    documents = [Document(f"d{i}", varied_text(3_000, seed=i)) for i in range(5)]
    documents.insert(2, Document("big.txt", large_text[:100_000]))
    expected = [c.chunk_id for d in documents for c in chunker.chunk(d)]
    batches = list(chunk_batches(iter(documents), chunker, 64))
    assert [b.num_rows for b in batches[:-1]] == [64] * (len(batches) - 1) and 0 < batches[-1].num_rows <= 64
    assert [i for b in batches for i in b.column("chunk_id").to_pylist()] == expected
    assert list(chunk_batches([], chunker, 64)) == []


def test_a_large_document_reports_progress_from_its_first_window(chunker, large_text, monkeypatch, caplog) -> None:
    monkeypatch.setattr(stages, "LARGE_DOCUMENT_CHARS", 100_000)
    with caplog.at_level(logging.INFO, logger=stages.__name__):
        batches = chunk_batches([Document("big.txt", large_text)], chunker, 100)
        next(batches)  # the first batch: one window read, out of five
        assert any("big.txt" in r.getMessage() and "characters read" in r.getMessage() for r in caplog.records)
        list(batches)
    assert any(r.getMessage().startswith("Chunked big.txt") for r in caplog.records)


def test_chunk_stream_batches_are_bounded_and_reused_on_a_rerun(chunker, large_text, tmp_path) -> None:
    documents = [Document("big.txt", large_text), Document("small.txt", "A short one. " * 40)]
    pq.write_table(pa.Table.from_batches([documents_to_batch(documents)]), tmp_path / "documents.parquet")
    table = ParquetTable(tmp_path / "documents.parquet")
    first = chunk_stream(table, chunker, None, batch_size=128)
    batches = list(first.batches)
    assert all(b.num_rows <= 128 for b in batches)
    assert first.summary["rechunked_documents"] == 2 and first.summary["chunks"] == sum(b.num_rows for b in batches)
    pq.write_table(pa.Table.from_batches(batches, schema=first.schema), tmp_path / "chunks.parquet")
    second = chunk_stream(table, chunker, ParquetTable(tmp_path / "chunks.parquet"), batch_size=128)
    again = list(second.batches)
    assert second.summary["rechunked_documents"] == 0 and all(b.num_rows <= 128 for b in again)
    ids = [pa.Table.from_batches(run).column("chunk_id").to_pylist() for run in (batches, again)]
    assert sorted(ids[0]) == sorted(ids[1]) and len(set(ids[0])) == len(ids[0])


def test_a_large_documents_text_is_rejoined_as_before(large_chunks) -> None:
    """The client-side index rejoins each document from its chunks. Rebuilding the whole text for each chunk took a
    30 MB document about a minute of a 13-minute ingest; the tail-only join must give the very same text."""

    def whole_text_each_time(pieces: list[str]) -> str:
        text = pieces[0]
        for piece in pieces[1:]:
            start = _overlap_start(text, piece)
            text = text[:start] + piece if start is not None else f"{text} {piece}"
        return text

    unrelated = Chunk("x", "big.txt", len(large_chunks), "An unrelated closing line, overlapping nothing.")
    chunks = [*large_chunks, unrelated]
    rejoined = documents_from_chunks(reversed(chunks))[2]
    assert rejoined == [whole_text_each_time([c.text for c in chunks])]
    assert rejoined[0].endswith(" " + unrelated.text)
