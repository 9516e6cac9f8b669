"""The models: text in, numbers out (the embedder and its ONNX encoder, the reranker, the NLI model)."""
