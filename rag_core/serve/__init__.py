"""``rag serve``: the HTTP query service over one warm retrieval engine (docs/serving.md)."""
