"""Checks that what was built is what a reader will rely on: unique ids, sane vectors, Milvus in step.

Each check is a plain function of the partition it looks at (None: the unpartitioned chain); the partitioned chain
gets the same checks reading its partition's tables and comparing Milvus's rows of its bucket only
(``partitioned_checks``).
"""

import dagster as dg
import numpy as np
import pyarrow.compute as pc

from rag_assets.defs.ingestion.assets import chunks, embeddings, partition_of, semantic_index, table_name
from rag_assets.resources import AssetStorage, CorpusResource, MilvusResource
from rag_core.index.parity import chunk_parity
from rag_core.ingest.partitioning import Partition
from rag_core.ingest.stages import DIMENSION_KEY, skipped_documents
from rag_core.lifecycle.direct import folder_source
from rag_core.tables import vectors_of

NORM_TOLERANCE = 1e-3
PARITY_BATCH = 10_000
UNIQUE_IDS = "Chunk ids are the Milvus primary key: a duplicate would overwrite a chunk."
NO_EMPTY = "An empty chunk embeds to noise and matches everything a little."
UNIT_NORM = "Vectors have the model's dimension and unit norm (cosine search)."
PARITY = (
    "Milvus holds exactly the embedded chunks of the corpus folder (same ids, same vector dimension): no drift "
    "between them. Blocking: nothing downstream reads a drifted index."
)


def _unique_ids(storage: AssetStorage, partition: Partition | None) -> dg.AssetCheckResult:
    ids = storage.store().get(table_name("chunks", partition)).read_column("chunk_id")
    duplicates = len(ids) - pc.count_distinct(ids).as_py()
    return dg.AssetCheckResult(passed=duplicates == 0, metadata={"chunks": len(ids), "duplicates": duplicates})


def _no_empty(storage: AssetStorage, partition: Partition | None) -> dg.AssetCheckResult:
    texts = storage.store().get(table_name("chunks", partition)).read_column("text")
    empty = pc.sum(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0)).as_py() or 0
    return dg.AssetCheckResult(passed=empty == 0, metadata={"empty_chunks": empty})


def _unit_norm(storage: AssetStorage, partition: Partition | None) -> dg.AssetCheckResult:
    table = storage.store().get(table_name("embeddings", partition))
    expected = int(table.metadata[DIMENSION_KEY])
    worst, dimension = 0.0, expected
    for batch in table.iter_batches(4096, columns=["vector"]):
        vectors = vectors_of(batch)
        dimension = vectors.shape[1]
        if len(vectors):
            worst = max(worst, float(np.abs(np.linalg.norm(vectors, axis=1) - 1).max()))
    passed = dimension == expected and worst <= NORM_TOLERANCE
    return dg.AssetCheckResult(
        passed=passed, metadata={"dimension": dimension, "expected_dimension": expected, "max_norm_error": worst}
    )


def _parity(
    storage: AssetStorage,
    milvus: MilvusResource,
    corpus: CorpusResource,
    partition: Partition | None,
    collection: str | None,
) -> dg.AssetCheckResult:
    table = storage.store().get(table_name("embeddings", partition))
    if collection is None:
        return dg.AssetCheckResult(passed=False, metadata={"collection": "missing"})
    source = folder_source(corpus.path)
    documents = storage.store().get(table_name("raw_documents", partition))
    parity = chunk_parity(
        milvus.manager(),
        collection,
        source=source,
        expected_ids=(
            batch.column("chunk_id").to_pylist() for batch in table.iter_batches(PARITY_BATCH, columns=["chunk_id"])
        ),
        expected_dimension=int(table.metadata[DIMENSION_KEY]),
        kept=skipped_documents(lambda: documents.trailer if documents else {}),
        **({"owns": partition.owns} if partition else {}),
    )
    return dg.AssetCheckResult(
        passed=parity.passed,
        metadata={
            "collection": collection,
            "milvus_rows": parity.milvus_rows,
            "embedding_rows": parity.expected_rows,
            "missing_in_milvus": parity.missing,
            "unexpected_in_milvus": parity.unexpected,
            "milvus_dimension": parity.milvus_dimension,
            "embedding_dimension": parity.expected_dimension,
            "examples": dg.MetadataValue.md("\n".join(f"- `{c}`" for c in parity.examples) or "none"),
        },
    )


@dg.asset_check(asset=chunks, description=UNIQUE_IDS)
def chunk_ids_unique(storage: AssetStorage) -> dg.AssetCheckResult:
    return _unique_ids(storage, None)


@dg.asset_check(asset=chunks, description=NO_EMPTY)
def no_empty_chunks(storage: AssetStorage) -> dg.AssetCheckResult:
    return _no_empty(storage, None)


@dg.asset_check(asset=embeddings, description=UNIT_NORM)
def vectors_have_model_dimension_and_unit_norm(storage: AssetStorage) -> dg.AssetCheckResult:
    return _unit_norm(storage, None)


@dg.asset_check(asset=semantic_index, blocking=True, description=PARITY)
def milvus_rows_match_embeddings(
    storage: AssetStorage, milvus: MilvusResource, corpus: CorpusResource
) -> dg.AssetCheckResult:
    return _parity(storage, milvus, corpus, None, milvus.manager().resolve(milvus.collection))


def partitioned_checks(
    chunks: dg.AssetsDefinition, embeddings: dg.AssetsDefinition, semantic_index: dg.AssetsDefinition
) -> tuple[dg.AssetChecksDefinition, ...]:
    """The same four checks on the partitioned chain of ``ingestion_assets``, each on its run's partition."""

    @dg.asset_check(asset=chunks, name="chunk_ids_unique", description=UNIQUE_IDS)
    def unique_ids(context: dg.AssetCheckExecutionContext, storage: AssetStorage) -> dg.AssetCheckResult:
        return _unique_ids(storage, partition_of(context))

    @dg.asset_check(asset=chunks, name="no_empty_chunks", description=NO_EMPTY)
    def no_empty(context: dg.AssetCheckExecutionContext, storage: AssetStorage) -> dg.AssetCheckResult:
        return _no_empty(storage, partition_of(context))

    @dg.asset_check(asset=embeddings, name="vectors_have_model_dimension_and_unit_norm", description=UNIT_NORM)
    def unit_norm(context: dg.AssetCheckExecutionContext, storage: AssetStorage) -> dg.AssetCheckResult:
        return _unit_norm(storage, partition_of(context))

    @dg.asset_check(asset=semantic_index, name="milvus_rows_match_embeddings", blocking=True, description=PARITY)
    def parity(
        context: dg.AssetCheckExecutionContext, storage: AssetStorage, milvus: MilvusResource, corpus: CorpusResource
    ) -> dg.AssetCheckResult:
        # The collection this partition's run synced: while a new version is being filled, that one, not the alias's.
        records = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=semantic_index.key, asset_partitions=[context.partition_key]), limit=1
        ).records
        collection = records[0].asset_materialization.metadata["collection"].value if records else None
        return _parity(storage, milvus, corpus, partition_of(context), collection)

    return unique_ids, no_empty, unit_norm, parity
