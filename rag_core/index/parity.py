"""Does Milvus hold exactly the chunks a table says it should? Compared by id, not by count, in batches."""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import source_filter

MAX_EXAMPLES = 10


@dataclass(frozen=True)
class Parity:
    milvus_rows: int
    expected_rows: int
    missing: int  # expected, absent from Milvus
    unexpected: int  # in Milvus, not expected
    milvus_dimension: int
    expected_dimension: int
    examples: list[str]  # a few ids of each kind, to start looking

    @property
    def passed(self) -> bool:
        return not self.missing and not self.unexpected and self.milvus_dimension == self.expected_dimension


def chunk_parity(
    manager: MilvusIndexManager,
    collection: str,
    *,
    source: str,
    expected_ids: Iterable[list[str]],
    expected_dimension: int,
    kept: Callable[[str], bool] = lambda doc_id: False,
    owns: Callable[[str], bool] = lambda doc_id: True,
) -> Parity:
    """Milvus's ids of ``source`` are read once; the expected ids stream past them in batches. Rows of documents
    the sync ``kept`` (inputs skipped this time, left as indexed) are not unexpected; only documents it ``owns``
    are compared (one bucket of a partitioned corpus).

    Only ids are held (chunk and document), never rows.
    """
    held = manager.consistent_export(
        collection,
        lambda: {
            row["chunk_id"]: row["doc_id"]
            for batch in manager.iter_rows(collection, ["chunk_id", "doc_id"], filter=source_filter(source))
            for row in batch
            if owns(row["doc_id"])
        },
    )
    milvus_rows = len(held)
    expected_rows, missing, examples = 0, 0, []
    for batch in expected_ids:
        expected_rows += len(batch)
        for chunk_id in batch:
            if chunk_id in held:
                del held[chunk_id]
            else:
                missing += 1
                examples += [chunk_id] if len(examples) < MAX_EXAMPLES else []
    version = manager.state(collection).version
    unexpected = sorted(chunk_id for chunk_id, doc_id in held.items() if not kept(doc_id))
    return Parity(
        milvus_rows=milvus_rows,
        expected_rows=expected_rows,
        missing=missing,
        unexpected=len(unexpected),
        milvus_dimension=version.dimension if version else 0,
        expected_dimension=expected_dimension,
        examples=examples + unexpected[:MAX_EXAMPLES],
    )
