import os
import subprocess
import sys
from pathlib import Path

import pytest

from rag_core.config import ConfigError, load_config
from tests.support.paths import REPO


def test_defaults_work_with_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={})
    assert config.milvus.uri == "data/milvus.db"
    assert config.milvus.collection == "semantic_index"
    assert (config.pipeline.hybrid_alpha, config.pipeline.top_k, config.pipeline.rerank_top_k) == (0.7, 20, 5)
    assert config.pipeline.target_latency_ms == 80.0


def test_yaml_then_env_file_then_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("pipeline:\n  top_k: 30\n  hybrid_alpha: 0.6\nembedding:\n  batch_size: 8\n")
    Path(".env").write_text("RAG__PIPELINE__TOP_K=40\nMILVUS_HOST=envfile-host\n")
    config = load_config(environ={"RAG__EMBEDDING__BATCH_SIZE": "16"})
    assert config.pipeline.hybrid_alpha == 0.6  # yaml
    assert config.pipeline.top_k == 40  # .env beats yaml
    assert config.embedding.batch_size == 16  # environment beats yaml
    assert config.milvus.uri == "http://envfile-host:19530"  # MILVUS_HOST / MILVUS_PORT, as the guide sets them


def test_milvus_uri_wins_over_host_and_port_and_secrets_stay_hidden(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(environ={"MILVUS_HOST": "h", "MILVUS_PORT": "1", "MILVUS_URI": "https://milvus.example:443",
                                  "MILVUS_TOKEN": "s3cret", "MILVUS_PASSWORD": "pw"})
    assert config.milvus.uri == "https://milvus.example:443"
    assert config.milvus.token.get_secret_value() == "s3cret"
    assert "s3cret" not in repr(config) and "pw'" not in repr(config)


def test_invalid_value_names_the_field_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("pipeline:\n  hybrid_alpha: 1.5\nchunking:\n  chunk_size: 64\n  chunk_overlap: 64\n")
    with pytest.raises(ConfigError) as error:
        load_config(environ={})
    assert "pipeline.hybrid_alpha" in str(error.value) and "config.yaml" in str(error.value)
    assert "chunk_overlap" in str(error.value)


def test_unknown_key_and_missing_named_file_are_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    Path("config.yaml").write_text("milvus:\n  urii: x\n")
    with pytest.raises(ConfigError, match="milvus.urii"):
        load_config(environ={})
    with pytest.raises(ConfigError, match="missing.yaml not found"):
        load_config(environ={"RAG_CONFIG": "missing.yaml"})


def test_template_is_a_valid_config(monkeypatch: pytest.MonkeyPatch) -> None:
    template = REPO / "config.template.yaml"
    config = load_config(template, environ={})
    assert config.milvus.collection == "semantic_index"


def test_milvus_uri_may_name_a_milvus_lite_file(tmp_path: Path) -> None:
    """pymilvus alone refuses a file path in MILVUS_URI at import time; the project must accept it (README)."""
    lite = tmp_path / "lite.db"
    script = ("import rag_core; m = rag_core.MilvusIndexManager(); "
              "print(m.config.uri, m.capabilities.is_lite, m.health().ok)")
    done = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=os.environ | {"MILVUS_URI": str(lite), "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(lite), "True", "True"]


@pytest.mark.parametrize("uri", ["foo://bar", "htp://localhost:19530"])
def test_a_milvus_uri_with_an_unknown_scheme_is_one_line_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                    capsys: pytest.CaptureFixture, uri: str) -> None:
    from rag_core.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_URI", uri)
    assert main(["stats"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"milvus.uri: Value error, {uri!r} has the unknown scheme" in err and "http://host:19530" in err


def test_a_lite_file_under_a_missing_folder_tree_is_refused_not_created(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch,
                                                                       capsys: pytest.CaptureFixture) -> None:
    from rag_core.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_URI", str(tmp_path / "nonexistent" / "dir" / "milvus.db"))
    assert main(["stats"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{tmp_path / 'nonexistent'} of the Milvus Lite file" in err
    assert "mkdir -p" in err and not (tmp_path / "nonexistent").exists()
    monkeypatch.setenv("MILVUS_URI", "data/milvus.db")
    main(["stats"])
    assert "run the ingestion first" in capsys.readouterr().err
    assert (tmp_path / "data").is_dir(), "the one missing folder of the default is made"
