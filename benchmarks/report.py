"""Benchmarks write their figures as JSON under benchmarks/out/ (ignored by git) and print them."""

import json
from pathlib import Path
from typing import Any


def write_report(path: str | Path, figures: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2))
    print(json.dumps(figures, indent=2))
