"""The run report's data-quality section: quarantined records and data-quality issues.

Both are counted by source and reason (or field and problem), never listed: their rows
hold record values.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import duckdb

from linkage.audit.run_report.markup import Html, html_table, missing_table, note
from linkage.tables import DATA_QUALITY_ISSUES, QUARANTINED_RECORDS
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)


def grouped_counts(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Mapping[str, str],
    *,
    count_label: str,
    table_id: str,
    empty: str,
) -> Html:
    """Rows of ``table`` counted by ``columns`` (name -> header): counts, never values."""
    if not table_exists(con, table):
        return missing_table(table)
    absent = [name for name in columns if name not in table_columns(con, table)]
    if absent:
        return note(f"Table {table} has no column {', '.join(absent)}: it is left out.")
    names = ", ".join(quote(name) for name in columns)
    rows = con.execute(
        f"SELECT {names}, count(*) FROM {quote(table)} GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    if not rows:
        return note(empty)
    total = ("all", *([""] * (len(columns) - 1)), sum(int(row[-1]) for row in rows))
    return html_table([*columns.values(), count_label], [*rows, total], table_id=table_id)


def quality_section(con: duckdb.DuckDBPyConnection) -> Html:
    """Quarantined records by source and reason, data-quality issues by field and problem."""
    return Html(
        "<h3>Quarantined records</h3>"
        + grouped_counts(
            con,
            QUARANTINED_RECORDS,
            {"source_system": "source", "reason": "reason"},
            count_label="records",
            table_id="quarantine",
            empty="No record was quarantined.",
        )
        + "<h3>Data-quality issues (values set aside, records kept)</h3>"
        + grouped_counts(
            con,
            DATA_QUALITY_ISSUES,
            {"source_system": "source", "field": "field", "problem": "issue"},
            count_label="values",
            table_id="quality-issues",
            empty="No data-quality issue was found.",
        )
    )
