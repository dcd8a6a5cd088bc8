"""Tables over every source: ``customer_records``, ``quarantined_records`` and
``data_quality_issues`` are the union of each source's staged, quarantine and quality
tables.

Examples:
    ```py
    union_tables(con, CUSTOMER_RECORDS, [staged_table(s) for s in sources], columns)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from linkage.warehouse import quote, table_columns, table_exists


def _select(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Mapping[str, str],
    optional: Sequence[str],
) -> str:
    present = set(table_columns(con, table))
    items = ", ".join(
        f"NULL::{kind} AS {quote(c)}" if c in optional and c not in present else quote(c)
        for c, kind in columns.items()
    )
    return f"SELECT {items} FROM {quote(table)}"


def union_tables(
    con: duckdb.DuckDBPyConnection,
    out_table: str,
    tables: Sequence[str],
    columns: Mapping[str, str],
    optional: Sequence[str] = (),
) -> dict[str, int]:
    """Replace ``out_table`` with the union of the ``tables`` that exist.

    Args:
        con: Warehouse connection.
        out_table: The table to (re)create.
        tables: One table per source; a source without one (nothing loaded yet) is
            left out.
        columns: Column name to DuckDB type of ``out_table``; an empty union still has
            them.
        optional: Columns (custom fields) that are NULL for tables lacking them.

    Returns:
        Rows per source system.
    """
    selects = [_select(con, t, columns, optional) for t in tables if table_exists(con, t)]
    if selects:
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(out_table)} AS " + " UNION ALL BY NAME ".join(selects)
        )
    else:
        typed = ", ".join(f"{quote(c)} {t}" for c, t in columns.items())
        con.execute(f"CREATE OR REPLACE TABLE {quote(out_table)} ({typed})")
    rows = con.execute(
        f"SELECT source_system, count(*) FROM {quote(out_table)} GROUP BY 1 ORDER BY 1"
    ).fetchall()
    return {str(source): int(count) for source, count in rows}
