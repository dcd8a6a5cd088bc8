"""Mastering assets: the golden record of each customer."""

import dagster as dg

from assets.metadata import table_metadata
from linkage.mastering import build_golden_customers
from orchestration.resources import WarehouseResource

MASTERING_GROUP = "mastering"


@dg.asset(group_name=MASTERING_GROUP, kinds={"duckdb"}, deps=["customer_clusters"])
def golden_customers(warehouse: WarehouseResource) -> dg.MaterializeResult:
    """One row per customer: the best first and last name, date of birth, e-mail, phone
    and address across its records (the value most records agree on, then the most
    recent), each naming the source record it came from, with the record count and the
    source systems the customer appears in."""
    with warehouse.connect() as con:
        customers = build_golden_customers(
            con,
            records_table="customer_records",
            clusters_table="customer_clusters",
            out_table="golden_customers",
        )
        multi_source = con.execute(
            "SELECT count(*) FROM golden_customers WHERE len(sources) > 1"
        ).fetchall()[0][0]
        metadata = table_metadata(con, "golden_customers")
    return dg.MaterializeResult(
        metadata={
            **metadata,
            "customers": customers,
            "customers_in_several_sources": int(multi_source),
        }
    )
