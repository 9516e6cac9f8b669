"""``rag ingest`` of SciFact documents as a user runs it, whole process, with each encoder side by side in one run:
torch (float32), ONNX Runtime float32 and ONNX Runtime int8 (``embedding.precision: int8``).

Each run is a fresh process ingesting the same ``--documents`` SciFact documents (one ``.txt`` file each: title,
blank line, abstract) into a fresh working folder (its own Milvus Lite file and data folder); the encoders
alternate run by run, and the figures are medians of ``--runs``. The ONNX export and its int8 copy are made before
the timed runs (a one-off per model and machine, reported apart). Peak RSS is the child's ``ru_maxrss``.

    .venv/bin/python -m benchmarks.ingest_process [--documents 400] [--runs 3]
"""

import argparse
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.offline import SCIFACT
from benchmarks.report import OUT, write_report

ENCODERS = {
    "torch": {"RAG__EMBEDDING__BACKEND": "torch", "RAG__EMBEDDING__PRECISION": "float32"},
    "onnx_float32": {"RAG__EMBEDDING__BACKEND": "onnx", "RAG__EMBEDDING__PRECISION": "float32"},
    "onnx_int8": {"RAG__EMBEDDING__BACKEND": "onnx", "RAG__EMBEDDING__PRECISION": "int8"},
}


def write_documents(folder: Path, count: int) -> None:
    folder.mkdir(parents=True)
    with gzip.open(SCIFACT / "corpus.jsonl.gz", "rt", encoding="utf-8") as corpus:
        for number, line in enumerate(corpus):
            if number == count:
                break
            record = json.loads(line)
            (folder / f"{record['_id']}.txt").write_text(f"{record['title']}\n\n{record['text']}\n", encoding="utf-8")


def ingest(folder: Path, documents: Path, environment: dict[str, str]) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MB) and the result line of one ``rag ingest`` process in a fresh ``folder``."""
    folder.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAG__", "MILVUS_"))} | environment
    started = time.perf_counter()
    with (folder / "stdout").open("w") as out, (folder / "stderr").open("w") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "rag_core.cli", "ingest", str(documents), "-q"],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=err,
        )
        _, status, usage = os.wait4(process.pid, 0)  # the child's own rusage: its peak RSS alone
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"rag ingest failed: {(folder / 'stderr').read_text()[-2000:]}")
    return seconds, usage.ru_maxrss / 1024, (folder / "stdout").read_text().strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=400)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ingest-process-"))
    try:
        documents = work / "documents"
        write_documents(documents, args.documents)
        one_off = {}
        for name, environment in ENCODERS.items():  # exports / quantises once, outside the timed runs
            one_off[name] = round(ingest(work / f"first-{name}", documents, environment)[0], 1)
        samples: dict[str, list[tuple[float, float, str]]] = {name: [] for name in ENCODERS}
        for run in range(args.runs):
            for name, environment in ENCODERS.items():
                samples[name].append(ingest(work / f"run{run}-{name}", documents, environment))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures = {
        name: {
            "wall_median_s": round(statistics.median(s for s, _, _ in runs), 2),
            "walls_s": [round(s, 2) for s, _, _ in runs],
            "peak_rss_mb": round(max(p for _, p, _ in runs)),
            "result": runs[-1][2],
        }
        for name, runs in samples.items()
    }
    torch_s = figures["torch"]["wall_median_s"]
    result = {
        "documents": args.documents,
        "runs": args.runs,
        **figures,
        "first_run_s": one_off,
        "ratio_vs_torch": {name: round(torch_s / figures[name]["wall_median_s"], 2) for name in ENCODERS},
        "goal_int8_ratio_vs_torch": 1.5,
    }
    write_report(OUT / "ingest_process.json", result)
    print(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
