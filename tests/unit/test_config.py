import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest
import yaml
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from rag_core import config_reference
from rag_core.config import PATHS_UNDER_DATA_DIR, ConfigError, RAGConfig, load_config
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


def test_milvus_uri_wins_over_host_and_port_and_secrets_stay_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    config = load_config(
        environ={
            "MILVUS_HOST": "h",
            "MILVUS_PORT": "1",
            "MILVUS_URI": "https://milvus.example:443",
            "MILVUS_TOKEN": "s3cret",
            "MILVUS_PASSWORD": "pw",
        }
    )
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
    script = (
        "import rag_core; m = rag_core.MilvusIndexManager(); print(m.config.uri, m.capabilities.is_lite, m.health().ok)"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"MILVUS_URI": str(lite), "PYTHONPATH": str(REPO)},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == [str(lite), "True", "True"]


@pytest.mark.parametrize("uri", ["foo://bar", "htp://localhost:19530"])
def test_a_milvus_uri_with_an_unknown_scheme_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, uri: str
) -> None:
    from rag_core.cli.main import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_URI", uri)
    assert main(["stats"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"milvus.uri: Value error, {uri!r} has the unknown scheme" in err and "http://host:19530" in err


def test_a_lite_file_under_a_missing_folder_tree_is_refused_not_created(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
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


def _fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, FieldInfo]]:
    """Every field of the config tree by dotted name: the sections, their keys, and the fields of a model a list
    holds (security.tokens)."""
    for name, info in model.model_fields.items():
        yield prefix + name, info
        for nested in (info.annotation, *get_args(info.annotation)):
            if isinstance(nested, type) and issubclass(nested, BaseModel):
                yield from _fields(nested, f"{prefix}{name}.")


def test_every_setting_is_described() -> None:
    fields = dict(_fields(RAGConfig))
    assert {"milvus", "milvus.consistency_level", "security.tokens.role", "serve.port"} <= set(fields)
    assert [name for name, info in fields.items() if not (info.description or "").strip()] == []


def test_the_template_holds_every_key_and_loads_as_the_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key is written with its default, but the one computed per machine (the user's cache) and the paths
    that lie under data.dir, which are shown commented out: a copy of the template that pinned them would leave
    data.dir no say over them."""
    monkeypatch.chdir(tmp_path)  # no .env from the checkout
    template = REPO / "config.template.yaml"
    text = template.read_text(encoding="utf-8")
    written = {section: set(keys) for section, keys in yaml.safe_load(text).items()}
    keys = {section: set(info.annotation.model_fields) for section, info in RAGConfig.model_fields.items()}
    commented = {("embedding", "onnx_cache_dir"), *PATHS_UNDER_DATA_DIR}
    assert written == {section: names - {k for s, k in commented if s == section} for section, names in keys.items()}
    for _, key in commented:
        assert f"\n  # {key}: " in text
    assert load_config(template, environ={}) == RAGConfig()
    moved = load_config(template, environ={"RAG__DATA__DIR": str(tmp_path / "srv")})
    assert moved.milvus.uri == str(tmp_path / "srv" / "milvus.db")


def test_every_path_setting_left_unset_lies_under_the_data_folder(tmp_path: Path) -> None:
    defaults = RAGConfig()
    assert defaults.milvus.uri == "data/milvus.db" and defaults.quality.drift_dir == "data/drift"
    config = load_config(environ={"RAG__DATA__DIR": "/srv/rag", "RAG__QUALITY__DRIFT_DIR": "/other/drift"})
    assert config.quality.drift_dir == "/other/drift", "an explicit path wins"
    assert config.compliance.database_url == "sqlite:////srv/rag/compliance/audit.db"
    for (section, key), below in PATHS_UNDER_DATA_DIR.items():
        if (section, key) not in {("quality", "drift_dir"), ("compliance", "database_url")}:
            assert getattr(getattr(config, section), key) == f"/srv/rag/{below}", (section, key)
    server = RAGConfig(data={"dir": str(tmp_path)}, milvus={"uri": "http://127.0.0.1:19530"})
    assert server.milvus.uri == "http://127.0.0.1:19530" and server.ingestion.storage_dir == f"{tmp_path}/assets"
    assert RAGConfig.model_validate_json(server.model_dump_json(context={"secrets": True})) == server


def _reference_rows() -> dict[str, list[str]]:
    """docs/configuration.md's rows by key: [default, environment variables, description]."""
    lines = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8").splitlines()
    cells = [line.strip("| ").split(" | ") for line in lines if line.startswith("| `")]
    return {key.strip("`"): rest for key, *rest in cells}


def test_the_reference_has_every_key_and_only_variables_the_loader_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    rows = _reference_rows()
    assert set(rows) == {name.replace("tokens.", "tokens[].") for name, _ in _fields(RAGConfig) if "." in name}
    assert rows["milvus.uri"][1] == "`RAG__MILVUS__URI`, else `MILVUS_URI`, else `MILVUS_HOST` + `MILVUS_PORT`"
    assert rows["milvus.token"][1] == "`MILVUS_TOKEN`, else `RAG__MILVUS__TOKEN`"
    for key, (_, variables, _) in rows.items():
        if "[]" in key:
            continue
        section, field = key.split(".")
        default = RAGConfig.model_fields[section].annotation.model_fields[field].get_default(call_default_factory=True)
        environ = {f"RAG__{section}__{field}".upper(): "1" if default is None else str(default)}
        if variables == "–":
            with pytest.raises(ConfigError, match=f"{section}.{field.lower()}"):
                load_config(environ=environ)
        else:
            assert list(environ)[0] in variables, key
            load_config(environ=environ)


def test_the_committed_template_and_reference_are_up_to_date() -> None:
    """What `make lint` runs: a description edited without regenerating the files fails it."""
    done = subprocess.run(
        [sys.executable, "-m", "rag_core.config_reference", "--check"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_check_names_each_stale_file_and_the_command_that_regenerates_it(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    root = ["--root", str(tmp_path)]
    assert config_reference.main(root) == 0
    assert config_reference.main(["--check", *root]) == 0
    template, reference = tmp_path / "config.template.yaml", tmp_path / "docs" / "configuration.md"
    text = template.read_text(encoding="utf-8")
    template.write_text(text.replace("\n  top_k: 20 ", "\n  top_k: 30 "), encoding="utf-8")
    assert template.read_text(encoding="utf-8") != text
    reference.unlink()
    capsys.readouterr()

    assert config_reference.main(["--check", *root]) == 1
    regenerate = "is stale: run `python -m rag_core.config_reference` to regenerate it from rag_core/config.py"
    assert capsys.readouterr().err.splitlines() == [f"{template} {regenerate}", f"{reference} {regenerate}"]
