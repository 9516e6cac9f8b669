"""Token-aware chunking with the embedding model's own tokenizer.

Chunks are measured in the model's tokens, so none is longer than the model reads (nothing is silently
truncated). Breaks fall at paragraph ends when possible, else sentence ends, else word starts. Each document
is tokenized once; chunks are token ranges mapped back to character offsets, so chunk text is an exact slice
of the document.
"""

import bisect
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag_core.types import Chunk, Document, sha256_hex

_PARAGRAPH_END = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?;:][\"')\]]*\s+")
PARAGRAPH, SENTENCE, WORD = 3, 2, 1


@dataclass(frozen=True)
class TokenSpan:
    start: int
    end: int


class TokenChunker:
    """Splits documents into chunks of at most ``chunk_size`` tokens with ``chunk_overlap`` tokens shared."""

    def __init__(self, tokenizer, chunk_size: int, chunk_overlap: int, max_seq_length: int) -> None:  # noqa: ANN001
        special = tokenizer.num_special_tokens_to_add(pair=False)
        limit = max_seq_length - special
        if chunk_size > limit:
            raise ValueError(
                f"chunking.chunk_size {chunk_size} exceeds what the model reads ({max_seq_length} tokens, "
                f"{special} of them special): set chunking.chunk_size to {limit} or less."
            )
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(f"chunking.chunk_overlap must be in [0, {chunk_size}), got {chunk_overlap}.")
        self.tokenizer = tokenizer
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap

    @property
    def signature(self) -> str:
        """Identifies chunking settings: chunks made under another signature cannot be reused."""
        return f"{Path(self.tokenizer.name_or_path).name}|{len(self.tokenizer)}|{self.chunk_size}|{self.chunk_overlap}"

    def chunk_documents(self, documents: Iterable[Document]) -> Iterator[Chunk]:
        for document in documents:
            yield from self.chunk(document)

    def chunk(self, document: Document) -> list[Chunk]:
        text = f"{document.title}\n\n{document.text}" if document.title and document.title not in document.text[:200] else document.text
        encoding = self.tokenizer(
            text, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        offsets: list[tuple[int, int]] = encoding["offset_mapping"]
        if not offsets:
            return []
        doc_hash = document.content_hash
        chunks = []
        for position, span in enumerate(self._spans(text, offsets)):
            piece = text[offsets[span.start][0] : offsets[span.end - 1][1]]
            chunks.append(
                Chunk(
                    chunk_id=Chunk.make_id(document.doc_id, position, piece),
                    doc_id=document.doc_id,
                    position=position,
                    text=piece,
                    token_count=span.end - span.start,
                    text_hash=sha256_hex(piece)[:32],
                    doc_hash=doc_hash,
                    title=document.title,
                    source=document.source,
                )
            )
        return chunks

    def _spans(self, text: str, offsets: list[tuple[int, int]]) -> Iterator[TokenSpan]:
        """Greedy packing: each chunk ends at the strongest break within reach, the next starts ``overlap`` back."""
        strength = _break_strengths(text, offsets)
        n, start = len(offsets), 0
        while start < n:
            limit = start + self.chunk_size
            if limit >= n:
                yield TokenSpan(start, n)
                return
            end = _best_break(strength, lo=start + max(1, self.chunk_size // 2), hi=limit)
            yield TokenSpan(start, end)
            start = _next_start(strength, end, self.chunk_overlap, previous_start=start)


def _break_strengths(text: str, offsets: list[tuple[int, int]]) -> list[int]:
    """strength[i] = how good it is to start a chunk at token i (0: inside a word)."""
    starts = [begin for begin, _ in offsets]
    strength = [0] * (len(offsets) + 1)
    for i in range(1, len(offsets)):
        if offsets[i][0] > offsets[i - 1][1] or not text[offsets[i][0]].isalnum():
            strength[i] = WORD
    for pattern, level in ((_SENTENCE_END, SENTENCE), (_PARAGRAPH_END, PARAGRAPH)):
        for match in pattern.finditer(text):
            i = bisect.bisect_left(starts, match.end())
            if 0 < i < len(offsets):
                strength[i] = max(strength[i], level)
    strength[len(offsets)] = PARAGRAPH
    return strength


def _best_break(strength: list[int], lo: int, hi: int) -> int:
    """The last strongest break in [lo, hi]; a hard cut at ``hi`` when the range has no break at all."""
    best, best_strength = hi, 0
    for i in range(hi, lo - 1, -1):
        if strength[i] > best_strength:
            best, best_strength = i, strength[i]
            if best_strength == PARAGRAPH:
                break
    return best


def _next_start(strength: list[int], end: int, overlap: int, previous_start: int) -> int:
    """Start ``overlap`` tokens before ``end``, moved forward to the next word start so no word is cut."""
    if overlap == 0:
        return end
    start = max(end - overlap, previous_start + 1)
    while start < end and strength[start] == 0:
        start += 1
    return start
