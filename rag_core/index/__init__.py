"""The Milvus side: the index manager, versions behind an alias, the sync, retries."""
