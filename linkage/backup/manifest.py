"""The manifest of a backup: every file with its size and SHA-256, and what the backup is of.

``manifest.json`` is written last, so a folder without one is not a (complete) backup.
:func:`verify_files` re-reads every file and names each one that is missing, changed or
not listed; restore refuses a backup it finds anything wrong with.

The manifest guards against corruption and accidental edits. Someone who rewrites a
file and its manifest entry together is not caught: keep the manifest's SHA-256 (which
``meld backup`` prints) apart from the backup when that matters.

Examples:
    ```py
    manifest = read_manifest(Path("backups/2024-06-01"))
    verify_files(Path("backups/2024-06-01"), manifest)   # raises BackupError naming a file
    manifest.ledger.seq, manifest.config_fingerprint
    ```
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from linkage.errors import MeldError

MANIFEST_FILE = "manifest.json"
MANIFEST_FORMAT = 1
CHUNK_BYTES = 1 << 20
PROBLEMS_SHOWN = 10
FILE_MODE = 0o644
SECRET_MODE = 0o600
"""Mode of the erasure key file, in a backup and restored."""


class BackupError(MeldError, RuntimeError):
    """A backup that cannot be taken, or a backup folder restore refuses."""


@dataclass(frozen=True)
class FileEntry:
    """One file of a backup: its path relative to the backup folder, size and SHA-256."""

    path: str
    size: int
    sha256: str


@dataclass(frozen=True)
class LedgerHead:
    """The ledger's newest row in the backed-up warehouse, and whether the chain checked out.

    Attributes:
        seq: Sequence number of the newest row (0 for an empty ledger).
        row_hash: Its hash (empty for an empty ledger).
        verified: Whether :func:`linkage.audit.ledger.verify_ledger` found the chain and
            the head file in agreement when the backup was taken.
        problems: What it found otherwise.
    """

    seq: int
    row_hash: str
    verified: bool
    problems: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Manifest:
    """What a backup holds and where it came from.

    Attributes:
        meld_version: Meld's version when the backup was taken.
        created_at: When (ISO 8601, UTC).
        config_fingerprint: :meth:`linkage.config.ProjectConfig.fingerprint` of the
            project backed up (it includes absolute paths, so a restored copy in another
            folder has a different one).
        config_path: The project config backed up.
        origins: Where each part lived (``warehouse``, ``artifacts``, ``mlflow_store``,
            ``mlflow_artifacts``), as absolute paths; restore relocates from these.
        ledger: The ledger head in the backed-up warehouse.
        tables: Row count of every table in the backed-up warehouse.
        files: Every file in the backup except the manifest.
        format: Manifest format version.
    """

    meld_version: str | None
    created_at: str
    config_fingerprint: str
    config_path: str
    origins: dict[str, str]
    ledger: LedgerHead
    tables: dict[str, int]
    files: list[FileEntry]
    format: int = MANIFEST_FORMAT

    @property
    def total_bytes(self) -> int:
        """Size of all files together."""
        return sum(f.size for f in self.files)

    def to_json(self) -> str:
        """The manifest as indented JSON text."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str, *, where: Path) -> Manifest:
        """Parse a manifest, raising :class:`BackupError` naming ``where`` when malformed."""
        try:
            data: dict[str, Any] = json.loads(text)
            if data.get("format") != MANIFEST_FORMAT:
                raise BackupError(
                    f"{where}: manifest format {data.get('format')!r}; this Meld reads "
                    f"format {MANIFEST_FORMAT}"
                )
            return cls(
                **{
                    **data,
                    "ledger": LedgerHead(**data["ledger"]),
                    "files": [FileEntry(**f) for f in data["files"]],
                }
            )
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise BackupError(
                f"{where}: not a readable backup manifest ({type(exc).__name__})"
            ) from exc


def hash_file(path: Path) -> str:
    """SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def copy_with_hash(source: Path, target: Path, *, mode: int = FILE_MODE) -> str:
    """Copy ``source`` to ``target`` (created with ``mode``, fsynced), returning the
    SHA-256 of the bytes copied."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    descriptor = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with source.open("rb") as src, os.fdopen(descriptor, "wb") as dst:
        while chunk := src.read(CHUNK_BYTES):
            digest.update(chunk)
            dst.write(chunk)
        dst.flush()
        os.fsync(dst.fileno())
    return digest.hexdigest()


def describe(folder: Path, relative: str) -> FileEntry:
    """The manifest entry of ``folder / relative`` as it is now."""
    path = folder / relative
    return FileEntry(path=relative, size=path.stat().st_size, sha256=hash_file(path))


def listed_files(folder: Path) -> list[str]:
    """Every regular file under ``folder`` except the manifest, as sorted POSIX paths."""
    found = [
        path.relative_to(folder).as_posix()
        for path in folder.rglob("*")
        if path.is_file() and not path.is_symlink()
    ]
    return sorted(name for name in found if name != MANIFEST_FILE)


def write_manifest(folder: Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` atomically (temporary file, fsync, rename)."""
    path = folder / MANIFEST_FILE
    partial = folder / f".{MANIFEST_FILE}.partial"
    with partial.open("w", encoding="utf-8") as out:
        out.write(manifest.to_json())
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    return path


def read_manifest(folder: Path) -> Manifest:
    """Read ``folder/manifest.json``.

    Raises:
        BackupError: The folder or its manifest is missing or unreadable.
    """
    path = folder / MANIFEST_FILE
    if not folder.is_dir():
        raise BackupError(f"no backup folder at {folder}")
    if not path.is_file():
        raise BackupError(
            f"{folder} has no {MANIFEST_FILE}: not a Meld backup, or one that did not finish"
        )
    return Manifest.from_json(path.read_text(encoding="utf-8"), where=path)


def verify_files(folder: Path, manifest: Manifest) -> None:
    """Check every file of the backup against its manifest entry.

    Raises:
        BackupError: A file is missing, has another size or SHA-256, or is not listed
            in the manifest; the message names each such file (the first ten).
    """
    problems: list[str] = []
    for entry in manifest.files:
        path = folder / entry.path
        if not path.is_file():
            problems.append(f"{entry.path}: missing")
        elif path.stat().st_size != entry.size:
            problems.append(
                f"{entry.path}: {path.stat().st_size} bytes, manifest says {entry.size}"
            )
        elif hash_file(path) != entry.sha256:
            problems.append(f"{entry.path}: SHA-256 differs from the manifest")
    listed = {entry.path for entry in manifest.files}
    problems += [
        f"{name}: not in the manifest" for name in listed_files(folder) if name not in listed
    ]
    if problems:
        shown = "; ".join(problems[:PROBLEMS_SHOWN])
        more = (
            f" (and {len(problems) - PROBLEMS_SHOWN} more)"
            if len(problems) > PROBLEMS_SHOWN
            else ""
        )
        raise BackupError(f"backup {folder} fails its manifest check: {shown}{more}")
