"""`rag` processes, `rag serve`, `dagster dev` through GraphQL, the UI in headless chromium."""
