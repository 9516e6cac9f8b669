"""Ingestion: loaders, chunking, the embedder, the streamed asset tables, and ingestion straight into Milvus."""
