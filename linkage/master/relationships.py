"""Relate customers to what they touch: orders, products, stores, staff, households.

Orders name the *source record* of the buyer (a webshop account, a loyalty card), as
order systems do; joining them through ``customer_clusters`` attributes every order to
a customer, so a customer's purchases across channels come together.

Tables:

- ``orders`` and ``products``: the delivered files in Meld's column names, typed.
- ``customer_orders``: each order with its ``customer_id`` and ``household_id``; orders
  whose buyer record is unknown (or quarantined) keep a NULL customer.
- ``customer_products``: per customer and product: orders, quantity, amount, first and
  last purchase, and the channels used.
- ``customer_graph``: one edge table, ``(customer_id, relation, target_type, target_id,
  orders, amount, first_at, last_at)``, with relations ``member_of`` (household),
  ``household_member`` (another customer of the same household), ``bought`` (product),
  ``shopped_in`` (store), ``shopped_online`` (channel), ``served_by`` (staff or partner)
  and ``has_record`` (source record).

Examples:
    ```py
    load_related_file(con, "orders", pattern, ORDER_COLUMNS, columns={}, source_name="orders")
    build_customer_orders(con)
    products_bought(con, "cus_0123456789abcdef")
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from linkage.atomic import transaction
from linkage.errors import missing_columns_text
from linkage.ingest.deliveries import find_source_files
from linkage.ingest.readers.delivery import SourceError
from linkage.ingest.readers.files import read_file
from linkage.privacy.deny_list import unlink_denied_records
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_GRAPH,
    CUSTOMER_HOUSEHOLDS,
    CUSTOMER_ORDERS,
    CUSTOMER_PRODUCTS,
    ORDERS,
    PRODUCTS,
)
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)

ORDER_COLUMNS: dict[str, str] = {
    "order_id": "VARCHAR",
    "buyer_source": "VARCHAR",
    "buyer_record_id": "VARCHAR",
    "sku": "VARCHAR",
    "quantity": "INTEGER",
    "channel": "VARCHAR",
    "store_id": "VARCHAR",
    "staff_id": "VARCHAR",
    "amount": "DECIMAL(18, 2)",
    "ordered_at": "TIMESTAMP",
}
"""Meld's order columns and types; ``quantity``, ``store_id`` and ``staff_id`` may be absent."""
OPTIONAL_ORDER_COLUMNS = frozenset({"quantity", "store_id", "staff_id"})
PRODUCT_COLUMNS: dict[str, str] = {
    "sku": "VARCHAR",
    "name": "VARCHAR",
    "category": "VARCHAR",
    "unit_price": "DECIMAL(18, 2)",
}
OPTIONAL_PRODUCT_COLUMNS = frozenset({"category", "unit_price"})
CHANNELS = frozenset({"online", "in_store"})


@dataclass(frozen=True)
class RelatedLoad:
    """What :func:`load_related_file` loaded."""

    table: str
    rows: int
    rejected_rows: int
    files: int


def load_related_file(
    con: duckdb.DuckDBPyConnection,
    table: str,
    pattern: Path,
    schema: dict[str, str],
    *,
    columns: dict[str, str],
    optional: frozenset[str] = frozenset(),
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> RelatedLoad:
    """Load a file (or glob) of related data into ``table`` with Meld's column names.

    Rows whose typed values cannot be read (an amount that is not a number, a date
    that is not a date) or that cannot be parsed at all go to ``<table>_rejects`` with
    the reason, so nothing is dropped silently.

    Args:
        con: Warehouse connection.
        table: Table to (re)create, e.g. ``orders``.
        pattern: File or glob.
        schema: Meld column name to SQL type.
        columns: Meld column name to the file's column name, where they differ.
        optional: Columns that may be missing from the file (they become NULL).
        delimiter: CSV delimiter; sniffed when None.
        encoding: Text encoding.

    Raises:
        SourceError: No file, an empty file, or a required column missing.
    """
    files = find_source_files(table, pattern)
    frames = [
        _read_related(path, table, schema, columns, optional, delimiter, encoding) for path in files
    ]
    combined = pa.concat_tables(frames)
    con.register("__meld_related", combined)
    try:
        _split_readable(con, table, schema)
    finally:
        con.unregister("__meld_related")
    if {"buyer_source", "buyer_record_id"} <= set(table_columns(con, table)):
        # An erased buyer stays erased: the order keeps its amount, not its buyer.
        unlink_denied_records(
            con, table, source_column="buyer_source", record_column="buyer_record_id"
        )
    rows = con.execute(f"SELECT count(*) FROM {quote(table)}").fetchall()[0][0]
    rejected = con.execute(f"SELECT count(*) FROM {quote(table + '_rejects')}").fetchall()[0][0]
    if rejected:
        logger.warning("%s: %d row(s) could not be read, see %s_rejects", table, rejected, table)
    return RelatedLoad(table, int(rows), int(rejected), len(files))


def _read_related(
    path: Path,
    table: str,
    schema: dict[str, str],
    columns: dict[str, str],
    optional: frozenset[str],
    delimiter: str | None,
    encoding: str,
) -> pa.Table:
    """One file's columns under Meld's names, with its file, row numbers and problems.

    Raises:
        SourceError: A required column is missing.
    """
    delivery = read_file(path, source_system=table, delimiter=delimiter, encoding=encoding)
    found = delivery.table.column_names
    required = {
        f"relationships.{table}.columns.{name}": columns.get(name, name)
        for name in schema
        if name not in optional
    }
    # Counted, not listed: without its header row, a file has a record there.
    missing = missing_columns_text(required, found, max_listed=1)
    if missing:
        raise SourceError(f"'{table}', file '{path}': {missing}")
    selected = {}
    for name in schema:
        column = columns.get(name, name)
        if column in found:
            selected[name] = delivery.table.column(column)
        else:  # optional, as every required column is there
            selected[name] = pa.nulls(delivery.table.num_rows, type=pa.string())
    selected["__file"] = pa.array([str(path)] * delivery.table.num_rows, type=pa.string())
    selected["__row"] = pa.array(delivery.row_numbers, type=pa.int64())
    selected["__problem"] = pa.array(delivery.problems, type=pa.string())
    return pa.table(selected)


def _split_readable(con: duckdb.DuckDBPyConnection, table: str, schema: dict[str, str]) -> None:
    """(Re)create ``table`` with the typed readable rows of ``__meld_related`` and
    ``<table>_rejects`` with the others and the reason."""
    casts = ", ".join(
        f"TRY_CAST(nullif(trim({quote(c)}), '') AS {t}) AS {quote(c)}" for c, t in schema.items()
    )
    failed = (
        " OR ".join(
            f"(nullif(trim({quote(c)}), '') IS NOT NULL "
            f"AND TRY_CAST(trim({quote(c)}) AS {t}) IS NULL)"
            for c, t in schema.items()
            if t != "VARCHAR"
        )
        or "false"
    )
    key = quote(next(iter(schema)))
    bad = f"__problem IS NOT NULL OR nullif(trim({key}), '') IS NULL OR {failed}"
    with transaction(con):  # the rows read and the rows rejected, from the same files
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT {casts}, __file AS source_file, "
            f"__row AS source_row_number FROM __meld_related WHERE NOT ({bad})"
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(table + '_rejects')} AS SELECT "
            "__file AS source_file, "
            f"__row AS source_row_number, CASE WHEN __problem IS NOT NULL THEN __problem "
            f"WHEN nullif(trim({key}), '') IS NULL THEN 'missing_key' "
            "ELSE 'unreadable_value' END AS reason, "
            f"to_json(struct_pack({', '.join(f'{quote(c)} := {quote(c)}' for c in schema)}))"
            "::VARCHAR AS raw_values "
            f"FROM __meld_related WHERE {bad}"
        )


def build_customer_orders(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """``customer_orders``: every order with its customer and household (NULL if unknown).

    Returns:
        Orders, attributed orders, and customers with orders.
    """
    household = (
        "h.household_id"
        if table_exists(con, CUSTOMER_HOUSEHOLDS)
        else "NULL::VARCHAR AS household_id"
    )
    household_join = (
        f"LEFT JOIN {CUSTOMER_HOUSEHOLDS} AS h ON h.customer_id = c.customer_id"
        if table_exists(con, CUSTOMER_HOUSEHOLDS)
        else ""
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {CUSTOMER_ORDERS} AS "
        "SELECT o.order_id, c.customer_id, "
        f"{household}, o.buyer_source || ':' || o.buyer_record_id AS unique_id, "
        "o.sku, p.name AS product_name, p.category, coalesce(o.quantity, 1) AS quantity, "
        "o.channel, o.store_id, o.staff_id, o.amount, o.ordered_at "
        f"FROM {ORDERS} AS o "
        f"LEFT JOIN {CUSTOMER_CLUSTERS} AS c "
        "ON c.unique_id = o.buyer_source || ':' || o.buyer_record_id "
        f"{household_join} "
        f"LEFT JOIN {PRODUCTS} AS p ON p.sku = o.sku "
        "ORDER BY o.ordered_at, o.order_id"
    )
    row = con.execute(
        f"SELECT count(*), count(customer_id), count(DISTINCT customer_id) FROM {CUSTOMER_ORDERS}"
    ).fetchall()[0]
    return {"orders": int(row[0]), "attributed": int(row[1]), "customers": int(row[2])}


def build_customer_products(con: duckdb.DuckDBPyConnection) -> int:
    """``customer_products``: what each customer bought, per product."""
    con.execute(
        f"CREATE OR REPLACE TABLE {CUSTOMER_PRODUCTS} AS "
        "SELECT customer_id, sku, any_value(product_name) AS product_name, "
        "any_value(category) AS category, count(*) AS orders, sum(quantity) AS quantity, "
        "sum(amount) AS amount, min(ordered_at) AS first_bought_at, "
        "max(ordered_at) AS last_bought_at, list(DISTINCT channel ORDER BY channel) AS channels "
        f"FROM {CUSTOMER_ORDERS} WHERE customer_id IS NOT NULL GROUP BY customer_id, sku "
        "ORDER BY customer_id, sku"
    )
    return int(con.execute(f"SELECT count(*) FROM {CUSTOMER_PRODUCTS}").fetchall()[0][0])


def build_customer_graph(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """``customer_graph``: the customer knowledge graph as one edge table.

    Returns:
        Edges per relation.
    """
    parts = _edge_queries(has_households=table_exists(con, CUSTOMER_HOUSEHOLDS))
    con.execute(
        f"CREATE OR REPLACE TABLE {CUSTOMER_GRAPH} AS SELECT * FROM ("
        + " UNION ALL ".join(parts)
        + ") ORDER BY customer_id, relation, target_id"
    )
    return {
        str(k): int(v)
        for k, v in con.execute(
            f"SELECT relation, count(*) FROM {CUSTOMER_GRAPH} GROUP BY 1 ORDER BY 1"
        ).fetchall()
    }


def _edge_queries(*, has_households: bool) -> list[str]:
    """One SELECT per relation of the customer graph (household relations only with households)."""
    edge = (
        "SELECT customer_id, '{relation}' AS relation, '{target}' AS target_type, "
        "{target_id} AS target_id, {orders} AS orders, {amount} AS amount, "
        "{first} AS first_at, {last} AS last_at FROM {source} {where} GROUP BY ALL"
    )
    order_edge = {
        "orders": "count(*)",
        "amount": "sum(amount)",
        "first": "min(ordered_at)",
        "last": "max(ordered_at)",
        "source": CUSTOMER_ORDERS,
    }
    no_orders = {
        "orders": "NULL::BIGINT",
        "amount": "NULL::DECIMAL(18, 2)",
        "first": "NULL::TIMESTAMP",
        "last": "NULL::TIMESTAMP",
    }
    parts = [
        edge.format(
            relation="bought",
            target="product",
            target_id="sku",
            where="WHERE customer_id IS NOT NULL",
            **order_edge,
        ),
        edge.format(
            relation="shopped_in",
            target="store",
            target_id="store_id",
            where="WHERE customer_id IS NOT NULL AND channel = 'in_store' AND store_id IS NOT NULL",
            **order_edge,
        ),
        edge.format(
            relation="shopped_online",
            target="channel",
            target_id="channel",
            where="WHERE customer_id IS NOT NULL AND channel = 'online'",
            **order_edge,
        ),
        edge.format(
            relation="served_by",
            target="staff",
            target_id="staff_id",
            where="WHERE customer_id IS NOT NULL AND staff_id IS NOT NULL",
            **order_edge,
        ),
        edge.format(
            relation="has_record",
            target="source_record",
            target_id="unique_id",
            where="",
            source=CUSTOMER_CLUSTERS,
            **no_orders,
        ),
    ]
    if has_households:
        parts.append(
            edge.format(
                relation="member_of",
                target="household",
                target_id="household_id",
                where="",
                source=CUSTOMER_HOUSEHOLDS,
                **no_orders,
            )
        )
        parts.append(
            "SELECT a.customer_id, 'household_member' AS relation, 'customer' AS target_type, "
            "b.customer_id AS target_id, NULL::BIGINT AS orders, NULL::DECIMAL(18, 2) AS amount, "
            "NULL::TIMESTAMP AS first_at, NULL::TIMESTAMP AS last_at "
            f"FROM {CUSTOMER_HOUSEHOLDS} AS a JOIN {CUSTOMER_HOUSEHOLDS} AS b "
            "ON a.household_id = b.household_id AND a.customer_id <> b.customer_id"
        )
    return parts


def _related(con: duckdb.DuckDBPyConnection, customer_id: str, relation: str) -> list[tuple]:
    return con.execute(
        f"SELECT target_id, orders, amount, last_at FROM {CUSTOMER_GRAPH} "
        "WHERE customer_id = ? AND relation = ? ORDER BY orders DESC NULLS LAST, target_id",
        [customer_id, relation],
    ).fetchall()


def household_members(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[str]:
    """Other customers in the same household."""
    return [row[0] for row in _related(con, customer_id, "household_member")]


def products_bought(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[tuple]:
    """(sku, product name, orders, amount, channels) per product the customer bought."""
    return con.execute(
        f"SELECT sku, product_name, orders, amount, channels FROM {CUSTOMER_PRODUCTS} "
        "WHERE customer_id = ? ORDER BY orders DESC, sku",
        [customer_id],
    ).fetchall()


def channels_used(con: duckdb.DuckDBPyConnection, customer_id: str) -> dict[str, int]:
    """Orders per channel (``online``, ``in_store``)."""
    return {
        str(k): int(v)
        for k, v in con.execute(
            f"SELECT channel, count(*) FROM {CUSTOMER_ORDERS} WHERE customer_id = ? "
            "GROUP BY 1 ORDER BY 1",
            [customer_id],
        ).fetchall()
    }


def staff_dealt_with(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[tuple]:
    """(staff or partner id, orders) the customer was served by, most first."""
    return [(row[0], row[1]) for row in _related(con, customer_id, "served_by")]
