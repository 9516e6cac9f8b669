"""Portable, checksummed snapshots of an index (every kept version, the alias, client-side indexes, the audit
database, the config) and their restore into an empty Milvus, Lite or server, without re-embedding."""
