"""Turns rag_core summaries into Dagster metadata: numbers stay plottable, lists become readable Markdown."""

from collections.abc import Mapping
from typing import Any

import dagster as dg

MAX_LISTED = 50


def to_metadata(summary: Mapping[str, Any]) -> dict[str, Any]:
    metadata: dict[str, Any] = {}
    for key, value in summary.items():
        if isinstance(value, list):
            lines = [f"- `{item}`" for item in value[:MAX_LISTED]]
            more = [f"- … and {len(value) - MAX_LISTED} more"] if len(value) > MAX_LISTED else []
            metadata[key] = dg.MetadataValue.md("\n".join(lines + more) or "none")
        else:
            metadata[key] = value
    return metadata
