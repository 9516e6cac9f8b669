"""The ``rag`` command and ``make run`` as a user runs them: in their own process, reading what reaches the terminal."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.paths import ONNX_CACHE_VARIABLE, REPO

# Lines third parties used to print among ours: weight-loading and encoding progress bars, DEBUG records (bm25s,
# dagster's run log), tracebacks of Milvus Lite's unimplemented calls, and absl/gRPC C++ log lines.
NOISE = re.compile(r"DEBUG|Loading weights|Batches:|Traceback|too_many_pings|grpc|^[EWIF]\d{4} \d\d:\d\d", re.M)


def _environment(tmp_path: Path) -> dict[str, str]:
    """This checkout's code, a Milvus Lite file and metrics under tmp_path, nothing from the caller's config."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("RAG_", "RAG__", "MILVUS_", "TRANSFORMERS_", "HF_HUB_", "GRPC_", "DAGSTER_"))
    }
    env |= {
        "PYTHONPATH": str(REPO),
        "MILVUS_URI": str(tmp_path / "milvus.db"),
        "RAG__RETRIEVAL__METRICS_DIR": str(tmp_path / "metrics"),
        "RAG__RETRIEVAL__BM25_DIR": str(tmp_path / "bm25"),
        "RAG__INGESTION__STORAGE_DIR": str(tmp_path / "assets"),
        ONNX_CACHE_VARIABLE: os.environ[ONNX_CACHE_VARIABLE],
    }
    return env


def _rag(tmp_path: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rag_core.cli", *args],
        cwd=tmp_path,
        env=_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_ingest_and_query_print_only_our_own_lines(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "compaction.md").write_text("# Compaction\n\nCompaction merges segments and purges deleted rows.\n")
    (docs / "sensors.txt").write_text("A sensor starts a run when files change in the corpus folder.\n")

    ingest = _rag(tmp_path, "ingest", "docs")

    assert ingest.returncode == 0, ingest.stderr
    assert ingest.stderr == ""
    assert ingest.stdout.startswith("ingested 2 documents") and ingest.stdout.count("\n") == 1, ingest.stdout

    query = _rag(tmp_path, "query", "how are deleted rows purged", "--top-k", "1")

    assert query.returncode == 0, query.stderr
    assert query.stderr == ""
    assert query.stdout.startswith("1. [") and "compaction.md" in query.stdout
    assert not NOISE.search(ingest.stdout + query.stdout)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_a_query_under_onnx_imports_neither_torch_nor_sentence_transformers(tmp_path: Path, precision: str) -> None:
    """A command-line query took 9.5 to 14 s, most of it importing torch and sentence-transformers to load a model
    ONNX Runtime then ran. With the export cached, the query process loads neither (nor transformers), and the
    loading it still does is reported as its own stage, not as the query's embed time."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "compaction.md").write_text("# Compaction\n\nCompaction merges segments and purges deleted rows.\n")
    env = _environment(tmp_path) | {"RAG__EMBEDDING__BACKEND": "onnx", "RAG__EMBEDDING__PRECISION": precision}
    assert _run(tmp_path, env, "-m", "rag_core.cli", "ingest", "docs").returncode == 0
    report = "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))"
    script = f"import sys\nfrom rag_core.cli.main import main\ncode = main(sys.argv[1:])\n{report}\nsys.exit(code)"

    query = _run(tmp_path, env, "-c", script, "query", "how are deleted rows purged", "--top-k", "1")

    assert query.returncode == 0, query.stderr
    assert query.stdout.startswith("1. [") and "compaction.md" in query.stdout, query.stdout
    assert query.stdout.rstrip().endswith("[]"), "torch, sentence-transformers or transformers was imported"
    stages = re.search(r"ms: (.*)\)", query.stdout).group(1)
    assert stages.startswith("load ") and ", embed " in stages, stages


def _run(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("buffered", [True, False], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("argv", [["perf-report"], ["token", "new", "--name", "ci", "--role", "reader"]])
def test_a_closed_stdout_ends_the_command_quietly_with_141(tmp_path: Path, argv: list[str], buffered: bool) -> None:
    """``rag query ... | head -3`` ended in a BrokenPipeError traceback. The reader here is gone before the first
    write; buffered, Python only writes (and fails) when it flushes at exit."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    env = {k: v for k, v in _environment(tmp_path).items() if k != "PYTHONUNBUFFERED"}
    try:
        done = subprocess.run(
            [sys.executable, "-m", "rag_core.cli", *argv],
            cwd=tmp_path,
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            env=env if buffered else env | {"PYTHONUNBUFFERED": "1"},
        )
    finally:
        os.close(write_end)
    assert done.stderr == ""
    assert done.returncode == 141, "128 + SIGPIPE, as a shell reports `seq 100000 | head -1`'s seq"


@pytest.mark.slow
def test_ctrl_c_during_ingest_prints_one_line_and_exits_130(tmp_path: Path) -> None:
    """As a terminal does it: SIGINT to the whole process group, once the command is busy (its Milvus Lite file
    exists, so the model is loaded and embedding has begun)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    words = "milvus index vector segment compaction sensor asset query embedding chunk token recall".split()
    for number in range(1500):
        (docs / f"doc{number:04d}.txt").write_text(" ".join(words[(number + i) % len(words)] for i in range(200)))
    process = subprocess.Popen(
        [sys.executable, "-m", "rag_core.cli", "ingest", "docs"],
        cwd=tmp_path,
        env=_environment(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not (tmp_path / "milvus.db").exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process.poll() is None, f"finished before it could be interrupted: {process.communicate()}"
        time.sleep(0.5)
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()

    assert process.returncode == 130, err
    assert out == ""
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert err == "interrupted: rag ingest docs; nothing was promoted, re-run the same command to continue\n"


@pytest.mark.slow
def test_make_run_prints_a_summary_without_the_run_log(tmp_path: Path) -> None:
    """``make run`` (python -m rag_assets.demo) used to print dagster's DEBUG event log and a progress bar."""
    shutil.copytree(REPO / "examples" / "corpus", tmp_path / "examples" / "corpus")
    (tmp_path / "dagster_home").mkdir()
    shutil.copy(REPO / "dagster.yaml", tmp_path / "dagster_home" / "dagster.yaml")
    env = _environment(tmp_path) | {"DAGSTER_HOME": str(tmp_path / "dagster_home")}

    run = subprocess.run(
        [sys.executable, "-m", "rag_assets.demo"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )

    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    assert "checks:" in run.stdout and "Q: How do I check that Milvus is healthy?" in run.stdout
    assert not NOISE.search(run.stdout)


@pytest.mark.slow
def test_a_same_count_edit_is_seen_by_the_next_process(tmp_path: Path) -> None:
    """The reported reproduction: ingest, query, rewrite a.md to other text of the same chunk count, ingest, query
    in a new process. It failed with a KeyError on the superseded chunk id (the client-side index on disk was
    judged fresh by its row count)."""
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("Zebras graze on the open savanna in large herds.\n")
    (docs / "b.md").write_text("Compaction merges small segments and purges deleted rows.\n")
    (docs / "c.md").write_text("Aliases point readers at the current collection version.\n")
    assert _rag(tmp_path, "ingest", "docs").returncode == 0
    before = _rag(tmp_path, "query", "zebras savanna", "--top-k", "1")
    assert before.returncode == 0 and "1. [" in before.stdout and "a.md: Zebras graze" in before.stdout
    (docs / "a.md").write_text("Whales migrate across the cold northern ocean.\n")
    edit = _rag(tmp_path, "ingest", "docs")
    assert edit.returncode == 0 and "1 stale deleted" in edit.stdout
    after = _rag(tmp_path, "query", "whales ocean", "--top-k", "1")
    assert after.returncode == 0, after.stderr
    assert "a.md: Whales migrate" in after.stdout
