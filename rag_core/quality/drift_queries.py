"""Where drift detection gets its queries: a file, the query log, or the corpus itself.

The query log keeps every query's embedding, and its text only with ``quality.log_query_text``: query drift
needs embeddings only, but probe queries are re-run, so they need text (a file, the log's texts, or titles).
"""

import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from rag_core.index.manager import VERSION_SEPARATOR, MilvusIndexManager
from rag_core.observability.query_log import read_query_log

TITLE_WORDS = 12  # a chunk without a title stands in with its first words
PROBE_FIELDS = ["position", "text", "metadata"]  # what ``probe_text`` reads of a row


@dataclass(frozen=True)
class LoggedQueries:
    """The newest queries the log holds for one alias (texts only for records that kept them)."""

    vectors: np.ndarray  # (n, dim), float32
    texts: list[str]


def read_queries_file(path: Path) -> list[str]:
    """One query per line, or a BEIR ``queries.jsonl`` (one ``{"_id": ..., "text": ...}`` object per line)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"Queries file {path} not found; give a file with one query per line or a BEIR queries.jsonl."
        )
    queries = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        if path.suffix == ".jsonl":
            try:
                line = str(json.loads(line)["text"])
            except (json.JSONDecodeError, KeyError, TypeError):
                raise ValueError(
                    f"{path}:{number}: expected a JSON object with a 'text' field, as in a BEIR queries.jsonl"
                ) from None
        queries.append(line.strip())
    return queries


def logged_queries(folder: Path, alias: str, *, since: datetime.datetime | None = None, limit: int) -> LoggedQueries:
    """The newest ``limit`` logged queries with an embedding, run against any version of ``alias`` after ``since``."""
    table = read_query_log(folder, start=since.date() if since else None)
    if table.num_rows:
        collection = table.column("collection")
        mask = pc.and_(
            pc.or_(pc.equal(collection, alias), pc.starts_with(collection, alias + VERSION_SEPARATOR)),
            pc.is_valid(table.column("query_vector")),
        )
        if since is not None:
            mask = pc.and_(mask, pc.greater(table.column("time"), since))
        table = table.filter(mask)
        table = table.slice(max(0, table.num_rows - limit))
    vectors = [np.asarray(v, dtype=np.float32) for v in table.column("query_vector").to_pylist()]
    dimension = len(vectors[0]) if vectors else 0
    return LoggedQueries(
        vectors=np.vstack(vectors) if vectors else np.zeros((0, dimension), np.float32),
        texts=[t for t in table.column("query_text").to_pylist() if t],
    )


def title_queries(manager: MilvusIndexManager, collection: str, limit: int, seed: int = 0) -> list[str]:
    """Probe queries made from the corpus: documents' titles, and chunks' first words (a corpus of a few long
    documents has few titles but many chunks)."""
    texts = {probe_text(row) for batch in manager.iter_rows(collection, PROBE_FIELDS) for row in batch}
    return sample(sorted(t for t in texts if t), limit, seed)


def probe_text(row: Mapping[str, Any]) -> str:
    """The query a chunk row stands for: its document's title on the first chunk, else the chunk's first words."""
    title = str((row["metadata"] or {}).get("title", "")).strip() if row["position"] == 0 else ""
    return title or " ".join(row["text"].split()[:TITLE_WORDS])


def sample(items: Sequence[str], limit: int, seed: int = 0) -> list[str]:
    """At most ``limit`` of ``items``, drawn with a fixed seed so the same input gives the same probes."""
    if len(items) <= limit:
        return list(items)
    chosen = np.random.default_rng(seed).choice(len(items), size=limit, replace=False)
    return [items[i] for i in sorted(chosen)]
