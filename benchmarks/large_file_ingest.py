"""One large text file through ``rag ingest``, as a user runs it: wall time, peak RSS, the progress it prints when its
output is not a terminal, and where the time goes.

A generated English-like file of ``--size-mb`` (``benchmarks.memory_large_document.generate``) is ingested into a
fresh folder by a fresh process with ``--precision`` (the ONNX backend), twice:
  1. plain: wall time, peak RSS (the child's ``ru_maxrss``), and every progress line on stderr with the time it
     arrived (the largest gap between two lines is the figure for "progress every 10 s");
  2. under cProfile (``--no-profile`` skips it): the time by stage, each a function's cumulative time in the
     profile: read (the loader), chunk (the chunker, less its tokenisation), tokenise (chunker and encoder),
     encode (ONNX Runtime's ``run``), pool (the encoder's own numpy around it), write (upserts) and finish (the
     version's completion: promotion, drift snapshot, client-side index). cProfile slows Python code, the chunker
     most: the stage shares are of the profiled run, the wall time of the plain one.

    .venv/bin/python -m benchmarks.large_file_ingest [--size-mb 30] [--precision int8]
"""

import argparse
import os
import pstats
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.memory_large_document import generate
from benchmarks.report import OUT, write_report

RESULT = re.compile(r"ingested 1 documents \((\d+) chunks\)")
TOKENS_PER_S = re.compile(r"(\d+) tokens/s")
STAGES = {  # stage: (file suffix, function) whose cumulative time it is
    "read": ("rag_core/ingest/loaders.py", "_read_file"),
    "chunk_with_tokenise": ("rag_core/ingest/chunking.py", "iter_chunks"),
    "tokenise_chunker": ("rag_core/models/exported_tokenizer.py", "__call__"),
    "tokenise_encoder": ("rag_core/models/exported_tokenizer.py", "batch"),
    "encode_batches": ("rag_core/models/onnx_encoder.py", "_encode_batch"),
    "encode": ("onnxruntime/capi/onnxruntime_inference_collection.py", "run"),
    "write": ("rag_core/index/manager.py", "upsert"),
    "finish": ("rag_core/index/sync.py", "finish_version"),
}


def _environment(precision: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("RAG__", "MILVUS_", "RAG_PROGRESS"))}
    return kept | {"RAG__EMBEDDING__BACKEND": "onnx", "RAG__EMBEDDING__PRECISION": precision}


def plain_run(folder: Path, file: Path, precision: str) -> dict:
    """Wall time, peak RSS and the progress lines, each with the second it arrived at."""
    folder.mkdir()
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, "-m", "rag_core.cli", "ingest", str(file.parent)],
        cwd=folder,
        env=_environment(precision),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = [(round(time.perf_counter() - started, 1), line.rstrip()) for line in process.stderr]
    out = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"rag ingest failed: {lines[-20:]}")
    times = [0.0] + [at for at, _ in lines]
    rates = TOKENS_PER_S.findall("\n".join(line for _, line in lines))
    return {
        "wall_s": round(wall, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "chunks": int(RESULT.search(out).group(1)),
        "result": out.strip(),
        "progress_lines": len(lines),
        "largest_gap_between_lines_s": round(max(b - a for a, b in zip(times, times[1:])), 1) if lines else None,
        "last_tokens_per_s": int(rates[-1]) if rates else None,
        "first_lines": [f"{at:>7} s  {line}" for at, line in lines[:3]],
        "last_lines": [f"{at:>7} s  {line}" for at, line in lines[-2:]],
    }


def profiled_run(folder: Path, file: Path, precision: str) -> dict:
    folder.mkdir()
    profile = folder / "ingest.prof"
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cProfile", "-o", str(profile), "-m", "rag_core.cli", "ingest", str(file.parent), "-q"],
        cwd=folder,
        env=_environment(precision),
        check=True,
        capture_output=True,
    )
    wall = time.perf_counter() - started
    cumulative: dict[str, float] = dict.fromkeys(STAGES, 0.0)
    for (path, _, name), (_, _, _, total, _) in pstats.Stats(str(profile)).stats.items():
        for stage, (suffix, function) in STAGES.items():
            if path.endswith(suffix) and name == function:
                cumulative[stage] += total
    stages = {
        "read": cumulative["read"],
        "chunk": cumulative["chunk_with_tokenise"] - cumulative["tokenise_chunker"],
        "tokenise": cumulative["tokenise_chunker"] + cumulative["tokenise_encoder"],
        "encode": cumulative["encode"],
        "pool": cumulative["encode_batches"] - cumulative["encode"] - cumulative["tokenise_encoder"],
        "write": cumulative["write"],
        "finish": cumulative["finish"],
    }
    stages["other"] = wall - sum(stages.values())
    return {
        "wall_s": round(wall, 1),
        "stage_s": {stage: round(seconds, 1) for stage, seconds in stages.items()},
        "share_of_encode": {stage: round(seconds / stages["encode"], 3) for stage, seconds in stages.items()},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=30)
    parser.add_argument("--precision", choices=("float32", "int8"), default="int8")
    parser.add_argument("--no-profile", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="large-file-"))
    try:
        file = work / "docs" / "large.txt"
        file.parent.mkdir()
        generate(file, int(args.size_mb * 1_000_000), seed=21)
        result = {
            "size_mb": args.size_mb,
            "file_bytes": file.stat().st_size,
            "precision": args.precision,
            "plain": plain_run(work / "plain", file, args.precision),
        }
        if not args.no_profile:
            result["profiled"] = profiled_run(work / "profiled", file, args.precision)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_report(OUT / "large_file_ingest.json", result)
    print(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
