"""The values every layer shares: documents, the reasons inputs are skipped, chunks, and search hits."""

import hashlib
from dataclasses import dataclass, field
from typing import Any

API_SOURCE = "api"  # the source of documents an API caller gives without naming one
# The Milvus fields holding a chunk's access labels (rag_core.security.labels): who may read it, and whose it is.
GROUPS_FIELD = "access_groups"
TENANT_FIELD = "tenant"


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Document:
    """One document. ``doc_id`` is stable across runs: a path relative to its source's root, or a caller's id.

    ``source`` names who owns the document, and a sync deletes only within the source it syncs: a corpus folder
    (its canonical path) or an API caller (``source=``, default ``api``). Loaders put the file it was read from
    there (for messages); ingestion replaces it with the owning source, the file being that root plus ``doc_id``.
    """

    doc_id: str
    text: str
    title: str = ""
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    groups: tuple[str, ...] = ()  # who may read it; () until ingestion gives it its source's or the default
    tenant: str = ""  # whose it is; "" likewise

    @property
    def content_hash(self) -> str:
        """Changes whenever anything that ends up in a chunk (its id and access labels included) changes, so
        unchanged documents can be reused and a re-labelled one reaches its rows."""
        labels = "\x1e".join(self.groups)
        return sha256_hex(f"{self.source}\x1f{self.title}\x1f{self.text}\x1f{labels}\x1f{self.tenant}")


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
    token_count: int = 0
    text_hash: str = ""
    doc_hash: str = ""
    title: str = ""
    source: str = ""
    groups: tuple[str, ...] = ()  # its document's access labels
    tenant: str = ""

    @staticmethod
    def make_id(source: str, doc_id: str, position: int, text: str) -> str:
        """Chunk identity = source, document, position and text: an edit changes only the ids of the chunks it
        touches, and the same file in two sources is two sets of rows, each deleted only with its own source."""
        return hashlib.sha256(f"{source}\x1f{doc_id}\x1f{position}\x1f{text}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Hit:
    """A chunk one retrieval leg found, with that leg's score; text and metadata only where they were fetched."""

    chunk_id: str
    doc_id: str
    score: float
    text: str = ""
    position: int = 0
    source: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
