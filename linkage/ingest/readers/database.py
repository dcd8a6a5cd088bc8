"""Tables read by a database engine: Parquet files and DuckDB files through DuckDB, any
other database through SQLAlchemy, with its URL taken from an environment variable so no
password sits in the config. Every column is cast to text.

Examples:
    ```py
    spec = DatabaseSpec(kind="sqlalchemy", url_env="SHOP_DB_URL", table="sales.customers")
    delivery = read_database(spec, source_system="shop")
    delivery = read_parquet(Path("landing/pos.parquet"), source_system="pos")
    ```
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from linkage.errors import safe_error_text
from linkage.ingest.readers.delivery import Delivery, SourceError
from linkage.warehouse import quote

__all__ = ["DatabaseSpec", "read_database", "read_parquet"]


@dataclass(frozen=True)
class DatabaseSpec:
    """A table or query in another database.

    Attributes:
        kind: ``duckdb`` (a DuckDB file at ``path``) or ``sqlalchemy`` (any database
            whose SQLAlchemy URL is in the environment variable ``url_env``).
        table: Table to read, optionally ``schema.table``.
        query: A SELECT to run instead of a table.
    """

    kind: str
    path: Path | None = None
    url_env: str | None = None
    table: str | None = None
    query: str | None = None

    def describe(self) -> str:
        """A name for lineage and messages that never includes credentials."""
        where = f"duckdb:{self.path}" if self.kind == "duckdb" else f"sqlalchemy:${self.url_env}"
        return f"{where}#{self.table}" if self.table else f"{where}#query"


def _all_text(table: pa.Table) -> pa.Table:
    return pa.table({name: table.column(name).cast(pa.string()) for name in table.column_names})


def read_parquet(path: Path, *, source_system: str) -> Delivery:
    """Read a Parquet file with DuckDB, every column cast to text; each column's Parquet
    type is kept in ``source_types`` (see :mod:`~linkage.ingest.readers.column_types`)."""
    con = duckdb.connect()
    params = {"path": str(path)}
    try:
        types = _column_types(con, "SELECT * FROM read_parquet($path)", params)
        table = con.sql(
            "SELECT COLUMNS(*)::VARCHAR FROM read_parquet($path)", params=params
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise SourceError(
            f"source '{source_system}', file '{path}': cannot read: {safe_error_text(exc)}"
        ) from exc
    finally:
        con.close()
    return _from_table(_all_text(table), types)


def _column_types(
    con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, str] | None = None
) -> dict[str, str]:
    """Each column of a query and its DuckDB type, e.g. ``{"phone": "DOUBLE"}``."""
    return {str(row[0]): str(row[1]) for row in con.execute(f"DESCRIBE {sql}", params).fetchall()}


def _from_table(table: pa.Table, types: dict[str, str] | None = None) -> Delivery:
    rows = table.num_rows
    none: list[str | None] = [None] * rows
    return Delivery(table, list(range(1, rows + 1)), [None] * rows, none, none, none, types or {})


def _qualified(name: str) -> str:
    return ".".join(quote(part) for part in name.split("."))


def read_database(spec: DatabaseSpec, *, source_system: str) -> Delivery:
    """Read a table or query from a DuckDB file or a SQLAlchemy URL (from the environment).

    A DuckDB file is opened read-only, so a query cannot change it.

    Raises:
        SourceError: The file or environment variable is missing, or the read fails.
    """
    where = spec.describe()
    if spec.kind == "duckdb":
        if spec.path is None or not spec.path.is_file():
            raise SourceError(f"source '{source_system}': no DuckDB file at '{spec.path}'")
        sql = spec.query or f"SELECT * FROM {_qualified(spec.table or '')}"
        try:
            with duckdb.connect(str(spec.path), read_only=True) as con:
                types = _column_types(con, f"SELECT * FROM ({sql})")
                table = con.sql(f"SELECT COLUMNS(*)::VARCHAR FROM ({sql})").to_arrow_table()
        except duckdb.Error as exc:
            raise SourceError(
                f"source '{source_system}', {where}: cannot read: {safe_error_text(exc)}"
            ) from exc
        return _from_table(table, types)
    return _from_table(_read_sqlalchemy(spec, source_system=source_system))


def _read_sqlalchemy(spec: DatabaseSpec, *, source_system: str) -> pa.Table:
    import pandas as pd
    import sqlalchemy

    url = os.environ.get(spec.url_env or "", "")
    if not url:
        raise SourceError(
            f"source '{source_system}': environment variable {spec.url_env} with the "
            "database URL is not set"
        )
    try:
        engine = sqlalchemy.create_engine(url)
    except Exception as exc:  # noqa: BLE001 - any driver error; the URL is not echoed
        raise SourceError(
            f"source '{source_system}': the URL in {spec.url_env} is not usable: "
            f"{type(exc).__name__}"
        ) from None
    try:
        with engine.connect() as connection:
            if spec.table:
                schema, _, name = spec.table.rpartition(".")
                table = sqlalchemy.Table(
                    name, sqlalchemy.MetaData(), schema=schema or None, autoload_with=connection
                )
                frame = pd.read_sql(sqlalchemy.select(table), connection)
            else:
                frame = pd.read_sql(sqlalchemy.text(spec.query or ""), connection)
    except Exception as exc:  # noqa: BLE001 - add the source to any driver error
        raise SourceError(
            f"source '{source_system}', {spec.describe()}: cannot read: {safe_error_text(exc)}"
        ) from None
    finally:
        engine.dispose()
    text = frame.astype(object).where(frame.notna(), None)
    return pa.table(
        {
            str(column): pa.array(
                [None if v is None else str(v) for v in text[column]], type=pa.string()
            )
            for column in text.columns
        }
    )
