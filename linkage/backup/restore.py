"""Restore a backup into a project: verify everything first, then swap the parts in.

:func:`verify_backup` reads every file of the backup against its manifest before
anything is touched, and refuses the backup naming each file that fails.
:func:`restore_backup` then copies each part next to its place in the project (checking
each hash again as it copies), lets the caller relocate the MLflow store's absolute
paths, and renames the parts into place. Whatever was there before is renamed aside to
``<name>.before-restore-<time>`` (never deleted), and only with ``force``; a failure
while swapping puts the old parts back.

Examples:
    ```py
    manifest = verify_backup(Path("backups/today"))
    with hold_run_lock(project.warehouse, run_id="restore-1", job="meld restore"):
        outcome = restore_backup(Path("backups/today"), manifest, ProjectParts.of(project),
                                 force=True)
    outcome.moved_aside, outcome.ledger.ok
    ```
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from linkage.audit.ledger import LedgerRow, LedgerVerification, ledger_rows, verify_ledger
from linkage.backup.manifest import (
    FILE_MODE,
    SECRET_MODE,
    BackupError,
    FileEntry,
    Manifest,
    copy_with_hash,
    read_manifest,
    verify_files,
)
from linkage.backup.parts import (
    BACKUP_ARTIFACTS,
    BACKUP_ERASURE_KEY,
    BACKUP_MLFLOW_ARTIFACTS,
    BACKUP_MLFLOW_STORE,
    BACKUP_WAREHOUSE,
    ProjectParts,
)
from linkage.tables import LEDGER_HEAD_FILE

logger = logging.getLogger(__name__)

Relocate = Callable[[Path, str, str], int]
"""Rewrites the absolute artifact paths in a staged MLflow store from an old root to a
new one; returns the number of values changed."""


@dataclass
class RestoreOutcome:
    """What a restore did.

    Attributes:
        manifest: The backup's manifest.
        restored: The project paths now holding the backup's parts.
        moved_aside: Where each replaced file or folder was renamed to.
        relocated: MLflow store values rewritten to the new artifact folder.
        dropped: Ledger rows the project's warehouse had that the restored one lacks:
            runs and erasures recorded after the backup was taken. Erasures among them
            must be done again: the restored data holds those persons. None when the
            replaced warehouse could not be read.
        ledger: The restored warehouse's ledger checked against its head file.
    """

    manifest: Manifest
    restored: list[Path] = field(default_factory=list)
    moved_aside: list[Path] = field(default_factory=list)
    relocated: int = 0
    dropped: list[LedgerRow] | None = field(default_factory=list)
    ledger: LedgerVerification | None = None


def verify_backup(folder: Path) -> Manifest:
    """Read a backup's manifest and check every file against it, touching nothing.

    Raises:
        BackupError: No manifest, or a file that is missing, changed or unlisted (named).
    """
    manifest = read_manifest(folder)
    try:
        verify_files(folder, manifest)
    except BackupError as exc:
        raise BackupError(f"{exc}; nothing was restored") from exc
    return manifest


def _stage_file(folder: Path, entry: FileEntry, target: Path, *, mode: int = FILE_MODE) -> None:
    if copy_with_hash(folder / entry.path, target, mode=mode) != entry.sha256:
        raise BackupError(
            f"backup file {entry.path} changed while it was being restored; nothing was restored"
        )


def _stage_tree(folder: Path, manifest: Manifest, prefix: str, target: Path) -> None:
    target.mkdir(parents=True)
    for entry in manifest.files:
        if entry.path.startswith(prefix + "/"):
            _stage_file(folder, entry, target / entry.path[len(prefix) + 1 :])


def _stage(
    folder: Path,
    manifest: Manifest,
    parts: ProjectParts,
    suffix: str,
    staged: dict[Path, Path | None],
) -> None:
    """Copy each part next to its place, filling ``staged`` with {project path: staged
    path, or None when the backup has no such part} as it goes."""
    listed = {entry.path: entry for entry in manifest.files}
    for relative, target, is_tree in (
        (BACKUP_WAREHOUSE, parts.warehouse, False),
        (BACKUP_ARTIFACTS, parts.artifacts, True),
        (BACKUP_MLFLOW_STORE, parts.mlflow_store, False),
        (BACKUP_MLFLOW_ARTIFACTS, parts.mlflow_artifacts, True),
        (BACKUP_ERASURE_KEY, parts.erasure_key, False),
    ):
        place = target.with_name(target.name + suffix)
        staged[target] = place
        target.parent.mkdir(parents=True, exist_ok=True)
        if is_tree:
            _stage_tree(folder, manifest, relative, place)
        elif relative in listed:
            mode = SECRET_MODE if relative == BACKUP_ERASURE_KEY else FILE_MODE
            _stage_file(folder, listed[relative], place, mode=mode)
        else:
            staged[target] = None


def _move_aside(path: Path, suffix: str, moves: list[tuple[Path, Path]]) -> None:
    if path.is_dir() and not any(path.iterdir()):
        path.rmdir()
        return
    aside = path.with_name(path.name + suffix)
    os.rename(path, aside)
    moves.append((path, aside))


def _undo(placed: list[tuple[Path, Path]], moves: list[tuple[Path, Path]]) -> list[str]:
    """Put the old parts back after a failed swap; returns what could not be put back."""
    steps = [(target, place) for place, target in reversed(placed)]
    steps += [(aside, old) for old, aside in reversed(moves)]
    failed = []
    for current, back in steps:
        try:
            os.rename(current, back)
        except OSError as exc:
            failed.append(f"{current} -> {back} ({exc.strerror})")
    return failed


def _swap(
    staged: dict[Path, Path | None], parts: ProjectParts, suffix: str
) -> tuple[list[Path], list[Path]]:
    """Rename the old parts aside and the staged ones in; undo everything on failure."""
    moves: list[tuple[Path, Path]] = []
    placed: list[tuple[Path, Path]] = []
    try:
        for old in [*staged, *parts.sidecars()]:
            if old.exists():
                _move_aside(old, suffix, moves)
        for target, place in staged.items():
            if place is not None:
                os.rename(place, target)
                placed.append((place, target))
    except OSError as exc:
        failed = _undo(placed, moves)
        if failed:
            raise BackupError(
                f"restore failed ({exc.strerror}) and could not put back: {'; '.join(failed)}"
            ) from exc
        raise
    return [target for _, target in placed], [aside for _, aside in moves]


def _dropped_rows(current: Path, restored: Path | None) -> list[LedgerRow] | None:
    """Ledger rows of the project's warehouse that the restored warehouse lacks (runs
    and erasures recorded after the backup was taken); None when the project's
    warehouse cannot be read (a damaged file, often the reason for the restore).

    Raises:
        BackupError: Another process has the project's warehouse open for writing.
    """
    if not current.is_file() or restored is None:
        return []
    with duckdb.connect(str(restored), read_only=True) as con:
        kept = {row.row_hash for row in ledger_rows(con)}
    try:
        con = duckdb.connect(str(current), read_only=True)
    except duckdb.Error as exc:
        if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
            raise BackupError(
                f"the warehouse {current} is open for writing in another process: stop it "
                "and restore again; nothing was changed"
            ) from exc
        logger.warning(
            "restore: cannot read the replaced warehouse %s (%s)", current, type(exc).__name__
        )
        return None
    try:
        return [row for row in ledger_rows(con) if row.row_hash not in kept]
    finally:
        con.close()


def _check_ledger(parts: ProjectParts) -> LedgerVerification:
    with duckdb.connect(str(parts.warehouse), read_only=True) as con:
        return verify_ledger(con, head_file=parts.artifacts / LEDGER_HEAD_FILE)


def restore_backup(
    folder: Path,
    manifest: Manifest,
    parts: ProjectParts,
    *,
    force: bool = False,
    relocate: Relocate | None = None,
) -> RestoreOutcome:
    """Put a verified backup's parts in the places ``parts`` names.

    The caller verifies the backup first (:func:`verify_backup`) and holds the
    warehouse's run lock.

    Args:
        folder: The backup folder.
        manifest: Its manifest, as :func:`verify_backup` returned it.
        parts: Where the project keeps its state (from the target project's config).
        force: Replace parts that exist, renaming them aside.
        relocate: Rewrites the staged MLflow store's artifact paths from the backup's
            MLflow artifact folder to the project's (see ``training.mlflow_backup``).

    Returns:
        What was restored and what was moved aside.

    Raises:
        BackupError: The project already holds data and ``force`` is not given, a
            file changed since it was verified, another process has the warehouse open
            for writing, or a file could not be written. The project is left as it was.
    """
    occupied = parts.occupied()
    if occupied and not force:
        raise BackupError(
            f"the project already holds {', '.join(str(p) for p in occupied)}: restore with "
            "--force to rename them aside (nothing is deleted), or restore into a fresh folder"
        )
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    staging = f".restoring-{stamp}"
    staged: dict[Path, Path | None] = {}
    outcome = RestoreOutcome(manifest=manifest)
    try:
        _stage(folder, manifest, parts, staging, staged)
        mlflow_store = staged.get(parts.mlflow_store)
        if relocate is not None and mlflow_store is not None:
            old_root = manifest.origins["mlflow_artifacts"]
            outcome.relocated = relocate(mlflow_store, old_root, str(parts.mlflow_artifacts))
        outcome.dropped = _dropped_rows(parts.warehouse, staged.get(parts.warehouse))
        outcome.restored, outcome.moved_aside = _swap(staged, parts, f".before-restore-{stamp}")
    except OSError as exc:
        raise BackupError(
            f"restoring {folder} failed ({exc.strerror or type(exc).__name__}: "
            f"{exc.filename}); the project was left as it was"
        ) from exc
    finally:
        for place in staged.values():
            if place is not None and place.exists():
                shutil.rmtree(place) if place.is_dir() else place.unlink()
    outcome.ledger = _check_ledger(parts)
    logger.info(
        "restore: %d parts from %s, %d moved aside",
        len(outcome.restored),
        folder,
        len(outcome.moved_aside),
    )
    return outcome
