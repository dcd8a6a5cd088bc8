"""The ``staging_runs`` log: staged rows of each staging run, to catch a source whose
row count falls sharply from one run to the next.

Examples:
    ```py
    record_staging_run(
        con, source_system="crm_contacts", run_id="r1",
        raw_rows=100, staged_rows=97, quarantined_rows=3,
    )
    row_count_change(con, "crm_contacts").exceeds_drop(0.5)
    ```
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from linkage.tables import STAGING_RUNS
from linkage.warehouse import quote, table_exists

__all__ = ["STAGING_RUNS_COLUMNS", "RowCountChange", "record_staging_run", "row_count_change"]

STAGING_RUNS_COLUMNS: dict[str, str] = {
    "source_system": "VARCHAR",
    "run_id": "VARCHAR",
    "staged_at": "TIMESTAMP",
    "raw_rows": "BIGINT",
    "staged_rows": "BIGINT",
    "quarantined_rows": "BIGINT",
}
"""Columns of ``staging_runs``: one row per materialization of a ``staged_<source>``."""


@dataclass(frozen=True)
class RowCountChange:
    """Staged rows of a source's latest staging run against the run before it."""

    source_system: str
    current: int | None
    previous: int | None
    current_run_id: str | None = None
    previous_run_id: str | None = None

    @property
    def drop(self) -> float | None:
        """Share of the previous rows that are gone (negative when rows grew); None
        without a previous run with rows."""
        if self.current is None or not self.previous:
            return None
        return (self.previous - self.current) / self.previous

    def exceeds_drop(self, max_drop: float) -> bool:
        """Whether staged rows fell by more than ``max_drop`` (a share of the previous).

        Examples:
            >>> RowCountChange("crm", current=40, previous=100).exceeds_drop(0.5)
            True
            >>> RowCountChange("crm", current=60, previous=100).exceeds_drop(0.5)
            False
            >>> RowCountChange("crm", current=60, previous=None).exceeds_drop(0.5)
            False
        """
        drop = self.drop
        return drop is not None and drop > max_drop


def record_staging_run(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    run_id: str,
    raw_rows: int,
    staged_rows: int,
    quarantined_rows: int,
) -> None:
    """Append one staging run of a source to ``staging_runs``, creating the table if missing.

    Examples:
        ```py
        record_staging_run(
            con, source_system="crm_contacts", run_id=context.run_id,
            raw_rows=100, staged_rows=97, quarantined_rows=3,
        )
        ```
    """
    columns = ", ".join(f"{quote(c)} {t}" for c, t in STAGING_RUNS_COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {quote(STAGING_RUNS)} ({columns})")
    con.execute(
        f"INSERT INTO {quote(STAGING_RUNS)} "
        "(source_system, run_id, staged_at, raw_rows, staged_rows, quarantined_rows) "
        "VALUES (?, ?, now()::TIMESTAMP, ?, ?, ?)",
        [source_system, run_id, raw_rows, staged_rows, quarantined_rows],
    )


def row_count_change(con: duckdb.DuckDBPyConnection, source_system: str) -> RowCountChange:
    """Staged rows of the last two ``staging_runs`` of a source.

    Without the table or any run, both counts are None; on the first run ``previous``
    is None.

    Examples:
        ```py
        change = row_count_change(con, "crm_contacts")
        change.exceeds_drop(0.5)
        ```
    """
    if not table_exists(con, STAGING_RUNS):
        return RowCountChange(source_system, current=None, previous=None)
    runs = con.execute(
        f"SELECT staged_rows, run_id FROM {quote(STAGING_RUNS)} "
        "WHERE source_system = ? ORDER BY staged_at DESC, rowid DESC LIMIT 2",
        [source_system],
    ).fetchall()
    current, previous = (runs + [(None, None), (None, None)])[:2]
    return RowCountChange(
        source_system,
        current=None if current[0] is None else int(current[0]),
        previous=None if previous[0] is None else int(previous[0]),
        current_run_id=current[1],
        previous_run_id=previous[1],
    )
