"""Typed Arrow schemas for the pipeline's tables, and conversions between them and Python objects."""

import json
from collections.abc import Iterable, Iterator, Sequence
from itertools import islice
from typing import TypeVar

import numpy as np
import pyarrow as pa

from rag_core.types import GROUPS_FIELD, TENANT_FIELD, Chunk, Document

T = TypeVar("T")

DOCUMENTS_SCHEMA = pa.schema(
    [
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("title", pa.string()),
        pa.field("text", pa.string()),
        pa.field("source", pa.string()),
        pa.field("metadata", pa.string()),  # JSON: free-form per document
        pa.field("content_hash", pa.string()),
        pa.field("groups", pa.list_(pa.string())),  # access labels (rag_core.security.labels)
        pa.field("tenant", pa.string()),
    ]
)

CHUNKS_SCHEMA = pa.schema(
    [
        pa.field("chunk_id", pa.string(), nullable=False),
        pa.field("doc_id", pa.string(), nullable=False),
        pa.field("position", pa.int32()),
        pa.field("text", pa.string()),
        pa.field("token_count", pa.int32()),
        pa.field("text_hash", pa.string()),
        pa.field("doc_hash", pa.string()),
        pa.field("title", pa.string()),
        pa.field("source", pa.string()),
        pa.field("groups", pa.list_(pa.string())),
        pa.field("tenant", pa.string()),
    ]
)


def embeddings_schema(dimension: int) -> pa.Schema:
    return CHUNKS_SCHEMA.append(pa.field("vector", pa.list_(pa.float32(), dimension)))


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def documents_to_batch(documents: Sequence[Document]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [
            {
                "doc_id": d.doc_id,
                "title": d.title,
                "text": d.text,
                "source": d.source,
                "metadata": json.dumps(d.metadata, ensure_ascii=False, default=str),
                "content_hash": d.content_hash,
                "groups": list(d.groups),
                "tenant": d.tenant,
            }
            for d in documents
        ],
        schema=DOCUMENTS_SCHEMA,
    )


def batch_to_documents(batch: pa.RecordBatch) -> list[Document]:
    return [
        Document(
            doc_id=r["doc_id"],
            text=r["text"],
            title=r["title"] or "",
            source=r["source"] or "",
            metadata=json.loads(r["metadata"] or "{}"),
            groups=tuple(r.get("groups") or ()),
            tenant=r.get("tenant") or "",
        )
        for r in batch.to_pylist()
    ]


def chunks_to_batch(chunks: Sequence[Chunk]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(
        [{name: getattr(c, name) for name in CHUNKS_SCHEMA.names} | {"groups": list(c.groups)} for c in chunks],
        schema=CHUNKS_SCHEMA,
    )


def with_vectors(chunks: pa.RecordBatch, vectors: np.ndarray) -> pa.RecordBatch:
    """Append a float32 fixed-size vector column to a chunks batch."""
    dimension = vectors.shape[1]
    flat = pa.array(np.ascontiguousarray(vectors, dtype=np.float32).reshape(-1), type=pa.float32())
    column = pa.FixedSizeListArray.from_arrays(flat, dimension)
    columns = chunks.select(CHUNKS_SCHEMA.names).columns
    return pa.RecordBatch.from_arrays([*columns, column], schema=embeddings_schema(dimension))


def vectors_of(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    column = batch.column("vector")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    dimension = column.type.list_size
    return column.values.to_numpy(zero_copy_only=False).reshape(-1, dimension)


def milvus_rows(batch: pa.RecordBatch) -> list[dict]:
    """Rows in the collection's schema; the title travels in the JSON metadata, the access labels in fields of
    their own (``rag_core.security.labels``) that filters read and no document's metadata can forge."""
    vectors = vectors_of(batch)
    fields = ["chunk_id", "doc_id", "position", "text", "title", "source", "groups", "tenant"]
    return [
        {
            "chunk_id": r["chunk_id"],
            "doc_id": r["doc_id"],
            "source": r["source"] or "",
            "position": r["position"],
            "text": r["text"],
            "metadata": {"title": r["title"] or ""},
            GROUPS_FIELD: r["groups"] or [],
            TENANT_FIELD: r["tenant"] or "",
            "vector": vectors[i].tolist(),
        }
        for i, r in enumerate(batch.select(fields).to_pylist())
    ]
