"""Parquet files for the pipeline's tables, written from streams so memory follows the batch size.

A table is written to a temporary file and renamed into place when complete, so a crash never leaves a half
table behind and the previous version stays readable while the next one is being computed from it.
"""

import bisect
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

ROW_GROUP_SIZE = 4096


@dataclass
class BatchStream:
    """A table still to be computed: batches are produced only as the writer consumes them.

    ``summary`` is filled in by the producer as it goes and is complete once the batches are exhausted;
    ``trailer`` too, and it is stored with the table (what is only known at the end, e.g. the inputs skipped).
    """

    schema: pa.Schema
    batches: Iterable[pa.RecordBatch]
    summary: dict[str, Any] = field(default_factory=dict)
    trailer: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ParquetTable:
    """A written table, read lazily."""

    path: Path

    @property
    def file(self) -> pq.ParquetFile:
        return pq.ParquetFile(self.path)

    @property
    def num_rows(self) -> int:
        return self.file.metadata.num_rows

    @property
    def metadata(self) -> dict[str, str]:
        raw = self.file.schema_arrow.metadata or {}
        return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW:")}

    @property
    def trailer(self) -> dict[str, str]:
        """What the producer stored once all rows were written (``BatchStream.trailer``)."""
        raw = self.file.metadata.metadata or {}
        return {k.decode(): v.decode() for k, v in raw.items() if not k.startswith(b"ARROW:")}

    def iter_batches(self, batch_size: int, columns: list[str] | None = None) -> Iterator[pa.RecordBatch]:
        yield from self.file.iter_batches(batch_size=batch_size, columns=columns)

    def read_column(self, name: str) -> pa.ChunkedArray:
        return pq.read_table(self.path, columns=[name]).column(name)


class ParquetStore:
    """One folder, one ``NAME.parquet`` per table."""

    def __init__(self, base_dir: str | Path) -> None:
        self.base_dir = Path(base_dir)

    def path_for(self, name: str) -> Path:
        return self.base_dir / f"{name}.parquet"

    def get(self, name: str) -> ParquetTable | None:
        path = self.path_for(name)
        return ParquetTable(path) if path.is_file() else None

    def write(self, name: str, stream: BatchStream, metadata: dict[str, str] | None = None) -> ParquetTable:
        path = self.path_for(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".parquet.tmp")
        schema = stream.schema.with_metadata({**(stream.schema.metadata or {}), **(metadata or {})})
        with pq.ParquetWriter(temporary, schema, compression="zstd") as writer:
            for batch in stream.batches:
                if batch.num_rows:
                    writer.write_batch(
                        batch.cast(schema) if batch.schema != schema else batch, row_group_size=ROW_GROUP_SIZE
                    )
            if stream.trailer:
                writer.add_key_value_metadata(stream.trailer)
        os.replace(temporary, path)
        return ParquetTable(path)


class RowLookup:
    """Finds rows of a previous table by a key column, reading only the row groups it needs.

    Memory: the key column and one row group at a time, never the whole table's vectors.
    """

    def __init__(self, table: ParquetTable | None, key: str) -> None:
        self._file = table.file if table else None
        self._rows: dict[str, list[int]] = {}
        self._group_starts: list[int] = []
        self._cached: tuple[int, pa.Table] | None = None
        if table is not None:
            for i, value in enumerate(table.read_column(key).to_pylist()):
                self._rows.setdefault(value, []).append(i)
            start = 0
            for group in range(self._file.num_row_groups):
                self._group_starts.append(start)
                start += self._file.metadata.row_group(group).num_rows

    def __contains__(self, key: str) -> bool:
        return key in self._rows

    def take(self, keys: Iterable[str], *, first_only: bool = False) -> pa.Table:
        """The rows of every key, in the order of ``keys`` (each key's rows in their original order)."""
        indices = [i for key in keys for i in (self._rows[key][:1] if first_only else self._rows[key])]
        pieces = []
        for group, members in groupby(indices, key=lambda i: bisect.bisect_right(self._group_starts, i) - 1):
            offset = self._group_starts[group]
            pieces.append(self._group(group).take([i - offset for i in members]))
        return pa.concat_tables(pieces) if pieces else self._file.schema_arrow.empty_table()

    def _group(self, group: int) -> pa.Table:
        if self._cached is None or self._cached[0] != group:
            self._cached = (group, self._file.read_row_group(group))
        return self._cached[1]
