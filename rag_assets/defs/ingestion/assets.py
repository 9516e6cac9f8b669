"""The ingestion chain: raw_documents -> chunks -> embeddings -> semantic_index (Milvus, behind an alias)."""

from pathlib import Path

import dagster as dg

from rag_assets.metadata import to_metadata
from rag_assets.resources import AssetStorage, CorpusResource, EmbedderResource, MilvusResource
from rag_core.index.sync import sync_index
from rag_core.ingest.direct import folder_source
from rag_core.ingest.parquet_store import BatchStream, ParquetTable
from rag_core.ingest.promotion import promoter
from rag_core.ingest.stages import (
    CHUNKING_KEY,
    DIMENSION_KEY,
    MODEL_KEY,
    chunk_stream,
    document_stream,
    embedding_stream,
    skipped_documents,
)

GROUP = "ingestion"


@dg.asset(group_name=GROUP, kinds={"parquet"}, description="Every readable document under the corpus folder.")
def raw_documents(corpus: CorpusResource) -> BatchStream:
    if not corpus.path.exists():
        raise dg.Failure(f"The corpus folder {corpus.path.resolve()} does not exist; create it or set "
                         "ingestion.docs_dir (RAG__INGESTION__DOCS_DIR).")
    return document_stream(corpus.path, max_file_bytes=corpus.max_file_bytes, batch_size=corpus.record_batch_size,
                           source=folder_source(corpus.path))


@dg.asset(group_name=GROUP, kinds={"parquet"}, description="Token-bounded chunks; unchanged documents reuse theirs.")
def chunks(raw_documents: ParquetTable, embedder: EmbedderResource, storage: AssetStorage,
           corpus: CorpusResource) -> BatchStream:
    return chunk_stream(raw_documents, embedder.chunker(), storage.store().get("chunks"),
                        batch_size=corpus.record_batch_size)


@dg.asset(group_name=GROUP, kinds={"parquet", "pytorch"},
          description="A float32 vector per chunk; only new text is embedded.")
def embeddings(chunks: ParquetTable, embedder: EmbedderResource, storage: AssetStorage,
               corpus: CorpusResource) -> BatchStream:
    return embedding_stream(chunks, embedder.embedder(), storage.store().get("embeddings"),
                            batch_size=corpus.record_batch_size)


@dg.asset(group_name=GROUP, kinds={"milvus"},
          description="The Milvus collection behind the alias, synced by upsert/delete within the corpus folder's "
                      "source.")
def semantic_index(embeddings: ParquetTable, milvus: MilvusResource, corpus: CorpusResource,
                   storage: AssetStorage, embedder: EmbedderResource) -> dg.MaterializeResult:
    meta, manager = embeddings.metadata, milvus.manager()
    version = manager.version_for(meta[MODEL_KEY], int(meta[DIMENSION_KEY]), meta.get(CHUNKING_KEY, ""))
    source = folder_source(corpus.path)
    documents = storage.store().get("raw_documents")
    report = sync_index(manager, milvus.collection, version, embeddings.iter_batches(corpus.record_batch_size),
                        source=source, prune=True,
                        keep=skipped_documents(Path(source), lambda: documents.trailer if documents else {}),
                        promote=promoter(milvus.settings.rag_config(), milvus.collection, embedder.embedder(),
                                         manager))
    return dg.MaterializeResult(metadata=to_metadata({
        "collection": report.collection, "alias": report.alias, "index_version": report.index_version,
        "new_version": report.new_version, "upserted": report.upserted, "deleted": report.deleted,
        "unchanged": report.unchanged, "rows": report.rows, "data_version": report.data_version,
        "seconds": report.seconds, "source": source,
        "milvus_uri": milvus.uri,
    }))
