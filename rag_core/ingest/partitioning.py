"""A corpus split into N buckets by a stable hash of document id, so N ingestion runs can go in parallel.

Each bucket is synced on its own (``ingestion.partitions``; Dagster partitions of the ingestion assets): its run
chunks, embeds, upserts and deletes only documents whose id hashes into it, so runs on N workers never touch each
other's rows. The hash is blake2b of the UTF-8 id, never Python's ``hash()``: it must give the same bucket in every
process, on every machine and after every restart, or a document would be indexed by two runs or pruned by one.

A new index version (first build, or changed settings) is filled by every bucket's run and served only when it
holds exactly the chunks of all of them (``finish_when_whole``): readers never see a version with buckets missing.
"""

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from rag_core.index.manager import MilvusIndexManager
from rag_core.index.sync import finish_version

KEY_SEPARATOR = "-of-"


def bucket_of(doc_id: str, partitions: int) -> int:
    """The bucket (0 .. partitions - 1) of a document id: the same in every process and on every machine."""
    if partitions < 1:
        raise ValueError(f"ingestion.partitions must be at least 1, got {partitions}.")
    digest = hashlib.blake2b(doc_id.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "big") % partitions


@dataclass(frozen=True)
class Partition:
    """One bucket of a corpus split ``count`` ways; its key (``"2-of-4"``) names the Dagster partition and the
    Parquet tables of its run, so tables of another split are never mistaken for this one's."""

    index: int
    count: int

    def __post_init__(self) -> None:
        if self.count < 1 or not 0 <= self.index < self.count:
            raise ValueError(
                f"No partition {self.index} of {self.count}: ingestion.partitions must be at least 1 and "
                "the index between 0 and partitions - 1."
            )

    @property
    def key(self) -> str:
        return f"{self.index}{KEY_SEPARATOR}{self.count}"

    @classmethod
    def from_key(cls, key: str) -> "Partition":
        index, separator, count = key.partition(KEY_SEPARATOR)
        if not separator or not index.isdigit() or not count.isdigit():
            raise ValueError(
                f"Partition key {key!r} is not of the form 'K{KEY_SEPARATOR}N' (e.g. '0{KEY_SEPARATOR}4')."
            )
        return cls(int(index), int(count))

    @classmethod
    def all(cls, count: int) -> list["Partition"]:
        return [cls(index, count) for index in range(count)]

    def owns(self, doc_id: str) -> bool:
        return bucket_of(doc_id, self.count) == self.index

    def table(self, name: str) -> str:
        """The name of this partition's copy of the table ``name`` (each run reuses only its own tables)."""
        return f"{name}__{self.key}"


def finish_when_whole(
    manager: MilvusIndexManager,
    alias: str,
    target: str,
    wanted: Iterable[str] | None,
    *,
    promote: Callable[[str], object] | None = None,
) -> bool:
    """Complete and serve the version ``target`` that the buckets' runs are filling, once it holds exactly
    ``wanted`` (the chunk ids of every bucket; None while some bucket has no embeddings yet). Returns whether it
    was served; otherwise the run of a bucket still to come finishes it.

    Two last runs finishing together may both serve it: promoting the same complete version twice is harmless.
    """
    if wanted is None:
        return False
    expected = set(wanted)
    if set(manager.list_chunk_ids(target)) != expected:
        return False
    finish_version(manager, alias, target, expected, promote=promote)
    return True
