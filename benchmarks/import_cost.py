"""What importing the project costs, beside an earlier commit in the same run: the modules ``import rag_core.types``
and ``import rag_core`` load, and the wall time of ``rag --version`` and of a first ``rag query`` in a fresh process.

Both trees run from the same virtual environment (``PYTHONPATH`` picks the tree), one process per measurement,
the two trees interleaved run by run; the figures are medians. The query runs against one Milvus Lite index of this
project's docs/, built once by the current tree::

    .venv/bin/python -m benchmarks.import_cost [--against REF] [--runs N]
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks.report import OUT, write_report

REPO = Path(__file__).resolve().parents[1]
QUERY = "how does compaction purge deleted rows"


@contextmanager
def checkout(ref: str) -> Iterator[Path]:
    """``ref`` in a temporary worktree, removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="import-cost-"))
    subprocess.run(["git", "worktree", "add", "--detach", str(folder), ref], cwd=REPO, check=True, capture_output=True)
    try:
        yield folder
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", str(folder)], cwd=REPO, capture_output=True)


def run(tree: Path, args: list[str], cwd: Path) -> float:
    """Seconds one process takes, with ``tree`` first on the import path."""
    env = os.environ | {"PYTHONPATH": str(tree)}
    started = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def index_docs(work: Path) -> None:
    """One Milvus Lite index of this project's docs/ in ``work``, built by the current tree."""
    shutil.copytree(REPO / "docs", work / "corpus", ignore=shutil.ignore_patterns("img"))
    run(REPO, ["-m", "rag_core.cli", "ingest", "corpus", "-q"], work)


def modules(tree: Path, statement: str) -> int:
    """Modules loaded by ``statement`` in a fresh interpreter (-X importtime writes one line per module)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=tree,
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONPATH": str(tree)},
        check=True,
    )
    return sum(line.startswith("import time:") for line in done.stderr.splitlines()) - 1  # less the header


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--against", default="bd712dd", help="the earlier commit (default: before the layers)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="import-cost-work-"))
    try:
        index_docs(work)
        with checkout(args.against) as earlier:
            trees = {"earlier": earlier, "current": REPO}
            figures: dict[str, dict] = {name: {"samples": {"version": [], "query": []}} for name in trees}
            for name, tree in trees.items():
                figures[name]["modules_types"] = modules(tree, "import rag_core.types")
                figures[name]["modules_package"] = modules(tree, "import rag_core")
            for _ in range(args.runs):
                for name, tree in trees.items():
                    samples = figures[name]["samples"]
                    samples["version"].append(run(tree, ["-m", "rag_core.cli", "--version"], work))
                    samples["query"].append(run(tree, ["-m", "rag_core.cli", "query", QUERY, "--top-k", "3"], work))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name in figures:
        for what, values in figures[name]["samples"].items():
            figures[name][f"{what}_median_s"] = round(statistics.median(values), 2)
    result = {"against": args.against, "runs": args.runs, "query": QUERY, **figures}
    write_report(OUT / "import_cost.json", result)
    for name in figures:
        print(
            f"{name}: import rag_core.types {figures[name]['modules_types']} modules, import rag_core "
            f"{figures[name]['modules_package']}; rag --version {figures[name]['version_median_s']} s, "
            f"first rag query {figures[name]['query_median_s']} s (medians of {args.runs})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
