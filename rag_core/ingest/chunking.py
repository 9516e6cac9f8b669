"""Token-aware chunking with the embedding model's own tokenizer.

Chunks are measured in the model's tokens, so none is longer than the model reads (nothing is silently
truncated). Breaks fall at paragraph ends when possible, else sentence ends, else word starts. Chunks are token
ranges mapped back to character offsets, so chunk text is an exact slice of the document.

A document is tokenized window by window (``window_chars`` characters at most, cut where whitespace meets the
start of a word), so memory follows the window and the chunk size, not the document: a 50 MB file is read in
64k-character steps and its chunks stream out as they are made. With a tokenizer that never lets a token cross
whitespace (BERT's WordPiece, as in the bundled model), tokens, break strengths and therefore chunks are exactly
those of tokenizing the whole document at once. Only a run of ``window_chars / 2`` characters without any space,
tab or newline forces a cut inside a word; chunks there are still exact slices of at most ``chunk_size`` tokens.
"""

import bisect
import re
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from rag_core.config import ChunkingConfig
from rag_core.types import Chunk, Document, sha256_hex

_PARAGRAPH_END = re.compile(r"\n\s*\n")
_SENTENCE_END = re.compile(r"[.!?;:][\"')\]]*\s+")
PARAGRAPH, SENTENCE, WORD = 3, 2, 1
WINDOW_CHARS = 1 << 16
_CUT_AFTER = frozenset(" \t\r\n")  # whitespace to every tokenizer; str.isspace() also counts separators BERT drops
_TRIM_TOKENS = 8192  # tokens already chunked are dropped from the buffer in steps of at least this many

Progress = Callable[[int, int], None]  # (characters tokenized so far, characters in all)


@dataclass(frozen=True)
class TokenSpan:
    start: int
    end: int


class TokenChunker:
    """Splits documents into chunks of at most ``chunk_size`` tokens with ``chunk_overlap`` tokens shared."""

    def __init__(
        self,
        tokenizer,
        chunk_size: int,
        chunk_overlap: int,
        max_seq_length: int,  # noqa: ANN001
        *,
        window_chars: int = WINDOW_CHARS,
    ) -> None:
        special = tokenizer.num_special_tokens_to_add(pair=False)
        limit = max_seq_length - special
        if chunk_size > limit:
            raise ValueError(
                f"chunking.chunk_size {chunk_size} exceeds what the model reads ({max_seq_length} tokens, "
                f"{special} of them special): set chunking.chunk_size to {limit} or less."
            )
        if not 0 <= chunk_overlap < chunk_size:
            raise ValueError(f"chunking.chunk_overlap must be in [0, {chunk_size}), got {chunk_overlap}.")
        if window_chars < 64:
            raise ValueError(f"window_chars must be at least 64, got {window_chars}.")
        self.tokenizer = tokenizer
        self.chunk_size = chunk_size
        self.chunk_overlap = chunk_overlap
        self.window_chars = window_chars

    @classmethod
    def configured(cls, chunking: ChunkingConfig, embedder) -> "TokenChunker":  # noqa: ANN001 - an Embedder
        """The chunker the config asks for, bounded by what the embedding model reads."""
        return cls(embedder.tokenizer, chunking.chunk_size, chunking.chunk_overlap, embedder.max_seq_length)

    @property
    def signature(self) -> str:
        """Identifies chunking settings: chunks made under another signature cannot be reused."""
        return f"{Path(self.tokenizer.name_or_path).name}|{len(self.tokenizer)}|{self.chunk_size}|{self.chunk_overlap}"

    def chunk_documents(self, documents: Iterable[Document]) -> Iterator[Chunk]:
        for document in documents:
            yield from self.iter_chunks(document)

    def chunk(self, document: Document) -> list[Chunk]:
        return list(self.iter_chunks(document))

    def iter_chunks(self, document: Document, *, progress: Progress | None = None) -> Iterator[Chunk]:
        """The document's chunks in order, made as they are pulled; ``progress`` hears after every window."""
        text = _Text.of(document)
        tokens = _TokenStream(self.tokenizer, text, self.window_chars, progress)
        doc_hash = document.content_hash
        for position, span in enumerate(self._spans(tokens)):
            piece = text.slice(tokens.offset(span.start)[0], tokens.offset(span.end - 1)[1])
            yield Chunk(
                chunk_id=Chunk.make_id(document.source, document.doc_id, position, piece),
                doc_id=document.doc_id,
                position=position,
                text=piece,
                token_count=span.end - span.start,
                text_hash=sha256_hex(piece)[:32],
                doc_hash=doc_hash,
                title=document.title,
                source=document.source,
                groups=document.groups,
                tenant=document.tenant,
            )

    def _spans(self, tokens: "_TokenStream") -> Iterator[TokenSpan]:
        """Greedy packing: each chunk ends at the strongest break within reach, the next starts ``overlap`` back.

        Token indices are the document's; ``tokens`` holds only those from its ``base`` on, read ahead just far
        enough to see ``chunk_size`` tokens past the current start (or the document's end).
        """
        start = 0
        while True:
            limit = start + self.chunk_size
            tokens.fill_past(limit)
            n = tokens.known
            if start >= n:  # only once every window is read: fill_past stops early only at the end
                return
            if limit >= n:
                yield TokenSpan(start, n)
                return
            base = tokens.base
            end = base + _best_break(tokens.strength, lo=start - base + max(1, self.chunk_size // 2), hi=limit - base)
            yield TokenSpan(start, end)
            start = base + _next_start(tokens.strength, end - base, self.chunk_overlap, previous_start=start - base)
            tokens.drop_before(start)


class _Text:
    """What chunks are cut from: an optional title prefix, then the document's text, never joined into one copy."""

    __slots__ = ("prefix", "body", "length")

    def __init__(self, prefix: str, body: str) -> None:
        self.prefix, self.body, self.length = prefix, body, len(prefix) + len(body)

    @classmethod
    def of(cls, document: Document) -> "_Text":
        titled = document.title and document.title not in document.text[:200]
        return cls(f"{document.title}\n\n" if titled else "", document.text)

    def slice(self, begin: int, end: int) -> str:
        cut = len(self.prefix)
        if end <= cut:
            return self.prefix[begin:end]
        if begin >= cut:
            return self.body[begin - cut : end - cut]
        return self.prefix[begin:] + self.body[: end - cut]


class _TokenStream:
    """The document's tokens read window by window: absolute character offsets and break strengths from ``base``.

    strength[i] = how good it is to start a chunk at token i (0: inside a word). A token's strength depends only
    on its own window (and on the previous token's end, kept across windows), except for a sentence or paragraph
    end that closes a window: that one belongs to the first token of the next window, so it is carried over.
    """

    def __init__(self, tokenizer, text: _Text, window_chars: int, progress: Progress | None) -> None:  # noqa: ANN001
        self.tokenizer, self.text, self.window_chars, self.progress = tokenizer, text, window_chars, progress
        self.base = 0  # document index of offsets[0]
        self.offsets: list[tuple[int, int]] = []
        self.strength: list[int] = []
        self.read = 0  # characters tokenized so far
        self.carried = 0  # break level owed to the next token
        self.last_end: int | None = None  # end of the last token read

    @property
    def known(self) -> int:
        return self.base + len(self.offsets)

    def offset(self, index: int) -> tuple[int, int]:
        return self.offsets[index - self.base]

    def fill_past(self, index: int) -> None:
        """Read windows until token ``index`` is known or the text is exhausted."""
        while self.known <= index and self.read < self.text.length:
            self._read_window()

    def drop_before(self, index: int) -> None:
        """Forget tokens before ``index`` (no later chunk reaches back to them), in large steps."""
        drop = index - self.base
        if drop >= _TRIM_TOKENS:
            del self.offsets[:drop], self.strength[:drop]
            self.base = index

    def _read_window(self) -> None:
        begin = self.read
        window = self.text.slice(begin, begin + self.window_chars)
        if begin + len(window) < self.text.length:
            window = window[: _window_cut(window)]
        self.read = begin + len(window)
        encoding = self.tokenizer(
            window, add_special_tokens=False, return_offsets_mapping=True, truncation=False, verbose=False
        )
        local: list[tuple[int, int]] = encoding["offset_mapping"]
        first = self.known  # document index of this window's first token
        strength = [0] * len(local)
        previous_end = None if self.last_end is None else self.last_end - begin
        for j, (token_start, token_end) in enumerate(local):
            if previous_end is not None and (token_start > previous_end or not window[token_start].isalnum()):
                strength[j] = WORD
            previous_end = token_end
        starts = [token_start for token_start, _ in local]
        carried = self.carried
        if local and carried:
            strength[0] = max(strength[0], carried)
            carried = 0
        for pattern, level in ((_SENTENCE_END, SENTENCE), (_PARAGRAPH_END, PARAGRAPH)):
            for match in pattern.finditer(window):
                j = bisect.bisect_left(starts, match.end())
                if j == len(local):
                    carried = max(carried, level)
                else:
                    strength[j] = max(strength[j], level)
        if first == 0 and local:
            strength[0] = 0  # no chunk starts before the document's first token: no break there
        self.carried = carried
        self.offsets.extend((begin + s, begin + e) for s, e in local)
        self.strength.extend(strength)
        if local:
            self.last_end = begin + local[-1][1]
        if self.progress is not None:
            self.progress(self.read, self.text.length)


def _window_cut(window: str) -> int:
    """Where to end a window that is not the document's last: its last word start after whitespace, or after a
    punctuation mark. BERT's pre-tokenizer splits at both, and neither a sentence nor a paragraph end can straddle
    either (they end in whitespace), so the cut changes nothing. A hard cut at its end if there is neither."""
    for cut in range(len(window) - 1, 0, -1):
        after, before = window[cut], window[cut - 1]
        if (before in _CUT_AFTER and not after.isspace()) or (after.isalnum() and _is_punctuation(before)):
            return cut
    return len(window)


def _is_punctuation(char: str) -> bool:
    """BERT's definition: ASCII symbols count as punctuation too."""
    code = ord(char)
    return (
        33 <= code <= 47
        or 58 <= code <= 64
        or 91 <= code <= 96
        or 123 <= code <= 126
        or (code > 127 and unicodedata.category(char).startswith("P"))
    )


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
