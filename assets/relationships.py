"""Relationship assets: orders and products, and what each customer bought, where and
from whom. Built only when the project config has a ``relationships`` section."""

import dagster as dg

from assets.failures import failure_at
from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.config import ProjectConfig, TableFileConfig
from linkage.master.relationships import (
    OPTIONAL_ORDER_COLUMNS,
    OPTIONAL_PRODUCT_COLUMNS,
    ORDER_COLUMNS,
    PRODUCT_COLUMNS,
    build_customer_graph,
    build_customer_products,
    load_related_file,
)
from linkage.master.steps import relate_orders
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_GRAPH,
    CUSTOMER_HOUSEHOLDS,
    CUSTOMER_ORDERS,
    CUSTOMER_PRODUCTS,
    ORDERS,
    PRODUCTS,
)

RELATIONSHIPS_GROUP = "relationships"


def _file_asset(
    project: ProjectConfig,
    name: str,
    spec: TableFileConfig,
    schema: dict[str, str],
    optional: frozenset[str],
    description: str,
) -> dg.AssetsDefinition:
    pattern = project.resolve(spec.path)

    @dg.asset(
        name=name,
        group_name=RELATIONSHIPS_GROUP,
        kinds={"duckdb"},
        description=description,
        metadata={"path": str(pattern)},
    )
    def related(warehouse: WarehouseResource) -> dg.MaterializeResult:
        with (
            warehouse.connect() as con,
            failure_at(f"{project.config_path}: relationships.{name}"),
        ):
            loaded = load_related_file(
                con,
                name,
                pattern,
                schema,
                columns=spec.columns,
                optional=optional,
                delimiter=spec.delimiter,
                encoding=spec.encoding,
            )
            metadata = table_metadata(con, name)
        return dg.MaterializeResult(
            metadata={**metadata, "rejected_rows": loaded.rejected_rows, "files": loaded.files}
        )

    return related


def build_relationship_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """Orders, products and the customer relationship tables, when configured."""
    relationships = project.relationships
    if relationships.orders is None:
        return []
    assets = [
        _file_asset(
            project,
            ORDERS,
            relationships.orders,
            ORDER_COLUMNS,
            OPTIONAL_ORDER_COLUMNS,
            "Orders as delivered, in Meld's column names and types: order id, the buyer's "
            "source record (source system and record id), product SKU, quantity, channel "
            "(online or in_store), store, staff member or partner, amount and date. Rows "
            "that cannot be read go to orders_rejects with the reason.",
        )
    ]
    deps = [ORDERS, CUSTOMER_CLUSTERS, CUSTOMER_HOUSEHOLDS]
    if relationships.products is not None:
        assets.append(
            _file_asset(
                project,
                PRODUCTS,
                relationships.products,
                PRODUCT_COLUMNS,
                OPTIONAL_PRODUCT_COLUMNS,
                "The product catalogue: SKU, name, category and unit price.",
            )
        )
        deps.append(PRODUCTS)

    @dg.asset(group_name=RELATIONSHIPS_GROUP, kinds={"duckdb"}, deps=deps)
    def customer_orders(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Every order with the customer and household of its buyer, found through the
        buyer's source record: one customer's online and in-store purchases come together.
        Orders whose buyer record is unknown or quarantined keep an empty customer_id."""
        with warehouse.connect() as con, failure_at():
            orders = relate_orders(con)
            metadata = table_metadata(con, CUSTOMER_ORDERS)
        if orders.unattributed:
            context.log.warning(
                "%d order(s) name a buyer record no customer has", orders.unattributed
            )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "attributed_orders": orders.attributed,
                "unattributed_orders": orders.unattributed,
                "customers_with_orders": orders.customers,
            }
        )

    @dg.asset(group_name=RELATIONSHIPS_GROUP, kinds={"duckdb"}, deps=[customer_orders])
    def customer_products(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """Per customer and product: orders, quantity, amount, first and last purchase and
        the channels (online, in store) it was bought through."""
        with warehouse.connect() as con, failure_at():
            build_customer_products(con)
            metadata = table_metadata(con, CUSTOMER_PRODUCTS)
        return dg.MaterializeResult(metadata=metadata)

    @dg.asset(
        group_name=RELATIONSHIPS_GROUP,
        kinds={"duckdb"},
        deps=[customer_products, CUSTOMER_HOUSEHOLDS, CUSTOMER_CLUSTERS],
    )
    def customer_graph(warehouse: WarehouseResource) -> dg.MaterializeResult:
        """The customer knowledge graph as one edge table (customer_id, relation,
        target_type, target_id, orders, amount, first_at, last_at): its household and the
        other customers in it, products bought, stores shopped in, online orders, staff
        and partners who served it, and its source records."""
        with warehouse.connect() as con, failure_at():
            edges = build_customer_graph(con)
            metadata = table_metadata(con, CUSTOMER_GRAPH)
        return dg.MaterializeResult(metadata={**metadata, "edges_by_relation": edges})

    return [*assets, customer_orders, customer_products, customer_graph]
