"""Where things are, for tests and benchmarks wherever they sit: the checkout, the shared data beside it, and the
one ONNX export every test process uses."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCIFACT = REPO.parent / "shared" / "data" / "scifact"
# One ONNX export of the model for the whole session: the folder in-process tests use (data/models under the
# checkout), named absolutely so the `rag` and Dagster processes that tests start in tmp folders find it too.
ONNX_CACHE_VARIABLE = "RAG__EMBEDDING__ONNX_CACHE_DIR"
ONNX_CACHE = REPO / "data" / "models"
