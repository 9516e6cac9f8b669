"""What the engine keeps on the client about the collection it serves, rebuilt from Milvus when it goes stale.

- BM25 over chunks, for chunk-level results, and BM25 over whole documents (rebuilt from their chunks), for
  document-level results: a document is what is ranked there, and on SciFact train scoring it whole fused better
  than scoring its best chunk.
- The moments of the collection's vectors, for the ``corpus`` normalisation of the dense leg.
- On Milvus Lite, a copy of the vectors themselves, searched exactly in process (``dense_mirror``).
- The rows' access labels, on versions that have them (``row_labels``).
"""

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag_core.retrieval import dense_mirror, row_labels
from rag_core.retrieval.dense_mirror import DenseMirror
from rag_core.retrieval.lexical import LexicalIndex
from rag_core.retrieval.moments import VectorMoments
from rag_core.retrieval.row_labels import RowLabels
from rag_core.types import Chunk

MIN_OVERLAP_CHARS = 8  # shorter shared ends are more likely chance than overlap
STATE_FILE = "state.json"


@dataclass(frozen=True)
class ClientIndex:
    """Valid for one collection version at one data version: any sync that changes rows makes it stale."""

    chunks: LexicalIndex
    documents: LexicalIndex
    vectors: VectorMoments
    data_version: int
    dense: DenseMirror | None = None
    labels: RowLabels | None = None  # None: a version from before access labels

    @property
    def collection(self) -> str:
        return self.chunks.collection

    @property
    def params(self) -> tuple[float, float]:
        return self.chunks.params

    def __len__(self) -> int:
        return len(self.chunks)

    def holds(self, chunk_id: str) -> bool:
        """Whether the row was in the collection at this data version (a row written since is not, yet)."""
        return chunk_id in self.chunks

    @classmethod
    def build(
        cls,
        rows: Sequence[Chunk],
        vector_batches: Iterable[np.ndarray],
        *,
        collection: str,
        data_version: int,
        k1: float,
        b: float,
        dense_metric: str | None = None,
        labelled: bool = False,
    ) -> "ClientIndex":
        """``vector_batches`` in the order of ``rows``; with ``dense_metric`` they are kept as a ``DenseMirror``
        under that metric, else only their moments are (streamed, so a server's vectors are never held whole).
        ``labelled``: the rows carry access labels, kept beside them."""
        if dense_metric is not None:
            vector_batches = list(vector_batches)
        chunks = LexicalIndex.build(
            [r.chunk_id for r in rows],
            [r.doc_id for r in rows],
            [r.text for r in rows],
            collection=collection,
            k1=k1,
            b=b,
        )
        first_chunks, doc_ids, texts = documents_from_chunks(rows)
        documents = LexicalIndex.build(
            first_chunks, doc_ids, texts, collection=collection, k1=k1, b=b, level="document"
        )
        dense = (
            None
            if dense_metric is None
            else DenseMirror.build(
                [r.chunk_id for r in rows], [r.doc_id for r in rows], np.concatenate(vector_batches), dense_metric
            )
        )
        labels = RowLabels.build([(r.groups, r.tenant) for r in rows]) if labelled else None
        return cls(chunks, documents, VectorMoments.from_batches(vector_batches), data_version, dense, labels)

    def save(self, folder: Path) -> None:
        """The state file is written last: a save interrupted half-way is never mistaken for a current index."""
        (folder / STATE_FILE).unlink(missing_ok=True)
        self.chunks.save(folder / "chunks")
        self.documents.save(folder / "documents")
        self.vectors.save(folder)
        (folder / dense_mirror.FILE).unlink(missing_ok=True)
        if self.dense is not None:
            self.dense.save(folder)
        (folder / row_labels.FILE).unlink(missing_ok=True)
        if self.labels is not None:
            self.labels.save(folder)
        (folder / STATE_FILE).write_text(json.dumps({"collection": self.collection, "data_version": self.data_version}))

    @classmethod
    def load(cls, folder: Path) -> "ClientIndex":
        state = json.loads((folder / STATE_FILE).read_text())
        return cls(
            LexicalIndex.load(folder / "chunks"),
            LexicalIndex.load(folder / "documents"),
            VectorMoments.load(folder),
            state["data_version"],
            DenseMirror.load(folder),
            RowLabels.load(folder),
        )

    @staticmethod
    def exists(folder: Path) -> bool:
        return (folder / STATE_FILE).is_file()


def documents_from_chunks(rows: Iterable[Chunk]) -> tuple[list[str], list[str], list[str]]:
    """(first chunk id, document id, text) per document, the text rejoined from its chunks in order.

    Consecutive chunks overlap (``chunking.chunk_overlap``): the next chunk starts with the previous one's tail,
    which is dropped so overlapping words are not counted twice. Chunks that do not overlap are joined by a space.
    """
    by_doc: dict[str, list[Chunk]] = {}
    for row in rows:
        by_doc.setdefault(row.doc_id, []).append(row)
    first_chunks, doc_ids, texts = [], [], []
    for doc_id, chunks in by_doc.items():
        chunks.sort(key=lambda r: r.position)
        first_chunks.append(chunks[0].chunk_id)
        doc_ids.append(doc_id)
        texts.append(_rejoined([c.text for c in chunks]))
    return first_chunks, doc_ids, texts


def _rejoined(pieces: Sequence[str]) -> str:
    """The pieces in order, each overlap with the text so far kept once. Only the text's tail is searched, as long
    as the longest piece (no overlap reaches further back): rebuilding the whole text for each piece took a 30 MB
    document's 49,809 chunks about a minute (the copies grow with the document: quadratic)."""
    reach = max(len(piece) for piece in pieces)
    kept, tail = [pieces[0]], pieces[0][-reach:]
    for piece in pieces[1:]:
        start = _overlap_start(tail, piece)
        added = piece[len(tail) - start :] if start is not None else f" {piece}"  # tail[start:] == piece's head
        kept.append(added)
        tail = (tail + added)[-reach:]
    return "".join(kept)


def _overlap_start(text: str, following: str) -> int | None:
    """Where the longest tail of ``text`` that ``following`` starts with begins (None: under MIN_OVERLAP_CHARS)."""
    start = max(0, len(text) - len(following))
    last = len(text) - MIN_OVERLAP_CHARS
    while 0 <= (start := text.find(following[:1], start)) <= last:
        if following.startswith(text[start:]):
            return start
        start += 1
    return None
