"""Mastering assets: golden records, households, the single customer view, and the
role views over them."""

import dagster as dg

from assets.failures import failure_at
from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.config import ProjectConfig
from linkage.master.steps import (
    master_customer_360,
    master_golden_customers,
    master_households,
)
from linkage.privacy.roles import publish_role_views
from linkage.tables import (
    CUSTOMER_360,
    CUSTOMER_CLUSTERS,
    CUSTOMER_GRAPH,
    CUSTOMER_HOUSEHOLDS,
    CUSTOMER_ORDERS,
    CUSTOMER_PRODUCTS,
    CUSTOMER_RECORDS,
    GOLDEN_CUSTOMERS,
)

MASTERING_GROUP = "mastering"


def build_mastering_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """The golden customer records, households and the single customer view."""
    golden_customers = _golden_customers_asset(project)
    customer_households = _households_asset(project, golden_customers)
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
        with warehouse.connect() as con, failure_at():
            view = master_customer_360(con)
            metadata = table_metadata(con, CUSTOMER_360)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "customers": view.customers,
                "customers_with_orders": view.customers_with_orders,
            }
        )

    return [golden_customers, customer_households, customer_360, _role_views_asset(project)]


def _role_views_asset(project: ProjectConfig) -> dg.AssetsDefinition:
    roles = project.roles.all_roles()
    related = (
        [CUSTOMER_ORDERS, CUSTOMER_PRODUCTS, CUSTOMER_GRAPH]
        if project.relationships.orders is not None
        else []
    )

    @dg.asset(
        group_name=MASTERING_GROUP,
        kinds={"duckdb"},
        deps=[
            GOLDEN_CUSTOMERS,
            CUSTOMER_HOUSEHOLDS,
            CUSTOMER_360,
            CUSTOMER_CLUSTERS,
            CUSTOMER_RECORDS,
            *related,
        ],
    )
    def role_views(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """One DuckDB schema per role of the config (roles:), role_<name>, with a view
        of each customer table (golden_customers, customer_360, customer_records,
        customer_clusters, households, orders and the customer graph, those that exist)
        showing each field as the role may see it: in clear, masked (a name's first
        letter, an e-mail's domain, a phone's last two digits, a birth year, a postcode
        prefix) or not at all. Re-created on every run; `meld roles` lists who sees
        what, and `meld customer` / `meld explain` read as --role (default
        roles.default_role)."""
        with warehouse.connect() as con, failure_at():
            published = publish_role_views(con, roles)
        return dg.MaterializeResult(
            metadata={
                "default_role": project.roles.default_role,
                "roles": dg.MetadataValue.json({v.role: v.to_dict() for v in published}),
                "views": sum(len(v.views) for v in published),
            }
        )

    return role_views


def _golden_customers_asset(project: ProjectConfig) -> dg.AssetsDefinition:
    mastering = project.mastering
    rules = project.survivorship_rules()

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
        with warehouse.connect() as con, failure_at():
            golden = master_golden_customers(
                con, rules=rules, source_priority=mastering.source_priority
            )
            metadata = table_metadata(con, GOLDEN_CUSTOMERS)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "customers": golden.customers,
                "customers_in_several_sources": golden.customers_in_several_sources,
                "survivorship_rules": dg.MetadataValue.json(rules),
                "source_priority": dg.MetadataValue.json(list(mastering.source_priority)),
            }
        )

    return golden_customers


def _households_asset(
    project: ProjectConfig, golden_customers: dg.AssetsDefinition
) -> dg.AssetsDefinition:
    spec = project.household_spec()

    @dg.asset(
        group_name=MASTERING_GROUP,
        kinds={"duckdb"},
        deps=[golden_customers, CUSTOMER_RECORDS],
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
        with warehouse.connect() as con, failure_at():
            outcome = master_households(con, spec, run_id=context.run_id)
            metadata = table_metadata(con, CUSTOMER_HOUSEHOLDS)
        groups, assignment = outcome.groups, outcome.assignment
        if groups is None or assignment is None:
            return dg.MaterializeResult(metadata={"enabled": False})
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
                "match_on": spec.match_on,
            }
        )

    return customer_households
