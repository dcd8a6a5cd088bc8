"""Asset checks: properties the pipeline must keep, visible in the Dagster UI."""

import dagster as dg

from assets.resources import WarehouseResource
from linkage.config.project import ProjectConfig
from linkage.tables import CUSTOMER_CLUSTERS, GOLDEN_CUSTOMERS, QUARANTINED_RECORDS
from linkage.warehouse import quote, table_exists


def build_checks(project: ProjectConfig) -> list[dg.AssetChecksDefinition]:
    """Record conservation over the whole flow and id uniqueness of the customer view."""
    sources = list(project.sources)

    @dg.asset_check(asset=CUSTOMER_CLUSTERS, blocking=True)
    def customer_clusters_conserve_records(
        warehouse: WarehouseResource,
    ) -> dg.AssetCheckResult:
        """Every raw row of every source is in exactly one customer or in quarantine."""
        with warehouse.connect() as con:
            raw = sum(
                con.execute(f"SELECT count(*) FROM {quote('raw_' + s)}").fetchall()[0][0]
                for s in sources
                if table_exists(con, "raw_" + s)
            )
            clustered, distinct = con.execute(
                f"SELECT count(*), count(DISTINCT unique_id) FROM {CUSTOMER_CLUSTERS}"
            ).fetchall()[0]
            quarantined = con.execute(f"SELECT count(*) FROM {QUARANTINED_RECORDS}").fetchall()[0][
                0
            ]
        return dg.AssetCheckResult(
            passed=bool(raw == clustered + quarantined and clustered == distinct),
            metadata={
                "raw_rows": int(raw),
                "clustered_records": int(clustered),
                "quarantined_rows": int(quarantined),
                "unaccounted": int(raw - clustered - quarantined),
            },
        )

    @dg.asset_check(asset=GOLDEN_CUSTOMERS)
    def golden_customers_one_row_per_customer(
        warehouse: WarehouseResource,
    ) -> dg.AssetCheckResult:
        """golden_customers has exactly one row for each customer in customer_clusters."""
        with warehouse.connect() as con:
            golden, distinct, clustered = con.execute(
                f"SELECT (SELECT count(*) FROM {GOLDEN_CUSTOMERS}), "
                f"(SELECT count(DISTINCT customer_id) FROM {GOLDEN_CUSTOMERS}), "
                f"(SELECT count(DISTINCT customer_id) FROM {CUSTOMER_CLUSTERS})"
            ).fetchall()[0]
        return dg.AssetCheckResult(
            passed=bool(golden == distinct == clustered),
            metadata={"golden_rows": int(golden), "customers": int(clustered)},
        )

    return [customer_clusters_conserve_records, golden_customers_one_row_per_customer]
