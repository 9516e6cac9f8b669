"""Progress of long work: a bar on a terminal, plain lines in a log, nothing when quiet; the long commands show it."""

import fcntl
import io
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
import yaml

from rag_core.cli.main import main
from rag_core.ingest import stages
from rag_core.observability.progress import INTERVAL_VARIABLE, ProgressReporter
from tests.e2e.test_cli_process import _environment
from tests.support.configs import make_config
from tests.support.corpus import write_corpus
from tests.support.dagster_runs import run_ingestion
from tests.unit.test_cli import write_beir
from tests.unit.test_large_documents import varied_text

LINE = re.compile(
    r"^(?P<label>[a-z]+): (?P<done>\d+)(?:/(?P<total>\d+))? (?P<unit>[a-z]+)"
    r"(?: \((?P<pct>\d+) %\))?(?:, [\d.]+ [a-z]+/s)?, \d+ s$"
)


def _lines(text: str) -> list[dict[str, str]]:
    """Every line parsed; a line that is not a progress line fails the test with the line shown."""
    parsed = []
    for line in text.splitlines():
        match = LINE.match(line)
        assert match, f"not a plain progress line: {line!r}"
        parsed.append(match.groupdict())
    return parsed


def _lines_of(text: str) -> list[dict[str, str]]:
    """The progress lines among others (a Dagster run also logs its events to stderr)."""
    return [match.groupdict() for match in map(LINE.match, text.splitlines()) if match]


def test_plain_lines_in_a_log_reach_the_total() -> None:
    log = io.StringIO()
    with ProgressReporter(stream=log, interval_s=0).bar("ingest", "documents", total=4) as bar:
        for _ in bar.iterate(range(4)):
            time.sleep(0.01)
    lines = _lines(log.getvalue())
    assert "\r" not in log.getvalue()
    assert [int(line["done"]) for line in lines] == [0, 1, 2, 3, 4]
    assert {"label": "ingest", "total": "4", "unit": "documents", "pct": "100"}.items() <= lines[-1].items()
    assert bar.count == 4


def test_unknown_then_learned_total_and_a_retried_count() -> None:
    log = io.StringIO()
    with ProgressReporter(stream=log, interval_s=0).bar("backup", "rows") as bar:
        bar.advance(3)
        assert _lines(log.getvalue())[-1]["total"] is None  # "backup: 3 rows, ..."
        bar.set_total(10)
        bar.advance_to(2)  # read again from the start after a retry
        bar.advance_to(10)
    last = _lines(log.getvalue())[-1]
    assert (last["done"], last["total"], last["pct"]) == ("10", "10", "100") and bar.count == 10


def test_nothing_when_quiet_or_shorter_than_one_interval() -> None:
    log = io.StringIO()
    with ProgressReporter(enabled=False, stream=log, interval_s=0).bar("eval", "queries", total=3) as quiet:
        list(quiet.iterate(range(3)))
    with ProgressReporter(stream=log, interval_s=60).bar("eval", "queries", total=3) as short:
        list(short.iterate(range(3)))
    assert log.getvalue() == "" and quiet.count == short.count == 3


def test_a_bar_on_a_terminal() -> None:
    reader, writer = os.openpty()
    fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a new pty is 0 columns wide
    terminal = os.fdopen(writer, "w")
    try:
        with ProgressReporter(stream=terminal, interval_s=60).bar("reindex", "documents", total=3) as bar:
            list(bar.iterate(range(3)))
        terminal.flush()
        shown = b""
        while select.select([reader], [], [], 0.5)[0]:
            shown += os.read(reader, 65536)
    finally:
        terminal.close()
        os.close(reader)
    shown = shown.decode()
    assert "\r" in shown, "a terminal gets a bar redrawn in place"
    assert "reindex: 100%" in shown and "3/3" in shown and "documents/s" in shown


@pytest.mark.slow
def test_long_commands_show_progress_unless_quiet(
    tmp_path: Path, embedder, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for variable in ("MILVUS_URI", "MILVUS_HOST", "MILVUS_PORT", "RAG_CONFIG"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv(INTERVAL_VARIABLE, "0")  # a line for every step, however quick
    write_corpus(tmp_path / "docs")

    def shown(*argv: str) -> list[dict[str, str]]:
        assert main(list(argv)) == 0
        return _lines(capsys.readouterr().err)

    ingest = shown("ingest", "docs")
    # 5 files; no total up front: the stream is read as it is ingested
    assert {"label": "ingest", "done": "5", "unit": "documents"}.items() <= ingest[-1].items()
    reindex = shown("reindex")
    assert {"label": "reindex", "done": "5", "total": "5", "pct": "100"}.items() <= reindex[-1].items()
    evaluation = shown("eval", "--dataset", str(write_beir(tmp_path / "tiny")), "--json")
    assert {line["label"] for line in evaluation} == {"ingest", "eval"}
    assert {"label": "eval", "done": "3", "total": "3", "unit": "queries"}.items() <= evaluation[-1].items()
    backup = shown("backup", "snapshot", "--collection", "semantic_index")
    rows = int(backup[-1]["total"])
    assert backup[-1]["done"] == str(rows) and rows > 5  # both versions' chunks
    assert shown("restore", "snapshot", "--uri", str(tmp_path / "restored.db"), "--force")[-1]["done"] == str(rows)

    for argv in (["ingest", "docs", "--quiet"], ["backup", "again", "-q"]):
        assert main(argv) == 0
        assert capsys.readouterr().err == ""


DOCUMENT_LINE = re.compile(
    r"^document big\.txt: (?P<done>\d+)/(?P<total>\d+) characters \(\d+ %\), "
    r"[\d.]+ characters/s, \d+ s(?:, ETA (?P<eta>\d+) s)?; (?P<chunks>\d+) chunks indexed, "
    r"(?P<tokens_per_s>\d+) tokens/s$"
)


@pytest.mark.slow
def test_one_large_document_shows_its_own_progress_in_a_log(
    tmp_path: Path, embedder, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single large document never advances the ingest's document count: its characters read, chunks indexed,
    tokens/s and ETA get lines of their own (stderr is not a terminal under capsys)."""
    monkeypatch.setattr(stages, "LARGE_DOCUMENT_CHARS", 50_000)  # rather than embedding a whole MiB
    monkeypatch.setenv(INTERVAL_VARIABLE, "0")
    text = varied_text(70_000)  # two windows of the chunker: the first read at once, the rest after batches
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "big.txt").write_text(text)
    config = make_config(tmp_path, str(tmp_path / "milvus.db"), ingestion={"record_batch_size": 16})
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config.model_dump(mode="json")))

    assert main(["--config", str(config_file), "ingest", str(tmp_path / "docs")]) == 0
    stderr = capsys.readouterr().err
    lines = [match.groupdict() for match in map(DOCUMENT_LINE.match, stderr.splitlines()) if match]
    assert len(lines) >= 2 and len({line["total"] for line in lines}) == 1, stderr
    total = int(lines[-1]["total"])
    assert "\r" not in stderr and len(text) <= total <= len(text) + len("big.txt\n\n"), stderr  # title, if put first
    under_way = [line for line in lines if int(line["done"]) < total]
    # Within the document: chunks already embedded and written, a throughput, and the time left for the rest.
    assert any(int(line["chunks"]) > 0 and int(line["tokens_per_s"]) > 0 and line["eta"] for line in under_way), stderr
    assert [int(line["chunks"]) for line in lines] == sorted(int(line["chunks"]) for line in lines)
    assert lines[-1]["done"] == lines[-1]["total"] and lines[-1]["eta"] is None  # the closing line: nothing left


@pytest.mark.slow
def test_rag_ingest_in_a_log_prints_plain_lines(tmp_path: Path) -> None:
    """Not a terminal (CI, a pipe): whole lines, no carriage returns, on stderr; stdout keeps only the result."""
    write_corpus(tmp_path / "docs")
    run = subprocess.run(
        [sys.executable, "-m", "rag_core.cli", "ingest", "docs"],
        cwd=tmp_path,
        env=_environment(tmp_path) | {INTERVAL_VARIABLE: "0"},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stderr
    assert "\r" not in run.stderr
    lines = _lines(run.stderr)
    assert {"label": "ingest", "done": "5", "unit": "documents"}.items() <= lines[-1].items()
    assert run.stdout.startswith("ingested 5 documents") and run.stdout.count("\n") == 1


def test_a_dagster_ingestion_logs_embedding_progress_as_lines(
    tmp_path: Path, embedder, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The embeddings asset shows progress from PROGRESS_MIN_ROWS chunks on (lowered here to this tiny corpus):
    in the step's log (stderr, not a terminal) as whole lines."""
    monkeypatch.setattr(stages, "PROGRESS_MIN_ROWS", 1)
    monkeypatch.setenv(INTERVAL_VARIABLE, "0")
    write_corpus(tmp_path / "docs")
    run = run_ingestion(make_config(tmp_path, str(tmp_path / "milvus.db")))
    chunks = run.metadata["embeddings"]["rows"]
    lines = [line for line in _lines_of(capsys.readouterr().err) if line["label"] == "embedding"]
    assert {"done": str(chunks), "total": str(chunks), "unit": "chunks", "pct": "100"}.items() <= lines[-1].items()


def test_a_bad_interval_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INTERVAL_VARIABLE, "soon")
    with pytest.raises(ValueError, match=f"{INTERVAL_VARIABLE} must be a number of seconds, got 'soon'"):
        ProgressReporter()
