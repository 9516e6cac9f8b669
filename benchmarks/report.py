"""Benchmarks write their figures as JSON under benchmarks/out/ and print them; ``render_results`` turns those
files into benchmarks/RESULTS.md. Every file records how it was made (``meta``): the command, when, on what CPU,
at which commit."""

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "out"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], capture_output=True, text=True, check=True, cwd=Path(__file__).resolve().parents[1]
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return ""


def run_metadata() -> dict[str, Any]:
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    program = f"python -m {spec.name}" if spec and spec.name else Path(sys.argv[0]).name
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    memory_gib = None
    try:
        memory_gib = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        pass
    return {
        "command": " ".join([program, *map(shlex.quote, sys.argv[1:])]),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": memory_gib,
        "python": platform.python_version(),
        "commit": commit + (" (with uncommitted changes)" if dirty else ""),
    }


def write_report(path: str | Path, figures: Any) -> None:
    """``figures`` with a ``meta`` entry (a list of figures goes under ``results``)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = figures if isinstance(figures, dict) else {"results": figures}
    document = {"meta": run_metadata(), **{k: v for k, v in body.items() if k != "meta"}}
    path.write_text(json.dumps(document, indent=2) + "\n")
    print(json.dumps(document, indent=2))


@dataclass(frozen=True)
class PeakRss:
    result: Any
    seconds: float
    before_mb: float
    peak_mb: float

    @property
    def growth_mb(self) -> float:
        return self.peak_mb - self.before_mb


def peak_rss(work: Callable[[], Any]) -> PeakRss:
    """``work()`` timed, with this process's peak RSS sampled every 10 ms: ``ru_maxrss`` keeps only the process's
    all-time high, which loading a model or Milvus Lite may already have set."""
    import gc
    import threading
    import time

    import psutil

    process = psutil.Process()
    gc.collect()
    before = process.memory_info().rss
    peak, done = [before], threading.Event()

    def sample() -> None:
        while not done.wait(0.01):
            peak[0] = max(peak[0], process.memory_info().rss)

    sampler = threading.Thread(target=sample)
    sampler.start()
    started = time.perf_counter()
    try:
        result = work()
    finally:
        seconds = time.perf_counter() - started
        done.set()
        sampler.join()
    return PeakRss(result, seconds, before / 2**20, peak[0] / 2**20)
