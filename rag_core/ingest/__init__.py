"""Ingestion: loaders, chunking and the streamed asset tables (documents -> chunks -> embeddings)."""
