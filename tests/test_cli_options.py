"""The ``rag`` command's options, checks and interruption: none of these tests needs the model or a Milvus."""

import json
from importlib.metadata import version
from pathlib import Path

import pytest

from rag_core import cli
from rag_core.cli import main


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for variable in ("MILVUS_URI", "MILVUS_HOST", "MILVUS_PORT", "RAG_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    return tmp_path


def _usage_error(argv: list[str], capsys: pytest.CaptureFixture) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "-5", "three", "2.5"])
def test_top_k_must_be_a_positive_integer(workdir: Path, capsys: pytest.CaptureFixture, value: str) -> None:
    """``--top-k 0`` used to return 5 results (the default) and ``--top-k -5`` 15 (all but the last five)."""
    err = _usage_error(["query", "what is compaction", "--top-k", value], capsys)
    assert "argument --top-k: must be a positive integer" in err and value in err


@pytest.mark.parametrize("value", ["-0.1", "1.5", "nan", "dense"])
def test_alpha_must_be_a_weight_from_0_to_1(workdir: Path, capsys: pytest.CaptureFixture, value: str) -> None:
    err = _usage_error(["eval", "--dataset", "anything", "--alpha", value], capsys)
    assert "argument --alpha: must be a number from 0 to 1" in err


def _configs(workdir: Path) -> tuple[Path, Path]:
    """Two config files whose Milvus Lite files lie in folders that do not exist: health names the one it used."""
    first, second = workdir / "first.yaml", workdir / "second.yaml"
    first.write_text("milvus:\n  uri: first-missing/milvus.db\n")
    second.write_text("milvus:\n  uri: second-missing/milvus.db\n")
    return first, second


@pytest.mark.parametrize(("argv", "used"), [
    (["--config", "first.yaml", "health"], "first-missing"),
    (["health", "--config", "first.yaml"], "first-missing"),
    (["--config", "first.yaml", "health", "--config", "second.yaml"], "second-missing"),  # after the command wins
    (["health", "--json", "--config", "second.yaml"], "second-missing"),
])
def test_config_is_accepted_before_and_after_the_subcommand(workdir: Path, capsys: pytest.CaptureFixture,
                                                            argv: list[str], used: str) -> None:
    _configs(workdir)
    assert main(argv) == 1
    captured = capsys.readouterr()
    assert used in captured.err + captured.out
    assert ({"first-missing", "second-missing"} - {used}).pop() not in captured.err + captured.out


def test_config_after_the_subcommand_is_documented_in_its_help(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["stats", "--help"])
    assert exit_.value.code == 0 and "--config FILE" in capsys.readouterr().out


def test_a_missing_config_named_after_the_subcommand_is_an_error(workdir: Path, capsys: pytest.CaptureFixture) -> None:
    assert main(["stats", "--config", "nope.yaml"]) == 2
    assert "nope.yaml not found" in capsys.readouterr().err


def test_version_prints_the_installed_package_version(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out.strip() == f"rag {version('advanced-rag-milvus')}"


def test_health_does_not_create_a_missing_milvus_lite_folder(workdir: Path, capsys: pytest.CaptureFixture,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A typo in the path used to create the folder (and an empty database) and report "ok"."""
    monkeypatch.setenv("MILVUS_URI", "typo-folder/milvus.db")

    assert main(["health"]) == 1

    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("unhealthy: ")
    assert str(workdir / "typo-folder") in err and "does not exist" in err
    assert "create it" in err and "milvus.uri / MILVUS_URI" in err
    assert not (workdir / "typo-folder").exists()

    assert main(["health", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and "typo-folder" in report["error"]
    assert not (workdir / "typo-folder").exists()


def test_health_names_a_file_standing_where_the_folder_should_be(workdir: Path, capsys: pytest.CaptureFixture,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (workdir / "data").write_text("not a folder")
    monkeypatch.setenv("MILVUS_URI", "data/milvus.db")
    assert main(["health"]) == 1
    assert f"{workdir / 'data'} of the Milvus Lite file data/milvus.db is not a folder" in capsys.readouterr().err


class _Interrupted:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt


@pytest.mark.parametrize(("argv", "expected"), [
    (["stats"], "interrupted: rag stats; nothing was changed\n"),
    (["compact"], "interrupted: rag compact; a compaction already requested may still finish on the server"),
])
def test_ctrl_c_is_one_line_and_exit_status_130(workdir: Path, capsys: pytest.CaptureFixture,
                                                monkeypatch: pytest.MonkeyPatch, argv: list[str],
                                                expected: str) -> None:
    monkeypatch.setattr(cli, "MilvusIndexManager", _Interrupted)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # main restores the default handler; not here

    assert main(argv) == 130

    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith(expected)


def test_ctrl_c_during_ingest_says_what_to_do(workdir: Path, capsys: pytest.CaptureFixture,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    import rag_core.ingest.direct

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rag_core.ingest.direct, "ingest_path", interrupted)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)

    assert main(["ingest", "docs"]) == 130
    assert capsys.readouterr().err == (
        "interrupted: rag ingest docs; nothing was promoted, re-run the same command to continue\n")
