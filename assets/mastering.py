"""Mastering assets: golden records, households and the single customer view."""

import dagster as dg

from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.cluster.stable_ids import HOUSEHOLD_ID_TABLES, assign_stable_ids
from linkage.config.project import ProjectConfig
from linkage.master.customer_view import build_customer_360
from linkage.master.golden import build_golden_customers, resolve_rules
from linkage.master.households import build_household_groups
from linkage.tables import (
    CUSTOMER_360,
    CUSTOMER_CLUSTERS,
    CUSTOMER_HOUSEHOLDS,
    CUSTOMER_ORDERS,
    CUSTOMER_RECORDS,
    GOLDEN_CUSTOMERS,
)

MASTERING_GROUP = "mastering"
HOUSEHOLD_GROUPS = "__meld_household_groups"


def build_mastering_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """The golden customer records, chosen by the project's survivorship rules."""
    mastering = project.mastering

    @dg.asset(group_name=MASTERING_GROUP, kinds={"duckdb"}, deps=[CUSTOMER_CLUSTERS])
    def golden_customers(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """One row per customer: first and last name, date of birth, e-mail, phone,
        address (street, postcode, city, country from one record), loyalty card and
        customer number, each chosen by its survivorship rule (mastering.rules, else
        mastering.default_rule: most_frequent, most_recent, source_priority,
        most_complete or longest) and naming the record it came from (<field>_source).
        Names and address keep their accents and case. Also every distinct e-mail,
        phone and address, the record count, the sources and the source records. The
        rule used for each field is in golden_customers_rules."""
        rules = resolve_rules(mastering.rules, mastering.default_rule)
        with warehouse.connect() as con:
            customers = build_golden_customers(
                con,
                records_table=CUSTOMER_RECORDS,
                clusters_table=CUSTOMER_CLUSTERS,
                out_table=GOLDEN_CUSTOMERS,
                rules=rules,
                source_priority=mastering.source_priority,
            )
            multi_source = con.execute(
                f"SELECT count(*) FROM {GOLDEN_CUSTOMERS} WHERE len(sources) > 1"
            ).fetchall()[0][0]
            metadata = table_metadata(con, GOLDEN_CUSTOMERS)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "customers": customers,
                "customers_in_several_sources": int(multi_source),
                "survivorship_rules": dg.MetadataValue.json(rules),
                "source_priority": dg.MetadataValue.json(list(mastering.source_priority)),
            }
        )

    households = project.households

    @dg.asset(
        group_name=MASTERING_GROUP, kinds={"duckdb"}, deps=[golden_customers, CUSTOMER_RECORDS]
    )
    def customer_households(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """The household of each customer: customers sharing a normalised address (the
        street and postcode, else street and city, of their golden address; with
        households.match_on address_and_last_name also their last name). Household ids are
        stable across runs like customer ids (household_id_history). Address groups
        larger than households.max_customers are not households; they are listed in
        oversized_households. The households table has one row per household."""
        with warehouse.connect() as con:
            if not households.enabled:
                con.execute(
                    f"CREATE OR REPLACE TABLE {CUSTOMER_HOUSEHOLDS} "
                    "(customer_id VARCHAR, household_id VARCHAR)"
                )
                con.execute(
                    "CREATE OR REPLACE TABLE households (household_id VARCHAR, "
                    "customers BIGINT, customer_ids VARCHAR[], street VARCHAR, "
                    "postcode VARCHAR, city VARCHAR, country VARCHAR)"
                )
                return dg.MaterializeResult(metadata={"enabled": False})
            groups = build_household_groups(
                con,
                golden_table=GOLDEN_CUSTOMERS,
                records_table=CUSTOMER_RECORDS,
                out_table=HOUSEHOLD_GROUPS,
                match_on=households.match_on,
                max_customers=households.max_customers,
            )
            assignment = assign_stable_ids(
                con,
                groups_table=HOUSEHOLD_GROUPS,
                member_column="customer_id",
                group_column="household_key",
                out_table="__meld_household_ids",
                tables=HOUSEHOLD_ID_TABLES,
                run_id=context.run_id,
            )
            con.execute(
                f"CREATE OR REPLACE TABLE {CUSTOMER_HOUSEHOLDS} AS "
                "SELECT g.customer_id, s.household_id, g.household_size AS household_customers "
                f"FROM {HOUSEHOLD_GROUPS} AS g JOIN __meld_household_ids AS s USING (customer_id) "
                "ORDER BY s.household_id, g.customer_id"
            )
            con.execute(
                "CREATE OR REPLACE TABLE households AS "
                "SELECT h.household_id, count(*) AS customers, "
                "list(h.customer_id ORDER BY h.customer_id) AS customer_ids, "
                "arg_min(g.street, g.customer_id) AS street, "
                "arg_min(g.postcode, g.customer_id) AS postcode, "
                "arg_min(g.city, g.customer_id) AS city, "
                "arg_min(g.country, g.customer_id) AS country "
                f"FROM {CUSTOMER_HOUSEHOLDS} AS h JOIN {GOLDEN_CUSTOMERS} AS g USING (customer_id) "
                "GROUP BY h.household_id ORDER BY h.household_id"
            )
            for table in (HOUSEHOLD_GROUPS, "__meld_household_ids"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            metadata = table_metadata(con, CUSTOMER_HOUSEHOLDS)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "households": groups.groups,
                "households_with_several_customers": groups.multi_customer_groups,
                "oversized_address_groups": groups.oversized_groups,
                "customers_without_household": groups.customers_in_oversized_groups,
                "new_household_ids": assignment.new,
                "merged_household_ids": assignment.merged,
                "split_household_ids": assignment.split,
                "match_on": households.match_on,
            }
        )

    related = [CUSTOMER_ORDERS] if project.relationships.orders is not None else []

    @dg.asset(
        group_name=MASTERING_GROUP,
        kinds={"duckdb"},
        deps=[golden_customers, customer_households, CUSTOMER_CLUSTERS, *related],
    )
    def customer_360(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """The single customer view, one row per customer: the golden record, every
        source record with its system, the household, order count and value (online and
        in store), and the last interaction. `meld customer <id, e-mail or phone>` prints
        one customer from it."""
        with warehouse.connect() as con:
            customers = build_customer_360(con)
            with_orders = con.execute(
                f"SELECT count(*) FROM {CUSTOMER_360} WHERE order_count > 0"
            ).fetchall()[0][0]
            metadata = table_metadata(con, CUSTOMER_360)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "customers": customers,
                "customers_with_orders": int(with_orders),
            }
        )

    return [golden_customers, customer_households, customer_360]
