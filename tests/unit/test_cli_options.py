"""The ``rag`` command's options, checks and interruption: none of these tests needs the model or a Milvus."""

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from importlib.metadata import version
from pathlib import Path

import pytest

import rag_core.lifecycle.context
from rag_core.cli import main as cli
from rag_core.cli.main import main


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


@pytest.fixture
def never_served(monkeypatch: pytest.MonkeyPatch) -> None:
    """A refused option must stop ``rag serve`` before it starts; were it accepted, this fails the test at once."""
    import rag_core.serve.server

    def started(*args: object, **kwargs: object) -> None:
        pytest.fail("rag serve started with an invalid option")

    monkeypatch.setattr(rag_core.serve.server, "serve", started)


@pytest.mark.parametrize("value", ["99999", "65536", "0", "-1", "http"])
@pytest.mark.usefixtures("never_served")
def test_serve_port_must_be_a_tcp_port(workdir: Path, capsys: pytest.CaptureFixture, value: str) -> None:
    """``--port 99999`` used to print "listening on ...:99999" and bind another port (99999 - 65536)."""
    err = _usage_error(["serve", "--port", value], capsys)
    last = err.splitlines()[-1]
    assert last.startswith(
        "rag serve: error: argument --port: must be a TCP port from 1 to 65535, got "
    ) and last.endswith((value, f"{value!r}")), err


@pytest.mark.parametrize("value", ["0", "-2", "two"])
@pytest.mark.usefixtures("never_served")
def test_serve_workers_must_be_at_least_one(workdir: Path, capsys: pytest.CaptureFixture, value: str) -> None:
    """``--workers 0`` used to run one worker (0 fell back to serve.workers)."""
    err = _usage_error(["serve", "--workers", value], capsys)
    assert "argument --workers: must be a positive integer" in err and value in err


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


@pytest.mark.parametrize(
    ("argv", "used"),
    [
        (["--config", "first.yaml", "health"], "first-missing"),
        (["health", "--config", "first.yaml"], "first-missing"),
        (["--config", "first.yaml", "health", "--config", "second.yaml"], "second-missing"),  # after the command wins
        (["health", "--json", "--config", "second.yaml"], "second-missing"),
    ],
)
def test_config_is_accepted_before_and_after_the_subcommand(
    workdir: Path, capsys: pytest.CaptureFixture, argv: list[str], used: str
) -> None:
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


def test_health_does_not_create_a_missing_milvus_lite_folder(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
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


def test_health_names_a_file_standing_where_the_folder_should_be(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    (workdir / "data").write_text("not a folder")
    monkeypatch.setenv("MILVUS_URI", "data/milvus.db")
    assert main(["health"]) == 1
    assert f"{workdir / 'data'} of the Milvus Lite file data/milvus.db is not a folder" in capsys.readouterr().err


# Holds the Milvus Lite lock as `rag serve` would (its note names the command), without Milvus or a model.
HOLD_AS_SERVE = (
    "import sys, time; from pathlib import Path; from rag_core.index import lite_lock; "
    "db = Path(sys.argv[1]); sys.argv = ['rag', 'serve']; lite_lock.acquire(db, 0); "
    "print('held', flush=True); time.sleep(300)"
)


@pytest.fixture
def held_by_serve(workdir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[subprocess.Popen]:
    (workdir / "data").mkdir()
    monkeypatch.setenv("MILVUS_URI", "data/milvus.db")
    monkeypatch.setenv("RAG__MILVUS__LOCK_TIMEOUT_S", "20")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_AS_SERVE, str(workdir / "data" / "milvus.db")], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


class _Readiness(BaseHTTPRequestHandler):
    """Answers /ready as `rag serve` does: 200 when ready, 503 with the reason when not."""

    ready = True

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = json.dumps(
            {
                "ready": self.ready,
                "collection": "semantic_index__v3",
                "version": 3,
                "rows": 42,
                "error": "" if self.ready else "No collection or alias 'semantic_index'",
            }
        ).encode()
        self.send_response(200 if self.ready and self.path == "/ready" else 503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> Iterator[HTTPServer]:
    """A stand-in for the service at serve.port (tests/e2e/test_serve_process.py asks a real `rag serve`)."""
    server = HTTPServer(("127.0.0.1", 0), type("Readiness", (_Readiness,), {}))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    monkeypatch.setenv("RAG__SERVE__PORT", str(server.server_port))
    yield server
    server.shutdown()


def test_health_while_the_service_holds_the_lite_file_is_the_services_readiness(
    held_by_serve: subprocess.Popen, service: HTTPServer, capsys: pytest.CaptureFixture
) -> None:
    """It used to wait milvus.lock_timeout_s and report "unhealthy" whenever the service ran: a container health
    check failed while the service served."""
    url = f"http://127.0.0.1:{service.server_port}/ready"
    assert main(["health"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"ok: data/milvus.db is held by pid {held_by_serve.pid} (rag serve) since "), out
    assert out.endswith(f"; the service at {url} is ready, serving semantic_index__v3 (42 rows)\n"), out
    assert main(["health", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["collection"] == "semantic_index__v3" and report["rows"] == 42


def test_health_while_the_service_holds_the_lite_file_but_is_not_ready(
    held_by_serve: subprocess.Popen, service: HTTPServer, capsys: pytest.CaptureFixture
) -> None:
    service.RequestHandlerClass.ready = False
    started = time.monotonic()
    assert main(["health"]) == 1
    assert time.monotonic() - started < 10, "no wait for the lock: the service answered for it"
    err = capsys.readouterr().err
    assert err.startswith(f"unhealthy: data/milvus.db is held by pid {held_by_serve.pid} (rag serve) since "), err
    assert "is not ready: No collection or alias 'semantic_index'" in err and err.count("\n") == 1, err


class _Interrupted:
    def __init__(self, *args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["stats"], "interrupted: rag stats; nothing was changed\n"),
        (["compact"], "interrupted: rag compact; a compaction already requested may still finish on the server"),
    ],
)
def test_ctrl_c_is_one_line_and_exit_status_130(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch, argv: list[str], expected: str
) -> None:
    monkeypatch.setattr(rag_core.lifecycle.context, "MilvusIndexManager", _Interrupted)  # the CLI's connection
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)  # main restores the default handler; not here

    assert main(argv) == 130

    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith(expected)


def test_ctrl_c_during_ingest_says_what_to_do(
    workdir: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rag_core.lifecycle.direct

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(rag_core.lifecycle.direct, "ingest_path", interrupted)
    monkeypatch.setattr(cli.signal, "signal", lambda *args: None)

    assert main(["ingest", "docs"]) == 130
    assert capsys.readouterr().err == (
        "interrupted: rag ingest docs; nothing was promoted, re-run the same command to continue\n"
    )


def test_weight_loading_bars_stay_off_when_the_hub_was_imported_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """An application (or a test) that imported huggingface_hub before calling ``main`` had it read
    HF_HUB_DISABLE_PROGRESS_BARS too early: a model loaded by the command then drew its bar among our lines."""
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars, enable_progress_bars

    from rag_core.cli.main import quiet_third_parties

    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    disabled_before = are_progress_bars_disabled()
    enable_progress_bars()
    try:
        quiet_third_parties()
        assert are_progress_bars_disabled()
    finally:
        monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)  # quiet_third_parties set it
        (disable_progress_bars if disabled_before else enable_progress_bars)()
