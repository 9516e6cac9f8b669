"""The use cases: ingest into Milvus, reindex, promote, erase, evaluate a dataset; each takes its collaborators."""
