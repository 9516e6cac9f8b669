"""Fast: real small models, Milvus Lite on tmp_path, Dagster definitions in process; `make test-fast`."""
