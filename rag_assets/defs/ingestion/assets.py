"""The ingestion chain: raw_documents -> chunks -> embeddings -> semantic_index (Milvus, behind an alias).

Unpartitioned by default. With ``ingestion.partitions: N`` the same chain is built with N static partitions
(``ingestion_assets``): each partition's run reads, chunks, embeds and syncs one bucket of the corpus
(``rag_core.ingest.partitioning``), with Parquet tables of its own, so N runs can go in parallel.
"""

import dagster as dg

from rag_assets.metadata import to_metadata
from rag_assets.resources import AssetStorage, CorpusResource, EmbedderResource, MilvusResource
from rag_core.index.sync import sync_index
from rag_core.ingest.parquet_store import BatchStream, ParquetTable
from rag_core.ingest.partitioning import Partition, finish_when_whole
from rag_core.ingest.stages import (
    CHUNKING_KEY,
    CORPUS_DOCUMENTS_KEY,
    DIMENSION_KEY,
    MODEL_KEY,
    chunk_stream,
    document_stream,
    embedding_stream,
    skipped_documents,
)
from rag_core.lifecycle.audit_details import sync_details
from rag_core.lifecycle.direct import folder_source
from rag_core.lifecycle.promotion import promoter

GROUP = "ingestion"


def partitions_definition(partitions: int) -> dg.StaticPartitionsDefinition:
    """Keys ``0-of-N`` .. ``N-1-of-N``: a key names the split it belongs to, so a run never mixes two splits."""
    return dg.StaticPartitionsDefinition([p.key for p in Partition.all(partitions)])


def partition_of(context: dg.AssetExecutionContext | dg.AssetCheckExecutionContext) -> Partition | None:
    """The bucket this run works on; None for the unpartitioned chain (the whole corpus)."""
    return Partition.from_key(context.partition_key) if context.has_partition_key else None


def table_name(name: str, partition: Partition | None) -> str:
    return partition.table(name) if partition else name


def ingestion_assets(partitions: dg.PartitionsDefinition | None = None) -> tuple[dg.AssetsDefinition, ...]:
    """raw_documents, chunks, embeddings, semantic_index: unpartitioned, or over ``partitions``."""

    @dg.asset(
        group_name=GROUP,
        kinds={"parquet"},
        partitions_def=partitions,
        description="Every readable document under the corpus folder (of this partition's bucket).",
    )
    def raw_documents(context: dg.AssetExecutionContext, corpus: CorpusResource) -> BatchStream:
        if not corpus.path.exists():
            raise dg.Failure(
                f"The corpus folder {corpus.path.resolve()} does not exist; create it or set "
                "ingestion.docs_dir (RAG__INGESTION__DOCS_DIR)."
            )
        partition = partition_of(context)
        return document_stream(
            corpus.path,
            max_file_bytes=corpus.max_file_bytes,
            batch_size=corpus.record_batch_size,
            source=folder_source(corpus.path),
            access=corpus.access,
            labels=corpus.labels,
            owns=partition.owns if partition else None,
        )

    @dg.asset(
        group_name=GROUP,
        kinds={"parquet"},
        partitions_def=partitions,
        description="Token-bounded chunks; unchanged documents reuse theirs.",
    )
    def chunks(
        context: dg.AssetExecutionContext,
        raw_documents: ParquetTable,
        embedder: EmbedderResource,
        storage: AssetStorage,
        corpus: CorpusResource,
    ) -> BatchStream:
        previous = storage.store().get(table_name("chunks", partition_of(context)))
        return chunk_stream(raw_documents, embedder.chunker(), previous, batch_size=corpus.record_batch_size)

    @dg.asset(
        group_name=GROUP,
        kinds={"parquet", "pytorch"},
        partitions_def=partitions,
        description="A float32 vector per chunk; only new text is embedded.",
    )
    def embeddings(
        context: dg.AssetExecutionContext,
        chunks: ParquetTable,
        embedder: EmbedderResource,
        storage: AssetStorage,
        corpus: CorpusResource,
    ) -> BatchStream:
        previous = storage.store().get(table_name("embeddings", partition_of(context)))
        return embedding_stream(chunks, embedder.embedder(), previous, batch_size=corpus.record_batch_size)

    @dg.asset(
        group_name=GROUP,
        kinds={"milvus"},
        partitions_def=partitions,
        description="The Milvus collection behind the alias, synced by upsert/delete within the corpus "
        "folder's source (and this partition's bucket).",
    )
    def semantic_index(
        context: dg.AssetExecutionContext,
        embeddings: ParquetTable,
        milvus: MilvusResource,
        corpus: CorpusResource,
        storage: AssetStorage,
        embedder: EmbedderResource,
    ) -> dg.MaterializeResult:
        meta, manager, partition = embeddings.metadata, milvus.manager(), partition_of(context)
        version = manager.version_for(meta[MODEL_KEY], int(meta[DIMENSION_KEY]), meta.get(CHUNKING_KEY, ""))
        source = folder_source(corpus.path)
        documents = storage.store().get(table_name("raw_documents", partition))
        if partition and documents and documents.trailer.get(CORPUS_DOCUMENTS_KEY) == "0":
            raise dg.Failure(
                f"The corpus folder {corpus.path.resolve()} holds no readable document; refusing to "
                f"prune partition {partition.key} of {milvus.collection!r} to nothing. Check the "
                "folder (ingestion.docs_dir), or delete its rows explicitly with "
                f"`rag delete --source {source}`."
            )
        promote = promoter(milvus.settings.context(), milvus.collection)
        report = sync_index(
            manager,
            milvus.collection,
            version,
            embeddings.iter_batches(corpus.record_batch_size),
            source=source,
            prune=True,
            keep=skipped_documents(lambda: documents.trailer if documents else {}),
            promote=promote,
            owns=partition.owns if partition else None,
        )
        # A new version filled by a partition's run is served once every bucket's run has filled it.
        served = partition is not None and (
            manager.resolve(milvus.collection) == report.collection
            or finish_when_whole(
                manager, milvus.collection, report.collection, _all_chunk_ids(storage, partition.count), promote=promote
            )
        )
        return dg.MaterializeResult(
            metadata=to_metadata(
                sync_details(report)
                | {
                    "seconds": report.seconds,
                    "source": source,
                    "milvus_uri": milvus.uri,
                    **({"partition": partition.key, "serving": served} if partition else {}),
                }
            )
        )

    return raw_documents, chunks, embeddings, semantic_index


def _all_chunk_ids(storage: AssetStorage, partitions: int) -> list[str] | None:
    """The chunk ids of every bucket's embeddings table; None while some bucket has none yet."""
    tables = [storage.store().get(p.table("embeddings")) for p in Partition.all(partitions)]
    if any(table is None for table in tables):
        return None
    return [chunk_id for table in tables for chunk_id in table.read_column("chunk_id").to_pylist()]


raw_documents, chunks, embeddings, semantic_index = ingestion_assets()
