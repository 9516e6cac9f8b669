"""Which versions of an alias a promotion keeps: the newest ``index.keep_versions`` complete ones, always the
serving one, and none of the candidates that were built but never served.

A candidate that failed the quality gate stays complete and unserved for inspection until the next promotion; it
is then dropped, so that ``rag rollback`` (the newest complete older version) returns to a version that served,
never to one the gate refused.
"""

from dataclasses import dataclass

from rag_core.index.manager import VERSION_SEPARATOR, MilvusIndexManager


@dataclass(frozen=True)
class Promotion:
    alias: str
    previous: str | None  # what the alias served before
    serving: str
    dropped: list[str]  # versions removed by retention


def roll_back(manager: MilvusIndexManager, alias: str, to: str | None = None) -> Promotion:
    """Serve ``to`` (default: the newest complete older version); nothing is dropped."""
    previous = manager.resolve(alias)
    return Promotion(alias=alias, previous=previous, serving=manager.rollback(alias, to=to), dropped=[])


def version_number(collection: str) -> int:
    return int(collection.rsplit(VERSION_SEPARATOR, 1)[1])


def promote(manager: MilvusIndexManager, alias: str, candidate: str, keep_versions: int) -> Promotion:
    """Move ``alias`` to ``candidate`` in one step, then apply the retention rule above."""
    previous = manager.resolve(alias)
    manager.promote(alias, candidate)
    return Promotion(
        alias=alias,
        previous=previous,
        serving=candidate,
        dropped=prune_versions(manager, alias, keep_versions, previous=previous),
    )


def prune_versions(
    manager: MilvusIndexManager, alias: str, keep_versions: int, *, previous: str | None = None
) -> list[str]:
    """Drop never-served candidates built after ``previous`` and complete versions beyond the newest
    ``keep_versions``; incomplete builds are left to ``rag versions --drop-incomplete``. Returns what was dropped."""
    if keep_versions < 1:
        raise ValueError(f"index.keep_versions must be at least 1 (the serving version), got {keep_versions}.")
    serving = manager.resolve(alias)
    complete = [v for v in manager.versions(alias) if manager.state(v).complete]
    after = version_number(previous) if previous and previous.startswith(f"{alias}{VERSION_SEPARATOR}") else None
    refused = [v for v in complete if after is not None and after < version_number(v) < version_number(serving)]
    kept = [v for v in complete if v not in refused]
    beyond = [v for v in kept[: max(len(kept) - keep_versions, 0)] if v != serving]
    dropped = refused + beyond
    for name in dropped:
        manager.drop_version(name)
    return dropped
