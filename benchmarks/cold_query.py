"""A command-line query, cold and warm: ``rag query`` in a fresh process beside an earlier commit, against the median
warm query of one process, and where the cold process's import time goes.

One Milvus Lite index of this project's docs/ is built once by the current tree in a temporary folder. Then, the two
trees interleaved run by run (``PYTHONPATH`` picks the tree, one virtual environment):
  1. ``rag query`` in a fresh process: wall time, and the stages the command prints (``load`` is the model and the
     Milvus connection, once per process; the earlier tree has no such stage and reports its load as ``embed``);
  2. import time by top-level package of that same command (``python -X importtime``, each module's own time).
Then, with the current tree, the warm query: one process loads the engine, answers ``WARMUP`` queries, then times
``WARM_QUERIES`` distinct ones with the cache off; its median is what the goal is stated against:
cold wall <= 3 x warm median + 1 s (the process's start).

    .venv/bin/python -m benchmarks.cold_query [--against REF] [--runs N]
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from benchmarks.import_cost import checkout, index_docs
from benchmarks.report import OUT, write_report

REPO = Path(__file__).resolve().parents[1]
QUERY = "how does compaction purge deleted rows"
WARMUP, WARM_QUERIES = 5, 60
STAGES = re.compile(r"ms: (.*)\)")
IMPORT_LINE = re.compile(r"import time:\s+(\d+) \|\s+\d+ \|\s*(\S+)")
WARM_SCRIPT = """
import json, statistics, sys, time
from rag_core.config import load_config
from rag_core.lifecycle.context import RagContext
config = load_config()
config = config.model_copy(update={"retrieval": config.retrieval.model_copy(update={"cache_size": 0})})
engine = RagContext(config).engine()
queries = [line.strip() for line in sys.stdin if line.strip()]
for text in queries[:%(warmup)d]:
    engine.search(text)
samples = []
for text in queries[%(warmup)d:]:
    started = time.perf_counter()
    engine.search(text)
    samples.append((time.perf_counter() - started) * 1000)
print(json.dumps(samples))
"""


def _environment(tree: Path) -> dict[str, str]:
    return os.environ | {"PYTHONPATH": str(tree)}


def cold_query(tree: Path, work: Path) -> tuple[float, dict[str, float]]:
    """Wall seconds of one fresh ``rag query`` process, and the stage milliseconds it printed."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "rag_core.cli", "query", QUERY, "--top-k", "3"],
        cwd=work,
        env=_environment(tree),
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    stages = STAGES.search(done.stdout)
    printed = dict(part.rsplit(" ", 1) for part in stages.group(1).split(", ")) if stages else {}
    return wall, {stage: float(ms) for stage, ms in printed.items()}


def import_ms_by_package(tree: Path, work: Path) -> dict[str, float]:
    """Each module's own import time, summed by top-level package, for one ``rag query``."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "rag_core.cli", "query", QUERY, "--top-k", "3"],
        cwd=work,
        env=_environment(tree),
        check=True,
        capture_output=True,
        text=True,
    )
    spent: Counter[str] = Counter()
    for match in map(IMPORT_LINE.match, done.stderr.splitlines()):
        if match:
            spent[match.group(2).split(".")[0]] += int(match.group(1)) / 1000
    return dict(spent)


def warm_query_ms(work: Path) -> list[float]:
    queries = _queries(work / "corpus")
    done = subprocess.run(
        [sys.executable, "-c", WARM_SCRIPT % {"warmup": WARMUP}],
        cwd=work,
        env=_environment(REPO),
        input="\n".join(queries[: WARMUP + WARM_QUERIES]),
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _queries(corpus: Path) -> list[str]:
    """Distinct questions a reader of the docs might ask: each heading of the docs, as text."""
    headings = [
        line.lstrip("#").strip()
        for file in sorted(corpus.rglob("*.md"))
        for line in file.read_text(encoding="utf-8").splitlines()
        if line.startswith("#") and len(line.lstrip("#").strip()) > 8
    ]
    return list(dict.fromkeys(headings))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="43b1838", help="the earlier commit (default: before issue 21)")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cold-query-"))
    try:
        index_docs(work)
        with checkout(args.against) as earlier:
            trees = {"earlier": earlier, "current": REPO}
            for tree in trees.values():  # each tree's first process may export or quantise: not a cold query
                cold_query(tree, work)
            walls: dict[str, list[float]] = {name: [] for name in trees}
            stages: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
            for _ in range(args.runs):
                for name, tree in trees.items():
                    wall, printed = cold_query(tree, work)
                    walls[name].append(wall)
                    stages[name].append(printed)
            imports = {name: import_ms_by_package(tree, work) for name, tree in trees.items()}
        warm = warm_query_ms(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    warm_median = statistics.median(warm)
    goal_s = 3 * warm_median / 1000 + 1
    figures = {
        name: {
            "wall_median_s": round(statistics.median(walls[name]), 3),
            "walls_s": [round(w, 3) for w in walls[name]],
            "stage_medians_ms": {
                stage: round(statistics.median(s[stage] for s in stages[name] if stage in s), 1)
                for stage in dict.fromkeys(k for s in stages[name] for k in s)
            },
            "import_ms_total": round(sum(imports[name].values())),
            "import_ms_by_package": {
                package: round(ms) for package, ms in Counter(imports[name]).most_common() if ms >= 1
            },
        }
        for name in trees
    }
    result = {
        "against": args.against,
        "runs": args.runs,
        "query": QUERY,
        **figures,
        "warm_query_ms": {"median": round(warm_median, 1), "p95": round(statistics.quantiles(warm, n=20)[-1], 1)},
        "warm_queries": len(warm),
        "goal_s": round(goal_s, 3),
        "goal_met": figures["current"]["wall_median_s"] <= goal_s,
        "speedup": round(figures["earlier"]["wall_median_s"] / figures["current"]["wall_median_s"], 2),
    }
    write_report(OUT / "cold_query.json", result)
    print(json.dumps({k: v for k, v in result.items() if k not in trees}, indent=1))
    for name in trees:
        print(name, figures[name]["wall_median_s"], figures[name]["stage_medians_ms"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
