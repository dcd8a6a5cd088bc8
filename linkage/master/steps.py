"""The mastering steps of a run, one call each: golden records, households and the
single customer view.

Examples:
    ```py
    golden = master_golden_customers(con, rules=resolve_rules({}), source_priority=["crm"])
    households = master_households(con, HouseholdSpec(), run_id="r1")
    view = master_customer_360(con)
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from linkage.atomic import transaction
from linkage.cluster.stable_ids.assign import assign_stable_ids
from linkage.cluster.stable_ids.matching import IdAssignment
from linkage.cluster.stable_ids.tables import HOUSEHOLD_ID_TABLES
from linkage.master.customer_view import build_customer_360
from linkage.master.golden import build_golden_customers
from linkage.master.households import HouseholdGroups, build_household_groups
from linkage.master.relationships import build_customer_orders
from linkage.tables import (
    CUSTOMER_360,
    CUSTOMER_CLUSTERS,
    CUSTOMER_HOUSEHOLDS,
    CUSTOMER_RECORDS,
    GOLDEN_CUSTOMERS,
    HOUSEHOLDS,
    PRODUCTS,
)

HOUSEHOLD_GROUPS_SCRATCH = "__meld_household_groups"
HOUSEHOLD_IDS_SCRATCH = "__meld_household_ids"


@dataclass(frozen=True)
class GoldenOutcome:
    """What :func:`master_golden_customers` built."""

    customers: int
    customers_in_several_sources: int


def master_golden_customers(
    con: duckdb.DuckDBPyConnection,
    *,
    rules: Mapping[str, str],
    source_priority: Sequence[str],
) -> GoldenOutcome:
    """``golden_customers``: one record per customer, field by field by its survivorship
    rule (see :func:`linkage.master.golden.build_golden_customers`)."""
    customers = build_golden_customers(
        con,
        records_table=CUSTOMER_RECORDS,
        clusters_table=CUSTOMER_CLUSTERS,
        out_table=GOLDEN_CUSTOMERS,
        rules=rules,
        source_priority=source_priority,
    )
    multi_source = con.execute(
        f"SELECT count(*) FROM {GOLDEN_CUSTOMERS} WHERE len(sources) > 1"
    ).fetchall()[0][0]
    return GoldenOutcome(customers=customers, customers_in_several_sources=int(multi_source))


@dataclass(frozen=True)
class HouseholdSpec:
    """Which customers form a household (the ``households`` section of the config)."""

    enabled: bool = True
    match_on: str = "address"
    max_customers: int = 12


@dataclass(frozen=True)
class HouseholdOutcome:
    """What :func:`master_households` built; None when households are disabled."""

    groups: HouseholdGroups | None
    assignment: IdAssignment | None


def _empty_household_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE {CUSTOMER_HOUSEHOLDS} (customer_id VARCHAR, household_id VARCHAR)"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {HOUSEHOLDS} (household_id VARCHAR, "
        "customers BIGINT, customer_ids VARCHAR[], street VARCHAR, "
        "postcode VARCHAR, city VARCHAR, country VARCHAR)"
    )


def _publish_households(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE {CUSTOMER_HOUSEHOLDS} AS "
        "SELECT g.customer_id, s.household_id, g.household_size AS household_customers "
        f"FROM {HOUSEHOLD_GROUPS_SCRATCH} AS g "
        f"JOIN {HOUSEHOLD_IDS_SCRATCH} AS s USING (customer_id) "
        "ORDER BY s.household_id, g.customer_id"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {HOUSEHOLDS} AS "
        "SELECT h.household_id, count(*) AS customers, "
        "list(h.customer_id ORDER BY h.customer_id) AS customer_ids, "
        "arg_min(g.street, g.customer_id) AS street, "
        "arg_min(g.postcode, g.customer_id) AS postcode, "
        "arg_min(g.city, g.customer_id) AS city, "
        "arg_min(g.country, g.customer_id) AS country "
        f"FROM {CUSTOMER_HOUSEHOLDS} AS h JOIN {GOLDEN_CUSTOMERS} AS g USING (customer_id) "
        "GROUP BY h.household_id ORDER BY h.household_id"
    )
    for table in (HOUSEHOLD_GROUPS_SCRATCH, HOUSEHOLD_IDS_SCRATCH):
        con.execute(f"DROP TABLE IF EXISTS {table}")


def master_households(
    con: duckdb.DuckDBPyConnection, spec: HouseholdSpec, *, run_id: str
) -> HouseholdOutcome:
    """``customer_households`` and ``households``: customers sharing a normalised address
    (see :func:`linkage.master.households.build_household_groups`), with household ids
    stable across runs (``household_id_history``). Disabled households leave both tables
    empty."""
    with transaction(con):  # households, their ids and history agree
        if not spec.enabled:
            _empty_household_tables(con)
            return HouseholdOutcome(groups=None, assignment=None)
        groups = build_household_groups(
            con,
            golden_table=GOLDEN_CUSTOMERS,
            records_table=CUSTOMER_RECORDS,
            out_table=HOUSEHOLD_GROUPS_SCRATCH,
            match_on=spec.match_on,
            max_customers=spec.max_customers,
        )
        assignment = assign_stable_ids(
            con,
            groups_table=HOUSEHOLD_GROUPS_SCRATCH,
            member_column="customer_id",
            group_column="household_key",
            out_table=HOUSEHOLD_IDS_SCRATCH,
            tables=HOUSEHOLD_ID_TABLES,
            run_id=run_id,
        )
        _publish_households(con)
        return HouseholdOutcome(groups=groups, assignment=assignment)


@dataclass(frozen=True)
class CustomerViewOutcome:
    """What :func:`master_customer_360` built."""

    customers: int
    customers_with_orders: int


def master_customer_360(con: duckdb.DuckDBPyConnection) -> CustomerViewOutcome:
    """``customer_360``, the single customer view (see
    :func:`linkage.master.customer_view.build_customer_360`)."""
    customers = build_customer_360(con)
    with_orders = con.execute(
        f"SELECT count(*) FROM {CUSTOMER_360} WHERE order_count > 0"
    ).fetchall()[0][0]
    return CustomerViewOutcome(customers=customers, customers_with_orders=int(with_orders))


@dataclass(frozen=True)
class OrdersOutcome:
    """What :func:`relate_orders` attributed."""

    orders: int
    attributed: int
    customers: int

    @property
    def unattributed(self) -> int:
        return self.orders - self.attributed


def relate_orders(con: duckdb.DuckDBPyConnection) -> OrdersOutcome:
    """``customer_orders``: every order with its buyer's customer and household (see
    :func:`linkage.master.relationships.build_customer_orders`). Without a product
    catalogue, an empty ``products`` table stands in."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {PRODUCTS} "
        "(sku VARCHAR, name VARCHAR, category VARCHAR, unit_price DECIMAL(18, 2))"
    )
    counts = build_customer_orders(con)
    return OrdersOutcome(
        orders=counts["orders"], attributed=counts["attributed"], customers=counts["customers"]
    )
