"""Small helpers over the embedded DuckDB warehouse: opening it, identifiers, counts, tables.

Values always travel as query parameters; names are quoted with :func:`quote`.

Opening follows the run lock (:mod:`linkage.run_lock`): a write takes the lock (or
uses the one this process holds) and publishes a fresh snapshot when it ends; a read
uses the warehouse itself when nobody writes, and the published snapshot
(:mod:`linkage.snapshot`) while a run writes, saying so in one line.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from linkage.errors import MeldError
from linkage.run_lock import (
    COMMAND,
    RunLockInfo,
    command_run_id,
    held_run_lock,
    hold_run_lock,
    run_lock_holder,
)
from linkage.snapshot import compact_warehouse, publish_snapshot, snapshot_info, snapshot_path

logger = logging.getLogger(__name__)

WRITE_WAIT_SECONDS = 10.0
"""How long a write waits for a read command to close the warehouse file."""
_POLL_SECONDS = 0.1


class WarehouseBusyError(MeldError, RuntimeError):
    """The warehouse file is locked, usually by a running pipeline."""


def is_lock_conflict(exc: duckdb.Error) -> bool:
    """Whether DuckDB refused a file because another process holds its file lock."""
    return isinstance(exc, duckdb.IOException) and "lock" in str(exc).lower()


def connect_warehouse(
    path: Path, *, read_only: bool = False, wait: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """Connect to a DuckDB file, retrying for ``wait`` seconds while another process
    holds its file lock (a read command that has it open).

    Raises:
        duckdb.IOException: Still locked after ``wait`` seconds, or another I/O error.
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if not is_lock_conflict(exc) or time.monotonic() >= deadline:
                raise
        time.sleep(_POLL_SECONDS)


def _busy(error: type[Exception], path: Path, exc: duckdb.Error) -> Exception:
    if is_lock_conflict(exc):
        return error(
            f"cannot open the warehouse {path}: another process has the file open "
            "(a pipeline run or a read command?); try again when it ends"
        )
    return error(f"cannot open the warehouse {path}: {exc}")


def _writing_message(holder: RunLockInfo, path: Path) -> str:
    return f"{holder.describe()} is writing the warehouse {path}; try again when it ends"


@contextmanager
def _connected(
    path: Path, *, read_only: bool, error: type[Exception], wait: float = 0.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    try:
        con = connect_warehouse(path, read_only=read_only, wait=wait)
    except duckdb.IOException as exc:
        raise _busy(error, path, exc) from exc
    try:
        yield con
    finally:
        con.close()


@contextmanager
def _read_snapshot(
    path: Path, holder: RunLockInfo, error: type[Exception], notice: Callable[[str], None] | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Read the published snapshot because ``holder`` is writing ``path``."""
    snapshot = snapshot_path(path)
    if not snapshot.exists():
        raise error(_writing_message(holder, path))
    try:
        con = duckdb.connect(str(snapshot), read_only=True)
    except duckdb.IOException as exc:
        raise _busy(error, snapshot, exc) from exc
    try:
        info = snapshot_info(con)
        published = info.describe() if info is not None else f"the snapshot {snapshot}"
        line = f"{holder.describe()} is writing the warehouse; reading {published}"
        if notice is not None:
            notice(line)
        else:
            logger.warning("%s", line)
        yield con
    finally:
        con.close()


@contextmanager
def _read(
    path: Path, error: type[Exception], notice: Callable[[str], None] | None
) -> Iterator[duckdb.DuckDBPyConnection]:
    holder = None if held_run_lock(path) is not None else run_lock_holder(path)
    if holder is not None:
        with _read_snapshot(path, holder, error, notice) as con:
            yield con
        return
    try:
        con = connect_warehouse(path, read_only=True)
    except duckdb.IOException as exc:
        holder = run_lock_holder(path)  # a run may have started since
        if holder is None or not is_lock_conflict(exc):
            raise _busy(error, path, exc) from exc
    if holder is not None:
        with _read_snapshot(path, holder, error, notice) as con:
            yield con
        return
    try:
        yield con
    finally:
        con.close()


@contextmanager
def _write(
    path: Path, error: type[Exception], job: str, compact: bool
) -> Iterator[duckdb.DuckDBPyConnection]:
    if held_run_lock(path) is not None:  # this process is the writer (a run, an erase)
        with _connected(path, read_only=False, error=error, wait=WRITE_WAIT_SECONDS) as con:
            yield con
        if compact:
            compact_warehouse(path)
        return
    run_id = command_run_id()
    with hold_run_lock(path, run_id=run_id, job=job, kind=COMMAND):
        with _connected(path, read_only=False, error=error, wait=WRITE_WAIT_SECONDS) as con:
            yield con
        if compact:
            compact_warehouse(path)
        publish_snapshot(path, run_id=run_id, job=job)


@contextmanager
def open_warehouse(
    path: Path,
    *,
    read_only: bool,
    error: type[Exception] = WarehouseBusyError,
    notice: Callable[[str], None] | None = None,
    job: str = "meld command",
    compact: bool = False,
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for a command, following the run lock.

    A read (``read_only=True``) opens the warehouse itself when no run writes it; while
    one does, it opens the snapshot the last successful run published and says so in
    one line (to ``notice``, else a warning in the log); with no snapshot it raises
    ``error`` saying which run is writing. A write takes the run lock for the block
    (unless this process holds it already), so it is refused with
    :class:`linkage.run_lock.RunInProgressError` while a run writes, and publishes a
    fresh snapshot when the block ends without an error.

    Args:
        path: The warehouse file.
        read_only: Read, or write.
        error: The error to raise when the warehouse cannot be opened.
        notice: Where the line about reading a snapshot goes (a CLI prints it).
        job: The command that writes, named in the lock for others' messages.
        compact: After a write, rewrite the file so deleted rows leave no bytes behind
            (an erasure: DuckDB does not clear freed blocks).

    Examples:
        ```py
        with open_warehouse(project.warehouse, read_only=True) as con:
            con.execute("SELECT count(*) FROM customer_clusters").fetchall()
        with open_warehouse(project.warehouse, read_only=False, job="meld override") as con:
            ...
        ```
    """
    if read_only:
        with _read(path, error, notice) as con:
            yield con
    else:
        with _write(path, error, job, compact) as con:
            yield con


def quote(identifier: str) -> str:
    """Quote a table or column name for DuckDB SQL.

    Examples:
        >>> quote('email')
        '"email"'
        >>> quote('we"ird')
        '"we""ird"'
    """
    return '"' + identifier.replace('"', '""') + '"'


def table_exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    """Whether ``table`` exists in the main schema."""
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema = 'main' AND table_name = ?",
        [table],
    ).fetchall()
    return rows[0][0] > 0


def row_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    """Number of rows in ``table``."""
    return int(con.execute(f"SELECT count(*) FROM {quote(table)}").fetchall()[0][0])


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """Column names of ``table`` in order."""
    rows = con.execute(
        "SELECT column_name FROM information_schema.columns "
        "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return [row[0] for row in rows]


def column_schema(con: duckdb.DuckDBPyConnection, table: str) -> list[tuple[str, str]]:
    """(name, type) of each column of ``table``."""
    return [
        (row[0], row[1])
        for row in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position",
            [table],
        ).fetchall()
    ]


def drop_splink_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the intermediate ``__splink__`` tables Splink leaves in the warehouse."""
    names = [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = 'main' AND starts_with(table_name, '__splink__')"
        ).fetchall()
    ]
    for name in names:
        con.execute(f"DROP TABLE IF EXISTS {quote(name)}")
    views = [
        row[0]
        for row in con.execute(
            "SELECT view_name FROM duckdb_views() "
            "WHERE schema_name = 'main' AND starts_with(view_name, '__splink__')"
        ).fetchall()
    ]
    for name in views:
        con.execute(f"DROP VIEW IF EXISTS {quote(name)}")
