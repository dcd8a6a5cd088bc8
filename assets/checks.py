"""Asset checks: properties the pipeline must keep, visible in the Dagster UI."""

import dagster as dg

from assets.failures import failure_at
from assets.resources import WarehouseResource
from linkage.cluster.conservation import record_conservation
from linkage.config import ProjectConfig
from linkage.master.golden_coverage import golden_coverage
from linkage.tables import CUSTOMER_CLUSTERS, GOLDEN_CUSTOMERS


def build_checks(project: ProjectConfig) -> list[dg.AssetChecksDefinition]:
    """Record conservation over the whole flow and id uniqueness of the customer view."""
    sources = list(project.sources)

    @dg.asset_check(asset=CUSTOMER_CLUSTERS, blocking=True)
    def customer_clusters_conserve_records(
        warehouse: WarehouseResource,
    ) -> dg.AssetCheckResult:
        """Every raw row of every source is in exactly one customer or in quarantine."""
        with warehouse.connect() as con, failure_at():
            counts = record_conservation(con, sources)
        return dg.AssetCheckResult(
            passed=counts.passed,
            metadata={
                "raw_rows": counts.raw_rows,
                "clustered_records": counts.clustered_records,
                "quarantined_rows": counts.quarantined_rows,
                "unaccounted": counts.unaccounted,
            },
        )

    @dg.asset_check(asset=GOLDEN_CUSTOMERS)
    def golden_customers_one_row_per_customer(
        warehouse: WarehouseResource,
    ) -> dg.AssetCheckResult:
        """golden_customers has exactly one row for each customer in customer_clusters."""
        with warehouse.connect() as con, failure_at():
            coverage = golden_coverage(con)
        return dg.AssetCheckResult(
            passed=coverage.passed,
            metadata={"golden_rows": coverage.golden_rows, "customers": coverage.customers},
        )

    return [customer_clusters_conserve_records, golden_customers_one_row_per_customer]
