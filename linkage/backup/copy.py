"""Take a backup: copy each part of a project, consistently, into a new backup folder.

Each part is copied with the tool that gives a consistent copy of it:

- the warehouse with DuckDB's own ``COPY FROM DATABASE`` from a read-only attachment
  into a fresh file: one transaction, so the copy is one state of the warehouse (its
  write-ahead log included) even while readers have it open. No checkpoint of the
  source is needed, and none is made: the source is never opened for writing;
- the MLflow sqlite store with sqlite's online backup API (never a raw copy of a file
  that may be written);
- the artifact folders (and the erasure key file) file by file, each hashed while it
  is copied.

The caller holds the warehouse's run lock for the whole backup, so no run writes any
part meanwhile (see ``orchestration/cli/backup.py``). The backup is built in a sibling
folder and renamed into place when complete, with ``manifest.json`` written last.

Examples:
    ```py
    with hold_run_lock(project.warehouse, run_id="backup-1", job="meld backup"):
        manifest = create_backup(ProjectParts.of(project), Path("backups/today"),
                                 config_fingerprint=project.fingerprint())
    ```
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sqlite3
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import duckdb

from linkage.audit.ledger import ledger_rows, verify_ledger
from linkage.backup.manifest import (
    SECRET_MODE,
    BackupError,
    FileEntry,
    LedgerHead,
    Manifest,
    copy_with_hash,
    describe,
    write_manifest,
)
from linkage.backup.parts import (
    BACKUP_ARTIFACTS,
    BACKUP_CONFIG,
    BACKUP_ERASURE_KEY,
    BACKUP_MLFLOW_ARTIFACTS,
    BACKUP_MLFLOW_STORE,
    BACKUP_WAREHOUSE,
    ProjectParts,
)
from linkage.tables import LEDGER_HEAD_FILE
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

PRIVATE_FOLDER_MODE = 0o700


def meld_version() -> str | None:
    """The installed Meld version, None when Meld is not installed as a package."""
    try:
        return metadata.version("meld")
    except metadata.PackageNotFoundError:
        return None


def _table_counts(con: duckdb.DuckDBPyConnection, database: str) -> dict[str, int]:
    tables = con.execute(
        "SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ? "
        "ORDER BY schema_name, table_name",
        [database],
    ).fetchall()
    counts = {}
    for schema, table in tables:
        name = table if schema == "main" else f"{schema}.{table}"
        sql = f"SELECT count(*) FROM {quote(database)}.{quote(schema)}.{quote(table)}"
        counts[name] = int(con.execute(sql).fetchall()[0][0])
    return counts


def copy_warehouse(source: Path, target: Path) -> dict[str, int]:
    """Copy a DuckDB warehouse into a new file with ``COPY FROM DATABASE``.

    Args:
        source: The warehouse; attached read-only.
        target: The new file (must not exist).

    Returns:
        The row count of every table, checked equal in the source and the copy.

    Raises:
        BackupError: The warehouse is missing, unreadable or held open for writing by
            another process, or the copy's row counts differ from the source's.
    """
    if not source.is_file():
        raise BackupError(f"no warehouse at {source}: nothing to back up")
    target.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    try:
        try:
            con.execute("ATTACH ? AS meld_source (READ_ONLY)", [str(source)])
        except duckdb.Error as exc:
            if isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower():
                raise BackupError(
                    f"cannot open the warehouse {source} to back it up: another process "
                    "holds it open for writing; stop it and try again"
                ) from exc
            raise BackupError(
                f"cannot read the warehouse {source} to back it up ({type(exc).__name__}): "
                "is it a DuckDB file of this DuckDB version?"
            ) from exc
        con.execute("ATTACH ? AS meld_backup", [str(target)])
        con.execute("BEGIN TRANSACTION")
        con.execute("COPY FROM DATABASE meld_source TO meld_backup")
        expected = _table_counts(con, "meld_source")
        copied = _table_counts(con, "meld_backup")
        con.execute("COMMIT")
        con.execute("CHECKPOINT meld_backup")
    finally:
        con.close()
    if copied != expected:
        differ = sorted(
            k for k in expected.keys() | copied.keys() if expected.get(k) != copied.get(k)
        )
        raise BackupError(f"the warehouse copy differs from {source} in tables {differ[:10]}")
    if target.with_name(target.name + ".wal").exists():
        raise BackupError(f"the warehouse copy {target} kept a write-ahead log after closing")
    return copied


def copy_sqlite(source: Path, target: Path) -> None:
    """Copy a sqlite database with sqlite's online backup API (a consistent copy even
    while another process writes it)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        contextlib.closing(sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)) as src,
        contextlib.closing(sqlite3.connect(target)) as dst,
    ):
        src.backup(dst)
    with target.open("rb+") as handle:
        os.fsync(handle.fileno())


def copy_tree(source: Path, backup: Path, prefix: str) -> list[FileEntry]:
    """Copy every regular file under ``source`` to ``backup/prefix``, hashing as it goes.

    Symbolic links are not followed and not copied (each is logged).
    """
    entries: list[FileEntry] = []
    if not source.is_dir():
        return entries
    for path in sorted(source.rglob("*")):
        if path.is_symlink():
            logger.warning("backup: skipped symbolic link %s", path)
            continue
        if not path.is_file():
            continue
        relative = f"{prefix}/{path.relative_to(source).as_posix()}"
        digest = copy_with_hash(path, backup / relative)
        entries.append(FileEntry(relative, (backup / relative).stat().st_size, digest))
    return entries


def read_ledger_head(warehouse: Path, head_file: Path) -> LedgerHead:
    """The newest ledger row of a (copied) warehouse, and whether the chain verifies."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = ledger_rows(con)
        check = verify_ledger(con, head_file=head_file)
    tip = rows[-1] if rows else None
    return LedgerHead(
        seq=tip.seq if tip else 0,
        row_hash=tip.row_hash if tip else "",
        verified=check.ok,
        problems=list(check.problems),
    )


def _check_target(folder: Path) -> None:
    if folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise BackupError(f"{folder} exists and is not an empty folder: back up into a new one")


def _copy_parts(parts: ProjectParts, partial: Path) -> tuple[dict[str, int], list[FileEntry]]:
    tables = copy_warehouse(parts.warehouse, partial / BACKUP_WAREHOUSE)
    files = [describe(partial, BACKUP_WAREHOUSE)]
    files += copy_tree(parts.artifacts, partial, BACKUP_ARTIFACTS)
    if parts.mlflow_store.is_file():
        copy_sqlite(parts.mlflow_store, partial / BACKUP_MLFLOW_STORE)
        files.append(describe(partial, BACKUP_MLFLOW_STORE))
    else:
        logger.warning("backup: no MLflow store at %s yet", parts.mlflow_store)
    files += copy_tree(parts.mlflow_artifacts, partial, BACKUP_MLFLOW_ARTIFACTS)
    if parts.erasure_key.is_file():
        copy_with_hash(parts.erasure_key, partial / BACKUP_ERASURE_KEY, mode=SECRET_MODE)
        files.append(describe(partial, BACKUP_ERASURE_KEY))
    config = f"{BACKUP_CONFIG}/{parts.config_file.name}"
    copy_with_hash(parts.config_file, partial / config)
    files.append(describe(partial, config))
    return tables, files


def create_backup(parts: ProjectParts, folder: Path, *, config_fingerprint: str) -> Manifest:
    """Back up a project's parts into ``folder`` (new or empty), manifest last.

    The caller must hold the warehouse's run lock, so no run writes meanwhile.

    Args:
        parts: Where the project keeps its state.
        folder: The backup folder to create.
        config_fingerprint: The project config's fingerprint, for the manifest.

    Returns:
        The manifest written.

    Raises:
        BackupError: The folder is not new or empty, lies inside a part, a part
            cannot be copied consistently, or a file cannot be written. Nothing is
            left behind.
    """
    folder = folder.resolve()
    _check_target(folder)
    parts.check_outside(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    partial = folder.with_name(f".{folder.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        partial.mkdir(mode=PRIVATE_FOLDER_MODE)  # a backup holds personal data
        tables, files = _copy_parts(parts, partial)
        manifest = Manifest(
            meld_version=meld_version(),
            created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            config_fingerprint=config_fingerprint,
            config_path=str(parts.config_file),
            origins=parts.origins(),
            ledger=read_ledger_head(
                partial / BACKUP_WAREHOUSE, partial / BACKUP_ARTIFACTS / LEDGER_HEAD_FILE
            ),
            tables=tables,
            files=files,
        )
        write_manifest(partial, manifest)
        if folder.exists():
            folder.rmdir()
        os.rename(partial, folder)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        raise BackupError(
            f"cannot write the backup into {folder} ({exc.strerror or type(exc).__name__}: "
            f"{exc.filename}); nothing was kept"
        ) from exc
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    logger.info(
        "backup: %d files, %d bytes, ledger row %d, in %s",
        len(files),
        manifest.total_bytes,
        manifest.ledger.seq,
        folder,
    )
    return manifest
