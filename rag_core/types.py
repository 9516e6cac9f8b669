"""The units that flow through ingestion: documents, the reasons inputs are skipped, and chunks."""

import hashlib
from dataclasses import dataclass, field
from typing import Any


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One source document. ``doc_id`` is stable across runs (a path relative to the corpus root, or a given id)."""

    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in a chunk changes, so unchanged documents can be reused."""
        return sha256_hex(f"{self.title}\x1f{self.text}")


@dataclass(frozen=True)
class SkippedInput:
    """An input that was not ingested, with where it is and why, so a user can fix it."""

    source: str
    reason: str
    line: int | None = None

    def __str__(self) -> str:
        where = f"{self.source}:{self.line}" if self.line is not None else self.source
        return f"{where}: {self.reason}"


@dataclass(frozen=True)
class Chunk:
    """A piece of a document small enough for the embedding model to read whole."""

    chunk_id: str
    doc_id: str
    position: int
    text: str
    token_count: int
    text_hash: str
    doc_hash: str
    title: str = ""
    source: str = ""

    @staticmethod
    def make_id(doc_id: str, position: int, text: str) -> str:
        """Chunk identity = document, position and text: an edit changes only the ids of the chunks it touches."""
        return hashlib.sha256(f"{doc_id}\x1f{position}\x1f{text}".encode("utf-8")).hexdigest()[:32]
