"""Nothing is dropped silently: every raw row of every source is in exactly one customer
or in quarantine.

Examples:
    ```py
    counts = record_conservation(con, ["crm_contacts", "webshop_accounts"])
    counts.passed, counts.unaccounted
    ```
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from linkage.tables import CUSTOMER_CLUSTERS, QUARANTINED_RECORDS, raw_table
from linkage.warehouse import quote, table_exists


@dataclass(frozen=True)
class RecordConservation:
    """Raw rows of all sources against clustered records and quarantined rows."""

    raw_rows: int
    clustered_records: int
    distinct_records: int
    quarantined_rows: int

    @property
    def unaccounted(self) -> int:
        return self.raw_rows - self.clustered_records - self.quarantined_rows

    @property
    def passed(self) -> bool:
        """Each raw row is clustered or quarantined, and no record is in two customers."""
        return self.unaccounted == 0 and self.clustered_records == self.distinct_records


def record_conservation(
    con: duckdb.DuckDBPyConnection, sources: Sequence[str]
) -> RecordConservation:
    """Count raw, clustered and quarantined rows over the whole flow."""
    raw = sum(
        con.execute(f"SELECT count(*) FROM {quote(raw_table(s))}").fetchall()[0][0]
        for s in sources
        if table_exists(con, raw_table(s))
    )
    clustered, distinct = con.execute(
        f"SELECT count(*), count(DISTINCT unique_id) FROM {CUSTOMER_CLUSTERS}"
    ).fetchall()[0]
    quarantined = con.execute(f"SELECT count(*) FROM {QUARANTINED_RECORDS}").fetchall()[0][0]
    return RecordConservation(
        raw_rows=int(raw),
        clustered_records=int(clustered),
        distinct_records=int(distinct),
        quarantined_rows=int(quarantined),
    )
