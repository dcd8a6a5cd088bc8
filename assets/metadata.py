"""Metadata every table asset shows in the Dagster UI."""

from __future__ import annotations

from typing import Any

import dagster as dg
import duckdb

from linkage.warehouse import column_schema, row_count

_TYPE_NAMES = {"VARCHAR": "string", "BIGINT": "int", "INTEGER": "int", "DOUBLE": "float"}


def table_metadata(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    """Row count, table name and column schema of a warehouse table."""
    columns = [
        dg.TableColumn(name, _TYPE_NAMES.get(kind, kind.lower()))
        for name, kind in column_schema(con, table)
    ]
    return {
        "dagster/row_count": row_count(con, table),
        "dagster/table_name": f"warehouse.main.{table}",
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }
