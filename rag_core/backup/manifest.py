"""The snapshot's table of contents: what it holds and the SHA-256 of every file, checked before a restore.

``manifest.json`` is written last, and ``manifest.sha256`` after it, so a backup cut short has no manifest and is
refused as truncated; a changed, missing or shortened file is refused by name before anything is touched.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FORMAT = 1
MANIFEST = "manifest.json"
MANIFEST_DIGEST = "manifest.sha256"
READ_BLOCK = 1 << 20


class SnapshotError(ValueError):
    """A snapshot is missing, truncated or corrupt; the message names the file and what is wrong with it."""


@dataclass(frozen=True)
class VersionEntry:
    """One collection version: its rows file, row count and every collection property (``rag.*`` ones too)."""

    collection: str
    rows: int
    rows_file: str
    properties: dict[str, str]
    index_params: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Manifest:
    created_at: str
    source_uri: str
    alias: str
    serving: str | None
    versions: list[VersionEntry]
    files: dict[str, dict[str, Any]]  # path under the snapshot -> {"sha256": ..., "bytes": ...}
    audit_file: str | None = None
    notes: list[str] = field(default_factory=list)
    format: int = FORMAT

    def write(self, folder: Path) -> None:
        text = json.dumps(asdict(self), indent=2, sort_keys=True)
        (folder / MANIFEST).write_text(text, encoding="utf-8")
        (folder / MANIFEST_DIGEST).write_text(hashlib.sha256(text.encode()).hexdigest() + "\n", encoding="utf-8")

    @classmethod
    def read(cls, folder: Path) -> "Manifest":
        """The manifest of ``folder``, after checking it and every file it lists; ``SnapshotError`` otherwise."""
        if not folder.is_dir():
            raise SnapshotError(f"No snapshot at {folder}: not a folder (give the DEST of an earlier `rag backup`)")
        path, digest_path = folder / MANIFEST, folder / MANIFEST_DIGEST
        if not path.is_file() or not digest_path.is_file():
            raise SnapshotError(
                f"Snapshot {folder} has no {MANIFEST} / {MANIFEST_DIGEST}: the backup did not finish "
                "(truncated); take a new one"
            )
        text = path.read_text(encoding="utf-8")
        if hashlib.sha256(text.encode()).hexdigest() != digest_path.read_text(encoding="utf-8").strip():
            raise SnapshotError(f"{path} does not match {MANIFEST_DIGEST}: the manifest was changed or corrupted")
        raw = json.loads(text)
        if raw.get("format") != FORMAT:
            raise SnapshotError(f"{path} has format {raw.get('format')!r}; this version reads format {FORMAT}")
        manifest = cls(**{**raw, "versions": [VersionEntry(**v) for v in raw["versions"]]})
        for name, expected in manifest.files.items():
            verify_file(folder / name, expected)
        return manifest


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": sha256_of(path), "bytes": path.stat().st_size}


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path: Path, expected: dict[str, Any]) -> None:
    """Raise ``SnapshotError`` when ``path`` is missing, of another size, or of another SHA-256 than recorded."""
    if not path.is_file():
        raise SnapshotError(f"Snapshot file {path} is missing (truncated snapshot); restore from an intact copy")
    size = path.stat().st_size
    if size != expected["bytes"]:
        raise SnapshotError(
            f"Snapshot file {path} has {size} bytes, the manifest recorded {expected['bytes']} "
            "(truncated or altered); restore from an intact copy"
        )
    if sha256_of(path) != expected["sha256"]:
        raise SnapshotError(
            f"Snapshot file {path} does not match its SHA-256 in the manifest (corrupted); restore from an intact copy"
        )
