"""Every customer has exactly one golden record."""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from linkage.tables import CUSTOMER_CLUSTERS, GOLDEN_CUSTOMERS


@dataclass(frozen=True)
class GoldenCoverage:
    """Rows and distinct customers of ``golden_customers`` against the customers."""

    golden_rows: int
    golden_customers: int
    customers: int

    @property
    def passed(self) -> bool:
        return self.golden_rows == self.golden_customers == self.customers


def golden_coverage(con: duckdb.DuckDBPyConnection) -> GoldenCoverage:
    """Count golden rows, the customers they name, and the customers clustered."""
    golden, distinct, clustered = con.execute(
        f"SELECT (SELECT count(*) FROM {GOLDEN_CUSTOMERS}), "
        f"(SELECT count(DISTINCT customer_id) FROM {GOLDEN_CUSTOMERS}), "
        f"(SELECT count(DISTINCT customer_id) FROM {CUSTOMER_CLUSTERS})"
    ).fetchall()[0]
    return GoldenCoverage(
        golden_rows=int(golden), golden_customers=int(distinct), customers=int(clustered)
    )
