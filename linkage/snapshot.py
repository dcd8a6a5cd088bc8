"""The published snapshot: a closed copy of the warehouse that reads use while a run writes.

At the end of each successful run (and of each ``meld`` command that writes) the
warehouse file is copied to ``<warehouse stem>.published.duckdb`` atomically: copied
with its write-ahead log to a temporary name, checkpointed there (so the copy is one
self-contained file), stamped with the run that published it (table
``published_snapshot``), synced to disk, then renamed over the previous snapshot. A
reader that opened the previous snapshot keeps reading it; the next reader gets the new
one. A kill at any point leaves the previous snapshot (and at worst a temporary file,
removed by the next publish).

Examples:
    ```py
    publish_snapshot(project.warehouse, run_id=run_id, job="meld_pipeline")
    with duckdb.connect(str(snapshot_path(project.warehouse)), read_only=True) as con:
        snapshot_info(con)   # SnapshotInfo(run_id=..., job=..., published_at=...)
    ```
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from linkage.durable import fsync_path
from linkage.tables import PUBLISHED_SNAPSHOT

logger = logging.getLogger(__name__)

SNAPSHOT_SUFFIX = ".published.duckdb"
WAL_SUFFIX = ".wal"
_TEMP_MARK = ".publishing-"


@dataclass(frozen=True)
class SnapshotInfo:
    """Which run published a snapshot, and when (UTC)."""

    run_id: str
    job: str
    published_at: datetime

    def describe(self) -> str:
        """The snapshot in words, for the one line a read prints.

        Examples:
            >>> SnapshotInfo("1f2e", "meld_pipeline", datetime(2026, 1, 2, 3, 4, 5)).describe()
            'the snapshot published by run 1f2e (job meld_pipeline) at 2026-01-02 03:04:05 UTC'
        """
        when = self.published_at.strftime("%Y-%m-%d %H:%M:%S")
        return f"the snapshot published by run {self.run_id} (job {self.job}) at {when} UTC"


def snapshot_path(warehouse: Path) -> Path:
    """Where a warehouse's published snapshot lives.

    Examples:
        >>> snapshot_path(Path("/data/warehouse.duckdb")).name
        'warehouse.published.duckdb'
    """
    return warehouse.with_name(warehouse.stem + SNAPSHOT_SUFFIX)


def _wal(path: Path) -> Path:
    return path.with_name(path.name + WAL_SUFFIX)


def _remove_leftovers(target: Path) -> None:
    """Temporary copies a killed publish left behind."""
    for leftover in target.parent.glob(f".{target.name}{_TEMP_MARK}*"):
        leftover.unlink(missing_ok=True)


def publish_snapshot(warehouse: Path, *, run_id: str, job: str) -> Path:
    """Publish the warehouse as it is now as the snapshot reads use while a run writes.

    Call it while holding the run lock, with no connection writing the warehouse.

    Args:
        warehouse: The DuckDB file.
        run_id: The run (or command) that publishes it.
        job: Its job (or command).

    Returns:
        The snapshot file.
    """
    target = snapshot_path(warehouse)
    _remove_leftovers(target)
    temp = target.with_name(f".{target.name}{_TEMP_MARK}{os.getpid()}")
    try:
        shutil.copyfile(warehouse, temp)
        if _wal(warehouse).exists():
            shutil.copyfile(_wal(warehouse), _wal(temp))
        con = duckdb.connect(str(temp))
        try:
            con.execute(
                f'CREATE OR REPLACE TABLE "{PUBLISHED_SNAPSHOT}" AS '
                "SELECT ?::VARCHAR AS run_id, ?::VARCHAR AS job, ?::TIMESTAMP AS published_at",
                [run_id, job, datetime.now(timezone.utc).replace(tzinfo=None)],
            )
            con.execute("CHECKPOINT")
        finally:
            con.close()
        _wal(temp).unlink(missing_ok=True)  # checkpointed: nothing left in it
        fsync_path(temp)
        os.replace(temp, target)
        fsync_path(target.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        _wal(temp).unlink(missing_ok=True)
        raise
    logger.info("published the warehouse snapshot %s for run %s", target, run_id)
    return target


def snapshot_info(con: duckdb.DuckDBPyConnection) -> SnapshotInfo | None:
    """The publishing run of the snapshot ``con`` reads; None for another database."""
    try:
        rows = con.execute(
            f'SELECT run_id, job, published_at FROM "{PUBLISHED_SNAPSHOT}" LIMIT 1'
        ).fetchall()
    except duckdb.CatalogException:
        return None
    return SnapshotInfo(*rows[0]) if rows else None


def compact_warehouse(warehouse: Path) -> None:
    """Rewrite the warehouse into a fresh file, so deleted rows leave no bytes behind.

    DuckDB reuses the blocks of deleted rows but does not clear them: an erased person's
    values stay readable in the file's free blocks until overwritten. ``COPY FROM
    DATABASE`` into a new file, then an atomic rename, leaves only live rows. Call it
    while holding the run lock, with no connection open on the warehouse.

    Args:
        warehouse: The DuckDB file.
    """
    temp = warehouse.with_name(f".{warehouse.name}.compacting-{os.getpid()}")
    temp.unlink(missing_ok=True)
    con = duckdb.connect()
    try:
        con.execute("ATTACH ? AS meld_live (READ_ONLY)", [str(warehouse)])
        con.execute("ATTACH ? AS meld_compact", [str(temp)])
        con.execute("COPY FROM DATABASE meld_live TO meld_compact")
        con.execute("CHECKPOINT meld_compact")
        con.execute("DETACH meld_compact")
        con.execute("DETACH meld_live")
        _wal(temp).unlink(missing_ok=True)
        fsync_path(temp)
        os.replace(temp, warehouse)
        _wal(warehouse).unlink(missing_ok=True)  # its content is in the copy
        fsync_path(warehouse.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        _wal(temp).unlink(missing_ok=True)
        raise
    finally:
        con.close()
    logger.info("compacted the warehouse %s", warehouse)
