"""The query log: one record per retrieval, appended to Parquet files partitioned by day.

It feeds drift detection, the monthly performance analysis and, later, retention and audit. Recording must not
slow queries down, so ``record`` only builds a small tuple and queues it; a background thread writes a file per
flush. Every process writes files of its own (``part-<pid>-<random>.parquet``, written under a temporary name and
renamed), so several processes append at once without a lock and a reader never sees a half-written file.
The query text is kept only when asked for (``quality.log_query_text``); otherwise a hash salted with a secret
kept in the log's folder, which tells repeated queries apart without revealing them.
"""

import atexit
import datetime
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
import uuid
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from rag_core.security.pii import redact, redact_details

log = logging.getLogger(__name__)
SALT_FILE = ".salt"
FLUSH_ROWS = 2048  # a flush comes early when this many records wait

SCHEMA = pa.schema(
    [
        pa.field("time", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("query_hash", pa.string(), nullable=False),
        pa.field("query_text", pa.string()),  # null unless quality.log_query_text
        pa.field("query_vector", pa.list_(pa.float32())),  # null for BM25-only queries
        pa.field("mode", pa.string()),
        pa.field("settings", pa.map_(pa.string(), pa.string())),
        pa.field("collection", pa.string()),
        pa.field("data_version", pa.int64()),
        pa.field("result_ids", pa.list_(pa.string())),
        pa.field("result_scores", pa.list_(pa.float32())),
        pa.field("latency_ms", pa.map_(pa.string(), pa.float32())),
        pa.field("cache_hit", pa.bool_()),
        pa.field("signals", pa.map_(pa.string(), pa.float32())),
    ]
)


class QueryLogError(OSError):
    """The query log's folder cannot be used; the message says which and what to set."""


@dataclass(frozen=True)
class QueryRecord:
    """What one retrieval leaves in the log (the text only when the log was asked to keep it)."""

    time: datetime.datetime
    query_id: str
    query_hash: str
    query_text: str | None
    query_vector: np.ndarray | None
    mode: str
    settings: Mapping[str, str]
    collection: str
    data_version: int
    result_ids: Sequence[str]
    result_scores: Sequence[float]
    latency_ms: Mapping[str, float]
    cache_hit: bool
    signals: Mapping[str, float]


class QueryLog:
    def __init__(self, folder: Path, *, keep_text: bool = False, flush_s: float = 1.0) -> None:
        self.folder, self.keep_text, self.flush_s = Path(folder), keep_text, flush_s
        self._salt = _salt(self.folder)
        self._pending: deque[QueryRecord] = deque()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._write_lock = threading.Lock()
        self._writer = threading.Thread(target=self._run, name="query-log-writer", daemon=True)
        self._writer.start()
        atexit.register(self.close)

    def query_hash(self, normalised_query: str) -> str:
        return hmac.new(self._salt, normalised_query.encode("utf-8"), hashlib.sha256).hexdigest()[:32]

    def record(
        self,
        *,
        normalised_query: str,
        query: str,
        query_vector: np.ndarray | None,
        mode: str,
        settings: Mapping[str, str],
        collection: str,
        data_version: int,
        result_ids: Sequence[str],
        result_scores: Sequence[float],
        latency_ms: Mapping[str, float],
        cache_hit: bool,
        signals: Mapping[str, float],
    ) -> str:
        """Queue one record (the hot path: no I/O, no redaction: the writer does that); returns its query id."""
        query_id = uuid.uuid4().hex
        self._pending.append(
            QueryRecord(
                time=datetime.datetime.now(datetime.UTC),
                query_id=query_id,
                query_hash=self.query_hash(normalised_query),
                query_text=query if self.keep_text else None,
                query_vector=query_vector,
                mode=mode,
                settings=settings,
                collection=collection,
                data_version=data_version,
                result_ids=result_ids,
                result_scores=result_scores,
                latency_ms=latency_ms,
                cache_hit=cache_hit,
                signals=signals,
            )
        )
        if len(self._pending) >= FLUSH_ROWS:
            self._wake.set()
        return query_id

    def flush(self) -> int:
        """Write what is queued now, one file per day it spans; returns the number of records written."""
        with self._write_lock:
            records = [self._pending.popleft() for _ in range(len(self._pending))]
            for day, rows in _by_day(records).items():
                self._write(day, rows)
            return len(records)

    def close(self) -> None:
        if not self._closed.is_set():
            self._closed.set()
            self._wake.set()
            self._writer.join(timeout=10)
            self.flush()

    def _run(self) -> None:
        while not self._closed.is_set():
            self._wake.wait(self.flush_s)
            self._wake.clear()
            try:
                self.flush()
            except OSError as error:  # a full disk must not stop queries; the records wait for the next flush
                log.warning("Could not write the query log under %s: %s", self.folder, error)

    def _write(self, day: datetime.date, records: list[QueryRecord]) -> None:
        """Kept text and the settings (a filter expression can quote an e-mail address) are PII-redacted here, off
        the query path."""
        table = pa.Table.from_pydict(
            {
                "time": [r.time for r in records],
                "query_id": [r.query_id for r in records],
                "query_hash": [r.query_hash for r in records],
                "query_text": [None if r.query_text is None else redact(r.query_text).text for r in records],
                "query_vector": [
                    None if r.query_vector is None else np.asarray(r.query_vector, np.float32) for r in records
                ],
                "mode": [r.mode for r in records],
                "settings": [list(redact_details(r.settings)[0].items()) for r in records],
                "collection": [r.collection for r in records],
                "data_version": [r.data_version for r in records],
                "result_ids": [list(r.result_ids) for r in records],
                "result_scores": [list(map(float, r.result_scores)) for r in records],
                "latency_ms": [list(r.latency_ms.items()) for r in records],
                "cache_hit": [r.cache_hit for r in records],
                "signals": [list(r.signals.items()) for r in records],
            },
            schema=SCHEMA,
        )
        partition = self.folder / f"date={day.isoformat()}"
        partition.mkdir(parents=True, exist_ok=True)
        name = f"part-{os.getpid()}-{uuid.uuid4().hex[:12]}.parquet"
        temporary = partition / f".{name}.tmp"
        pq.write_table(table, temporary, compression="zstd")
        os.replace(temporary, partition / name)


def read_query_log(folder: Path, *, start: datetime.date | None = None, end: datetime.date | None = None) -> pa.Table:
    """The records of the days from ``start`` to ``end`` (inclusive; either may be open), oldest first."""
    folder = Path(folder)
    if not any(folder.glob("date=*/*.parquet")):
        return SCHEMA.empty_table()
    dataset = ds.dataset(
        folder,
        format="parquet",
        schema=SCHEMA,
        partitioning=None,
        exclude_invalid_files=True,
        ignore_prefixes=[".", "_"],
    )
    expression = None
    for bound, compare in ((start, "__ge__"), (end, "__le__")):
        if bound is not None:
            edge = datetime.datetime.combine(bound, datetime.time(), datetime.UTC)
            edge = edge if compare == "__ge__" else edge + datetime.timedelta(days=1, microseconds=-1)
            clause = getattr(ds.field("time"), compare)(pa.scalar(edge, pa.timestamp("us", tz="UTC")))
            expression = clause if expression is None else expression & clause
    return dataset.to_table(filter=expression).sort_by("time")


def _by_day(records: list[QueryRecord]) -> dict[datetime.date, list[QueryRecord]]:
    days: dict[datetime.date, list[QueryRecord]] = {}
    for record in records:
        days.setdefault(record.time.date(), []).append(record)
    return days


def _salt(folder: Path) -> bytes:
    """This log's secret salt, made once (the first process to get there wins) and kept next to the records."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / SALT_FILE
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            for _ in range(100):  # another process may be writing it right now
                if len(text := path.read_text().strip()) == 32:
                    return bytes.fromhex(text)
                time.sleep(0.01)
            raise ValueError(f"{path} does not hold a salt; delete it to make a new one") from None
        with os.fdopen(fd, "w") as file:
            salt = secrets.token_hex(16)
            file.write(salt)
        return bytes.fromhex(salt)
    except (OSError, ValueError) as error:
        raise QueryLogError(
            f"The query log folder {folder} cannot be used ({error}); point quality.query_log_dir "
            "at a writable folder, or set quality.query_log: false."
        ) from None
