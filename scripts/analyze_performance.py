"""The operations guide's ``python scripts/analyze_performance.py --period monthly``: ``rag perf-report``."""

import sys

from rag_core.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["perf-report", *sys.argv[1:]]))
