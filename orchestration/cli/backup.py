"""``meld backup`` and ``meld restore``: copy a project's state into a folder, and back.

A backup holds the warehouse, its artifacts folder (reports, snapshots, models, the
ledger head file), the MLflow sqlite store and the MLflow artifact folder, taken while
holding the warehouse's run lock so that no run writes meanwhile, and a manifest of
every file's SHA-256. Restore checks every file first, then swaps the parts into the
places the project config names (moving what was there aside, with ``--force``) and
moves the MLflow store's artifact paths to the new folder. ``docs/backup.md`` is the
guide.

Examples:
    ```sh
    meld backup /backups/meld-2024-06-01
    MELD_CONFIG=/srv/meld-copy/meld.yaml meld restore /backups/meld-2024-06-01
    meld restore /backups/meld-2024-06-01 --force   # into a project that holds data
    ```
"""

from __future__ import annotations

import argparse
import time
from contextlib import AbstractContextManager
from pathlib import Path

from linkage.backup import (
    BackupError,
    Manifest,
    ProjectParts,
    RestoreOutcome,
    create_backup,
    restore_backup,
    verify_backup,
)
from linkage.backup.manifest import MANIFEST_FILE, hash_file
from linkage.backup.parts import BACKUP_MLFLOW_STORE
from linkage.config import ProjectConfig, config_path_from_env, load_project
from linkage.run_lock import COMMAND, RunLock, command_run_id, hold_run_lock
from linkage.snapshot import publish_snapshot
from training.mlflow_backup import artifacts_outside, check_store, relocate_store

MEGABYTE = 1 << 20
ERASURE_STATUS = "erased"
"""The ledger status ``meld erase`` records (one of linkage.audit.ledger.STATUSES)."""


def register(commands: argparse._SubParsersAction) -> None:
    """Add ``backup`` and ``restore`` to the ``meld`` parser."""
    backup = commands.add_parser(
        "backup",
        help="copy the warehouse, artifacts and MLflow store into a new folder",
        description="Copy the warehouse, its artifacts, the MLflow store and artifacts "
        "into a new folder, with a manifest of hashes, while no run writes.",
    )
    backup.add_argument("folder", type=Path, help="new (or empty) folder for the backup")
    backup.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    backup.set_defaults(handler=_backup)
    restore = commands.add_parser(
        "restore",
        help="check a backup and put it in the places the project config names",
        description="Check every file of a backup against its manifest, then put the "
        "warehouse, artifacts and MLflow store where the project config says.",
    )
    restore.add_argument("folder", type=Path, help="a folder `meld backup` wrote")
    restore.add_argument("--config", help="project config (default: $MELD_CONFIG)")
    restore.add_argument(
        "--force",
        action="store_true",
        help="replace a project that holds data; the old files are renamed aside, not deleted",
    )
    restore.set_defaults(handler=_restore)


def _lock(project: ProjectConfig, job: str) -> AbstractContextManager[RunLock]:
    """The warehouse's run lock, held as a command (a killed backup is not a failed run)."""
    return hold_run_lock(project.warehouse, run_id=command_run_id(), job=job, kind=COMMAND)


def _backup(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    parts = ProjectParts.of(project)
    if not project.warehouse.is_file():
        raise BackupError(f"no warehouse at {project.warehouse}: nothing to back up")
    started = time.perf_counter()
    with _lock(project, "meld backup"):
        manifest = create_backup(parts, args.folder, config_fingerprint=project.fingerprint())
    folder = args.folder.resolve()
    print(_format_backup(folder, manifest, time.perf_counter() - started))
    store = folder / BACKUP_MLFLOW_STORE
    if store.is_file():
        for warning in artifacts_outside(store, manifest.origins["mlflow_artifacts"]):
            print(f"  WARNING: MLflow: {warning}")
    return 0


def _format_backup(folder: Path, manifest: Manifest, seconds: float) -> str:
    ledger = manifest.ledger
    lines = [
        f"backup of {manifest.config_path} written to {folder}",
        f"  {len(manifest.files)} files, {manifest.total_bytes / MEGABYTE:.1f} MB, "
        f"{len(manifest.tables)} warehouse tables, took {seconds:.1f}s",
        f"  ledger head  row #{ledger.seq} {ledger.row_hash[:16] or '(empty ledger)'}",
        f"  config hash  {manifest.config_fingerprint}, Meld {manifest.meld_version or 'n/a'}",
        f"  manifest     sha256 {hash_file(folder / MANIFEST_FILE)} "
        "(keep it apart from the backup to detect a rewritten manifest)",
    ]
    if not ledger.verified:
        lines.append("  WARNING: the ledger did not verify when it was backed up:")
        lines += [f"    {problem}" for problem in ledger.problems]
    return "\n".join(lines)


def _restore(args: argparse.Namespace) -> int:
    project = load_project(args.config or config_path_from_env())
    parts = ProjectParts.of(project)
    manifest = verify_backup(args.folder)  # every hash, before anything is touched
    project.warehouse.parent.mkdir(parents=True, exist_ok=True)
    with _lock(project, "meld restore") as lock:
        outcome = restore_backup(
            args.folder, manifest, parts, force=args.force, relocate=relocate_store
        )
        publish_snapshot(project.warehouse, run_id=lock.info.run_id, job=lock.info.job)
    problems = []
    if parts.mlflow_store.is_file():
        problems = check_store(
            project.mlflow.tracking_uri,
            experiment=project.mlflow.experiment,
            artifact_root=project.mlflow.artifact_location,
        )
    print(_format_restore(args.folder.resolve(), project, outcome, problems))
    ledger_ok = outcome.ledger is not None and outcome.ledger.ok
    return 0 if ledger_ok and not problems and not _dropped_erasures(outcome) else 1


def _dropped_erasures(outcome: RestoreOutcome) -> int:
    return sum(row.status == ERASURE_STATUS for row in outcome.dropped or [])


def _format_restore(
    folder: Path, project: ProjectConfig, outcome: RestoreOutcome, mlflow_problems: list[str]
) -> str:
    m = outcome.manifest
    lines = [
        f"restored {folder} (taken {m.created_at} by Meld {m.meld_version or 'n/a'}) "
        f"into the project {project.config_path}",
        f"  {len(m.files)} files checked against the manifest, {len(outcome.restored)} parts "
        "put in place",
    ]
    lines += [f"  {path}" for path in outcome.restored]
    if outcome.moved_aside:
        lines.append("  the project's previous files were renamed aside (delete them when sure):")
        lines += [f"    {path}" for path in outcome.moved_aside]
    if outcome.relocated:
        lines.append(
            f"  MLflow store: {outcome.relocated} artifact paths moved from "
            f"{m.origins['mlflow_artifacts']} to {project.mlflow.artifact_location}"
        )
    if m.config_fingerprint != project.fingerprint():
        lines.append(
            f"  config hash {project.fingerprint()} here, {m.config_fingerprint} in the "
            "backup (paths count: a project in another folder always differs)"
        )
    lines += _format_dropped(outcome)
    ledger = outcome.ledger
    if ledger is not None and ledger.ok:
        lines.append(f"  ledger intact: {ledger.rows} rows, head row #{ledger.head_seq}")
        lines += [f"    note: {note}" for note in ledger.notes]
    elif ledger is not None:
        lines.append(f"  ledger BROKEN: {len(ledger.problems)} problem(s) (meld verify-ledger)")
        lines += [f"    {problem}" for problem in ledger.problems]
    lines += [f"  MLflow store problem: {problem}" for problem in mlflow_problems]
    return "\n".join(lines)


def _format_dropped(outcome: RestoreOutcome) -> list[str]:
    """Ledger rows only the renamed-aside warehouse keeps; erasures must be done again."""
    if outcome.dropped is None:
        return [
            "  the replaced warehouse could not be read: check its ledger (renamed aside) for "
            "runs and erasures newer than the backup"
        ]
    if not outcome.dropped:
        return []
    lines = [
        f"  {len(outcome.dropped)} ledger row(s) of the replaced warehouse are not in the "
        "backup (recorded after it was taken; kept in the renamed-aside warehouse):"
    ]
    lines += [f"    #{row.seq} {row.run_id} {row.status}" for row in outcome.dropped]
    erasures = _dropped_erasures(outcome)
    if erasures:
        lines.append(
            f"  WARNING: {erasures} erasure(s) among them: the restored data holds those "
            "persons again and no longer refuses them; erase them again now"
        )
    return lines
