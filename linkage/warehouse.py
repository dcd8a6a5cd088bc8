"""Small helpers over the embedded DuckDB warehouse: identifiers, counts, tables.

Values always travel as query parameters; names are quoted with :func:`quote`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from linkage.errors import MeldError


class WarehouseBusyError(MeldError, RuntimeError):
    """The warehouse file is locked, usually by a running pipeline."""


@contextmanager
def open_warehouse(
    path: Path, *, read_only: bool, error: type[Exception] = WarehouseBusyError
) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for a command; a lock held by a running pipeline becomes
    ``error`` with a message that says what to do.

    Examples:
        ```py
        with open_warehouse(project.warehouse, read_only=True) as con:
            con.execute("SELECT count(*) FROM customer_clusters").fetchall()
        ```
    """
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(str(path), read_only=read_only)
    except duckdb.IOException as exc:
        raise error(
            f"cannot open the warehouse {path} (is a pipeline run using it? "
            f"try again when it ends): {exc}"
        ) from exc
    try:
        yield con
    finally:
        con.close()


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
