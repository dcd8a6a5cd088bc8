"""Households: customers who share a normalised address (and, if configured, a surname).

The address of a customer is the one its golden record chose; it is compared in its
matching form (street folded and abbreviations expanded, postcode normalised), keyed
on street and postcode, or street and city when the postcode is missing. Groups larger
than ``max_customers`` are not households (a care home, an office, a placeholder
address); their customers are listed so a steward can look. A customer without an
address has no household.

The groups written here are provisional; :mod:`linkage.cluster.stable_ids.assign` turns them into
``household_id`` values that stay put across runs.

Examples:
    ```py
    summary = build_household_groups(
        con,
        golden_table="golden_customers",
        records_table="customer_records",
        out_table="__household_groups",
        match_on="address",
        max_customers=12,
    )
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

from linkage.tables import OVERSIZED_HOUSEHOLDS
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

MATCH_ON: tuple[str, ...] = ("address", "address_and_last_name")

_ADDRESS_KEY = (
    "CASE WHEN r.street IS NOT NULL AND r.postcode IS NOT NULL "
    "THEN 'p|' || r.street || '|' || r.postcode "
    "WHEN r.street IS NOT NULL AND r.city IS NOT NULL "
    "THEN 'c|' || r.street || '|' || r.city END"
)
"""SQL over the records alias ``r``: street and postcode, or street and city when the
postcode is missing; NULL without a street."""


@dataclass(frozen=True)
class HouseholdGroups:
    """What grouping found."""

    customers_with_address: int
    groups: int
    multi_customer_groups: int
    oversized_groups: int
    customers_in_oversized_groups: int


def build_household_groups(
    con: duckdb.DuckDBPyConnection,
    *,
    golden_table: str,
    records_table: str,
    out_table: str,
    match_on: str = "address",
    max_customers: int = 12,
) -> HouseholdGroups:
    """Write ``out_table(customer_id, household_key, address_key, household_size)``.

    Args:
        con: Warehouse connection.
        golden_table: Golden records with ``customer_id`` and ``address_source``.
        records_table: Records (``customer_records``) with matching-form address columns.
        out_table: Table to (re)create: one row per customer that belongs to a household.
        match_on: ``address`` or ``address_and_last_name``.
        max_customers: Larger groups are left out (listed in ``oversized_households``).

    Raises:
        ValueError: ``match_on`` is not one of :data:`MATCH_ON`.
    """
    if match_on not in MATCH_ON:
        raise ValueError(f"households.match_on must be one of {list(MATCH_ON)}, not {match_on!r}")
    address_key = _ADDRESS_KEY
    household_key = (
        f"{address_key} || '|' || coalesce(r.last_name, '')"
        if match_on == "address_and_last_name"
        else address_key
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __meld_household_all AS "
        f"SELECT g.customer_id, {address_key} AS address_key, {household_key} AS household_key "
        f"FROM {quote(golden_table)} AS g "
        f"JOIN {quote(records_table)} AS r ON r.unique_id = g.address_source "
        f"WHERE ({address_key}) IS NOT NULL"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __meld_household_sized AS "
        "SELECT *, count(*) OVER (PARTITION BY household_key) AS household_size "
        "FROM __meld_household_all"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(out_table)} AS "
        "SELECT customer_id, household_key, address_key, household_size "
        "FROM __meld_household_sized WHERE household_size <= $max ORDER BY customer_id",
        {"max": max_customers},
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {OVERSIZED_HOUSEHOLDS} AS "
        "SELECT household_key, household_size, list(customer_id ORDER BY customer_id) AS customers "
        "FROM __meld_household_sized WHERE household_size > $max GROUP BY ALL "
        "ORDER BY household_size DESC",
        {"max": max_customers},
    )
    groups = _count_groups(con, max_customers)
    for table in ("__meld_household_all", "__meld_household_sized"):
        con.execute(f"DROP TABLE IF EXISTS {table}")
    if groups.oversized_groups:
        logger.warning(
            "%d address group(s) with more than %d customers were not made households",
            groups.oversized_groups,
            max_customers,
        )
    return groups


def _count_groups(con: duckdb.DuckDBPyConnection, max_customers: int) -> HouseholdGroups:
    """What grouping found, from the sized address groups."""
    row = con.execute(
        "SELECT count(*), count(DISTINCT household_key), "
        "count(DISTINCT household_key) FILTER (WHERE household_size > 1 "
        "AND household_size <= $max), "
        "count(DISTINCT household_key) FILTER (WHERE household_size > $max), "
        "count(*) FILTER (WHERE household_size > $max) FROM __meld_household_sized",
        {"max": max_customers},
    ).fetchall()[0]
    return HouseholdGroups(
        customers_with_address=int(row[0]),
        groups=int(row[1]) - int(row[3]),
        multi_customer_groups=int(row[2]),
        oversized_groups=int(row[3]),
        customers_in_oversized_groups=int(row[4]),
    )
