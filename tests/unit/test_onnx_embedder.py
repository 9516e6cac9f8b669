"""The ONNX Runtime backend: the same vectors as torch, a cache that is rebuilt when broken, clear refusals."""

import json
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag_core.config import ConfigError, EmbeddingConfig, load_config
from rag_core.ingest.chunking import TokenChunker
from rag_core.models import onnx_encoder
from rag_core.models.embedder import Embedder, config_for_model
from rag_core.models.onnx_encoder import INT8_FILE, INT8_PARITY_COSINE, META_FILE, OnnxUnsupportedError, _pooling_mode
from rag_core.types import Document
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


def test_the_exported_tokenizer_chunks_as_the_model_tokenizer_does(pair: tuple[Embedder, Embedder]) -> None:
    """Under ONNX the chunker reads the export's copy of the tokenizer (no transformers import): the same chunks
    and the same signature, so no index is re-chunked for it."""
    torch_side, onnx_side = pair
    assert type(onnx_side.tokenizer).__name__ == "ExportedTokenizer"
    text = "\n\n".join(
        f"Section {n}. Ünïcödé café naïve—dash; e-mail a.b@c.org, 3.14e-5 mg/L (p<0.05). {TEXTS[2][: 40 * n]}"
        for n in range(1, 12)
    )
    document = Document("d", text)
    hf, exported = (TokenChunker(side.tokenizer, 48, 8, 256, window_chars=700) for side in pair)
    assert exported.signature == hf.signature
    assert [(c.text, c.token_count) for c in exported.chunk(document)] == [
        (c.text, c.token_count) for c in hf.chunk(document)
    ]


def test_int8_is_close_to_float32_cached_and_a_model_of_its_own(
    pair: tuple[Embedder, Embedder], caplog: pytest.LogCaptureFixture
) -> None:
    float32 = pair[1]
    settings = EmbeddingConfig(backend="onnx", precision="int8", onnx_cache_dir=float32.config.onnx_cache_dir)
    with caplog.at_level(logging.INFO, logger="rag_core.models.onnx_encoder"):
        int8 = Embedder(settings)
        got = int8.encode_documents(TEXTS)
    assert sum("Quantised the embedding model to int8" in r.getMessage() for r in caplog.records) == 1
    cosines = np.sum(got * float32.encode_documents(TEXTS), axis=1)
    assert cosines.min() >= INT8_PARITY_COSINE and cosines.mean() < 0.9999, "near float32's, yet computed in int8"
    assert got.dtype == np.float32 and np.allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    # Its vectors are another model's: an index version records it apart, and a version's name gives it back.
    assert int8.model_name == "bundled:all-MiniLM-L6-v2#int8" != float32.model_name
    assert config_for_model(float32.config, int8.model_name).precision == "int8"
    assert config_for_model(int8.config, float32.model_name).precision == "float32"

    caplog.clear()
    with caplog.at_level(logging.INFO, logger="rag_core.models.onnx_encoder"):
        again = Embedder(settings)
        assert np.array_equal(again.encode_documents(TEXTS), got)
        assert not caplog.records, "the cached int8 copy is loaded, not made again"
        (int8.onnx.folder / INT8_FILE).write_bytes(b"truncated")
        rebuilt = Embedder(settings)
        assert np.allclose(rebuilt.encode_documents(TEXTS), got, atol=1e-6)
    assert any("int8 copy in" in r.getMessage() and "unusable" in r.getMessage() for r in caplog.records)


def test_int8_weights_follow_the_cpus_integer_instructions(
    pair: tuple[Embedder, Embedder], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Without VNNI, ONNX Runtime sums pairs of uint8 x int8 products in int16, which full-range weights saturate:
    a copy made for the other kind of CPU (a cache shared between machines) is made again, and holds either way."""
    float32 = pair[1]
    settings = EmbeddingConfig(backend="onnx", precision="int8", onnx_cache_dir=float32.config.onnx_cache_dir)
    here = Embedder(settings)
    here.encode_queries(["made for this CPU"])
    other = not onnx_encoder._reduce_range()
    monkeypatch.setattr(onnx_encoder, "_reduce_range", lambda: other)
    with caplog.at_level(logging.WARNING, logger="rag_core.models.onnx_encoder"):
        there = Embedder(settings)
        got = there.encode_documents(TEXTS)
    assert any("another CPU's integer instructions" in r.getMessage() for r in caplog.records)
    assert json.loads((there.onnx.folder / META_FILE).read_text())["int8_reduce_range"] is other
    assert np.sum(got * float32.encode_documents(TEXTS), axis=1).min() >= INT8_PARITY_COSINE


def test_int8_on_torch_is_refused_by_name(tmp_path: Path) -> None:
    settings = tmp_path / "config.yaml"
    settings.write_text("embedding:\n  backend: torch\n  precision: int8\n")
    with pytest.raises(ConfigError, match="embedding.precision int8 runs on ONNX Runtime only"):
        load_config(settings, environ={})


def test_onnx_without_onnxruntime_is_a_clear_error_and_auto_falls_back(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ImportError, match="pip install onnxruntime"):
        _ = Embedder(EmbeddingConfig(backend="onnx", onnx_cache_dir=str(tmp_path))).onnx
    with pytest.raises(ImportError, match="pip install onnxruntime"):  # int8 exists on ONNX only: never torch
        _ = Embedder(EmbeddingConfig(precision="int8", onnx_cache_dir=str(tmp_path))).onnx
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
