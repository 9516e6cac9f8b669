"""Checks that what was built is what a reader will rely on: unique ids, sane vectors, Milvus in step."""

from pathlib import Path

import dagster as dg
import numpy as np
import pyarrow.compute as pc

from rag_assets.defs.ingestion.assets import chunks, embeddings, semantic_index
from rag_assets.resources import AssetStorage, CorpusResource, MilvusResource
from rag_core.index.parity import chunk_parity
from rag_core.ingest.direct import folder_source
from rag_core.ingest.stages import DIMENSION_KEY, skipped_documents
from rag_core.ingest.tables import vectors_of

NORM_TOLERANCE = 1e-3
PARITY_BATCH = 10_000


@dg.asset_check(asset=chunks, description="Chunk ids are the Milvus primary key: a duplicate would overwrite a chunk.")
def chunk_ids_unique(storage: AssetStorage) -> dg.AssetCheckResult:
    ids = storage.store().get("chunks").read_column("chunk_id")
    duplicates = len(ids) - pc.count_distinct(ids).as_py()
    return dg.AssetCheckResult(passed=duplicates == 0, metadata={"chunks": len(ids), "duplicates": duplicates})


@dg.asset_check(asset=chunks, description="An empty chunk embeds to noise and matches everything a little.")
def no_empty_chunks(storage: AssetStorage) -> dg.AssetCheckResult:
    texts = storage.store().get("chunks").read_column("text")
    empty = pc.sum(pc.equal(pc.utf8_length(pc.utf8_trim_whitespace(texts)), 0)).as_py() or 0
    return dg.AssetCheckResult(passed=empty == 0, metadata={"empty_chunks": empty})


@dg.asset_check(asset=embeddings, description="Vectors have the model's dimension and unit norm (cosine search).")
def vectors_have_model_dimension_and_unit_norm(storage: AssetStorage) -> dg.AssetCheckResult:
    table = storage.store().get("embeddings")
    expected = int(table.metadata[DIMENSION_KEY])
    worst, dimension = 0.0, expected
    for batch in table.iter_batches(4096, columns=["vector"]):
        vectors = vectors_of(batch)
        dimension = vectors.shape[1]
        if len(vectors):
            worst = max(worst, float(np.abs(np.linalg.norm(vectors, axis=1) - 1).max()))
    passed = dimension == expected and worst <= NORM_TOLERANCE
    return dg.AssetCheckResult(passed=passed, metadata={"dimension": dimension, "expected_dimension": expected,
                                                        "max_norm_error": worst})


@dg.asset_check(asset=semantic_index, blocking=True,
                description="Milvus holds exactly the embedded chunks of the corpus folder (same ids, same vector "
                            "dimension): no drift between them. Blocking: nothing downstream reads a drifted index.")
def milvus_rows_match_embeddings(storage: AssetStorage, milvus: MilvusResource,
                                 corpus: CorpusResource) -> dg.AssetCheckResult:
    table = storage.store().get("embeddings")
    manager = milvus.manager()
    collection = manager.resolve(milvus.collection)
    if collection is None:
        return dg.AssetCheckResult(passed=False, metadata={"collection": "missing"})
    source = folder_source(corpus.path)
    documents = storage.store().get("raw_documents")
    parity = chunk_parity(manager, collection, source=source,
                          expected_ids=(batch.column("chunk_id").to_pylist()
                                        for batch in table.iter_batches(PARITY_BATCH, columns=["chunk_id"])),
                          expected_dimension=int(table.metadata[DIMENSION_KEY]),
                          kept=skipped_documents(Path(source), lambda: documents.trailer if documents else {}))
    return dg.AssetCheckResult(passed=parity.passed, metadata={
        "collection": collection, "milvus_rows": parity.milvus_rows, "embedding_rows": parity.expected_rows,
        "missing_in_milvus": parity.missing, "unexpected_in_milvus": parity.unexpected,
        "milvus_dimension": parity.milvus_dimension, "embedding_dimension": parity.expected_dimension,
        "examples": dg.MetadataValue.md("\n".join(f"- `{c}`" for c in parity.examples) or "none"),
    })
