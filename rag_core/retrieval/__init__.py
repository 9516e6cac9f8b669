"""Hybrid retrieval: the engine, its two legs, fusion, the client-side index, reranking, the query cache."""
