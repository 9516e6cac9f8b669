"""The ONNX Runtime backend: the same vectors as torch, a cache that is rebuilt when broken, clear refusals."""

import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag_core.config import EmbeddingConfig
from rag_core.models.embedder import Embedder
from rag_core.models.onnx_encoder import OnnxUnsupportedError, _pooling_mode
from tests.support.paths import REPO

TEXTS = [
    "What does compaction do?",
    "x",
    "Milvus stores vectors in collections; HNSW makes search fast. " * 40,
    "Ünïcödé and numbers 3.14 and 1e-5",
    "a " * 300,
]


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Embedder, Embedder]:
    cache = tmp_path_factory.mktemp("models")
    torch_side = Embedder(EmbeddingConfig(backend="torch", query_precision="float32"))
    onnx_side = Embedder(EmbeddingConfig(backend="onnx", onnx_cache_dir=str(cache)))
    return torch_side, onnx_side


def test_onnx_vectors_match_torch_for_documents_and_queries(pair: tuple[Embedder, Embedder]) -> None:
    torch_side, onnx_side = pair
    assert torch_side.onnx is None and onnx_side.onnx is not None
    for encode in ("encode_documents", "encode_queries"):
        want, got = getattr(torch_side, encode)(TEXTS), getattr(onnx_side, encode)(TEXTS)
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.min(np.sum(got * want, axis=1)) >= 0.99999, encode
        assert np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    assert onnx_side.encode_queries([]).shape == (0, 384)


def test_prompts_are_applied_as_sentence_transformers_does(tmp_path: Path, pair: tuple[Embedder, Embedder]) -> None:
    torch_side = Embedder(EmbeddingConfig(backend="torch", query_prompt="query: ", query_precision="float32"))
    onnx_side = Embedder(
        EmbeddingConfig(backend="onnx", query_prompt="query: ", onnx_cache_dir=pair[1].config.onnx_cache_dir)
    )
    want, got = torch_side.encode_queries(TEXTS[:2]), onnx_side.encode_queries(TEXTS[:2])
    assert np.min(np.sum(got * want, axis=1)) >= 0.99999
    assert not np.allclose(got, pair[1].encode_queries(TEXTS[:2])), "the prompt changed the vectors"


def test_a_corrupt_export_is_detected_and_rebuilt(
    pair: tuple[Embedder, Embedder], caplog: pytest.LogCaptureFixture
) -> None:
    folder = pair[1].onnx.folder
    (folder / "model.onnx").write_bytes(b"not an onnx file")
    with caplog.at_level(logging.WARNING, logger="rag_core.models.onnx_encoder"):
        rebuilt = Embedder(EmbeddingConfig(backend="onnx", onnx_cache_dir=pair[1].config.onnx_cache_dir))
        vectors = rebuilt.encode_queries(TEXTS[:1])
    assert any("unusable (checksum" in r.getMessage() for r in caplog.records)
    assert np.sum(vectors * pair[0].encode_queries(TEXTS[:1])) >= 0.99999
    assert (folder / "model.onnx").stat().st_size > 1_000_000


def test_onnx_without_onnxruntime_is_a_clear_error_and_auto_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        _ = Embedder(EmbeddingConfig(backend="onnx", onnx_cache_dir=str(tmp_path))).onnx
    assert Embedder(EmbeddingConfig(backend="auto", onnx_cache_dir=str(tmp_path))).onnx is None


def test_models_it_cannot_reproduce_are_refused_by_name() -> None:
    class Transformer: ...

    class Dense: ...

    with pytest.raises(OnnxUnsupportedError, match="Transformer \\+ Dense"):
        _pooling_mode([Transformer(), Dense()])


def test_the_export_is_cached_per_user_not_per_working_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RAG__EMBEDDING__ONNX_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    assert EmbeddingConfig().onnx_cache_dir == str(tmp_path / "cache" / "advanced-rag-milvus" / "onnx")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert EmbeddingConfig().onnx_cache_dir == str(tmp_path / "home" / ".cache" / "advanced-rag-milvus" / "onnx")


@pytest.mark.slow
def test_processes_exporting_into_one_cache_at_once_share_one_export(tmp_path: Path) -> None:
    """Two processes started together on an empty cache: one exports while the other waits, then loads it."""
    cache = tmp_path / "models"
    script = (
        "import logging, sys; logging.basicConfig(level=logging.INFO)\n"
        "from rag_core.config import EmbeddingConfig\nfrom rag_core.models.embedder import Embedder\n"
        "e = Embedder(EmbeddingConfig(backend='onnx', onnx_cache_dir=sys.argv[1]))\n"
        "print(e.onnx.folder.name, float(e.encode_queries(['compaction'])[0][0]))"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(cache)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO,
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300) for p in processes]
    assert [p.returncode for p in processes] == [0, 0], [err[-2000:] for _, err in outputs]
    assert outputs[0][0] == outputs[1][0], "the same export, the same vector"
    assert sum("Exported the embedding model" in err for _, err in outputs) == 1, "the second waited, then loaded"
    exports = [p.name for p in cache.iterdir() if p.is_dir()]
    assert exports == [outputs[0][0].split()[0]], "one export folder, no staging copy left behind"
