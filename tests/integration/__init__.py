"""The real Milvus server, PostgreSQL, Prometheus and its Pushgateway, started on loopback."""
