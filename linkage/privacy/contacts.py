"""Read what the deny list and the quality tables need from the rows being erased.

Examples:
    ```py
    stage_target(con, target, row_locations(con, target))
    emails, phones = erased_contacts(con, {"crm": {"email": "mail", "phone": "mobile"}})
    ```
"""

from __future__ import annotations

from collections.abc import Mapping

import duckdb

from linkage.privacy.plan import IDS, RAW_KEYS
from linkage.privacy.subject import ErasureTarget
from linkage.tables import CUSTOMER_RECORDS, raw_history_table, raw_table
from linkage.warehouse import quote, table_columns, table_exists

_ERASED = (
    f"(source_system || ':' || source_record_id) IN (SELECT v FROM temp.main.{IDS}) "
    f"OR (source_system || ':' || raw_row_id::VARCHAR) IN (SELECT v FROM temp.main.{RAW_KEYS})"
)


def row_locations(con: duckdb.DuckDBPyConnection, target: ErasureTarget) -> list[str]:
    """``<source>|<file>|<row number>`` of each erased raw row without id, to find its
    data-quality issues (which have no ``raw_row_id``)."""
    found: set[str] = set()
    by_source: dict[str, list[int]] = {}
    for source, raw_row_id in target.raw_rows:
        by_source.setdefault(source, []).append(raw_row_id)
    for source, raw_row_ids in by_source.items():
        for table in (raw_history_table(source), raw_table(source)):
            if not table_exists(con, table):
                continue
            rows = con.execute(
                f"SELECT source_file, source_row_number FROM {quote(table)} "
                "WHERE list_contains($ids, raw_row_id)",
                {"ids": raw_row_ids},
            ).fetchall()
            found |= {f"{source}|{file}|{row}" for file, row in rows}
    return sorted(found)


def erased_contacts(
    con: duckdb.DuckDBPyConnection, contact_columns: Mapping[str, Mapping[str, str]]
) -> tuple[set[str], set[str]]:
    """Every e-mail and phone (raw, every version, and standardised) of the rows being
    erased, read through the temporary tables of
    :func:`linkage.privacy.plan.stage_target`."""
    emails: set[str] = set()
    phones: set[str] = set()
    for source, columns in contact_columns.items():
        for table in (raw_history_table(source), raw_table(source)):
            if not table_exists(con, table):
                continue
            present = table_columns(con, table)
            for kind, found in (("email", emails), ("phone", phones)):
                column = columns.get(kind)
                if column in present:
                    rows = con.execute(
                        f"SELECT {quote(column)} FROM {quote(table)} WHERE {_ERASED}"
                    ).fetchall()
                    found |= {row[0] for row in rows if row[0]}
    if table_exists(con, CUSTOMER_RECORDS):
        present = table_columns(con, CUSTOMER_RECORDS)
        wanted = [c for c in ("email", "phone", "phone_national") if c in present]
        if wanted:
            rows = con.execute(
                f"SELECT {', '.join(quote(c) for c in wanted)} FROM {quote(CUSTOMER_RECORDS)} "
                f"WHERE (source_system || ':' || source_record_id) "
                f"IN (SELECT v FROM temp.main.{IDS})"
            ).fetchall()
            for row in rows:
                for column, value in zip(wanted, row, strict=True):
                    if value:
                        (emails if column == "email" else phones).add(value)
    return emails, phones
