"""The single customer view: ``customer_360`` and looking a customer up.

``customer_360`` has one row per customer: the golden record, every source record with
its system, the household, order count and value, and the last interaction (the latest
order; for a customer without orders, the latest delivery of one of its records).

:func:`find_customers` resolves what a steward types (a customer id, a source record
``<source>:<id>``, an e-mail or a phone number in any format) to customer ids, and
:func:`customer_profile` gathers everything about one customer for ``meld customer``.

Examples:
    ```py
    build_customer_360(con)
    find_customers(con, "anna.berg@example.com")
    customer_profile(con, "cus_0123456789abcdef", mask=True)
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import duckdb

from linkage.ingest.quality.masking import mask_value
from linkage.ingest.standardise.contact import standardise_email, standardise_phone
from linkage.tables import (
    CUSTOMER_360,
    CUSTOMER_CLUSTERS,
    CUSTOMER_GRAPH,
    CUSTOMER_HOUSEHOLDS,
    CUSTOMER_ID_HISTORY,
    CUSTOMER_ORDERS,
    CUSTOMER_PRODUCTS,
    CUSTOMER_RECORDS,
    GOLDEN_CUSTOMERS,
)
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)

MASKED_FIELDS: dict[str, str] = {
    "first_name": "first_name",
    "last_name": "last_name",
    "date_of_birth": "date_of_birth",
    "email": "email",
    "phone": "phone",
    "street": "street",
    "postcode": "postcode",
    "loyalty_card": "loyalty_card",
    "customer_number": "customer_number",
}
"""Golden columns masked when the viewer's role requires it, and how."""

RECORD_DISPLAY_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "source_system",
    "source_record_id",
    "first_name_display",
    "last_name_display",
    "date_of_birth",
    "email",
    "phone",
    "street_display",
    "postcode",
    "city_display",
    "country",
    "loyalty_card",
    "customer_number",
)
"""Columns of ``customer_records`` shown for each record of a customer (when present)."""


def build_customer_360(con: duckdb.DuckDBPyConnection) -> int:
    """(Re)create ``customer_360`` from golden_customers, customer_clusters and, when
    present, customer_households and customer_orders.

    Returns:
        Customers in the view.
    """
    households = table_exists(con, CUSTOMER_HOUSEHOLDS)
    orders = table_exists(con, CUSTOMER_ORDERS)
    household_select = "h.household_id" if households else "NULL::VARCHAR AS household_id"
    household_join = (
        f"LEFT JOIN {CUSTOMER_HOUSEHOLDS} AS h USING (customer_id)" if households else ""
    )
    order_ctes = (
        ", order_totals AS (SELECT customer_id, count(*) AS order_count, "
        "sum(amount) AS order_value, max(ordered_at) AS last_order_at, "
        "count(*) FILTER (WHERE channel = 'online') AS online_orders, "
        "count(*) FILTER (WHERE channel = 'in_store') AS in_store_orders "
        f"FROM {CUSTOMER_ORDERS} WHERE customer_id IS NOT NULL GROUP BY customer_id)"
        if orders
        else ""
    )
    order_select = (
        "coalesce(o.order_count, 0) AS order_count, "
        "coalesce(o.order_value, 0)::DECIMAL(18, 2) AS order_value, "
        "coalesce(o.online_orders, 0) AS online_orders, "
        "coalesce(o.in_store_orders, 0) AS in_store_orders, "
        "o.last_order_at, coalesce(o.last_order_at, r.last_loaded_at) AS last_interaction_at"
        if orders
        else "0 AS order_count, 0::DECIMAL(18, 2) AS order_value, 0 AS online_orders, "
        "0 AS in_store_orders, NULL::TIMESTAMP AS last_order_at, "
        "r.last_loaded_at AS last_interaction_at"
    )
    order_join = "LEFT JOIN order_totals AS o USING (customer_id)" if orders else ""
    con.execute(
        f"CREATE OR REPLACE TABLE {CUSTOMER_360} AS "
        "WITH records AS ("
        "  SELECT c.customer_id, list(struct_pack(unique_id := c.unique_id, "
        "  source_system := c.source_system, source_record_id := c.source_record_id) "
        "  ORDER BY c.unique_id) AS source_records, max(cr.loaded_at) AS last_loaded_at "
        f"  FROM {CUSTOMER_CLUSTERS} AS c JOIN {CUSTOMER_RECORDS} AS cr USING (unique_id) "
        "  GROUP BY c.customer_id"
        f"){order_ctes} "
        f"SELECT g.* EXCLUDE (source_records), {household_select}, "
        f"r.source_records, {order_select} "
        f"FROM {GOLDEN_CUSTOMERS} AS g JOIN records AS r USING (customer_id) "
        f"{household_join} {order_join} ORDER BY g.customer_id"
    )
    return int(con.execute(f"SELECT count(*) FROM {CUSTOMER_360}").fetchall()[0][0])


def find_customers(con: duckdb.DuckDBPyConnection, query: str) -> list[str]:
    """Customer ids for a customer id, a source record id, an e-mail or a phone number.

    E-mails and phones are standardised first, so ``Anna.Berg@Example.com`` and
    ``070-123 45 67`` (Swedish default) find the customer that has them on any record.
    """
    text = query.strip()
    if not text:
        return []
    found = con.execute(
        f"SELECT DISTINCT customer_id FROM {CUSTOMER_CLUSTERS} "
        "WHERE customer_id = $q OR unique_id = $q ORDER BY 1",
        {"q": text},
    ).fetchall()
    if found:
        return [row[0] for row in found]
    candidates: list[tuple[str, str]] = []
    email = standardise_email(text).value if "@" in text else None
    if email:
        candidates.append(("email", email))
    for region in (None, "SE", "NO", "DE", "PL", "GB"):
        phone = standardise_phone(text, region).value
        if phone:
            candidates.append(("phone", phone))
            break
    for column, value in candidates:
        rows = con.execute(
            f"SELECT DISTINCT c.customer_id FROM {CUSTOMER_RECORDS} AS r "
            f"JOIN {CUSTOMER_CLUSTERS} AS c USING (unique_id) WHERE r.{quote(column)} = ? "
            "ORDER BY 1",
            [value],
        ).fetchall()
        if rows:
            return [row[0] for row in rows]
    return []


@dataclass
class CustomerProfile:
    """Everything ``meld customer`` shows about one customer."""

    customer_id: str
    golden: dict[str, Any]
    records: list[dict[str, Any]]
    household_members: list[str] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    staff: list[tuple[str, int]] = field(default_factory=list)
    id_history: list[dict[str, Any]] = field(default_factory=list)


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def mask_reference(reference: str) -> str:
    """``pos_loyalty:6107965249778`` -> ``pos_loyalty:9999999999999``: record ids can be
    identifiers (a card number), so only the source system stays readable."""
    source, _, record_id = reference.partition(":")
    return f"{source}:{mask_value('customer_number', record_id)}" if record_id else reference


def masked_record(record: dict[str, Any]) -> dict[str, Any]:
    out = dict(record)
    for key, value in record.items():
        if isinstance(value, str) and (key.endswith("_source") or key == "unique_id"):
            out[key] = mask_reference(value)
        if key == "source_record_id" and isinstance(value, str):
            out[key] = mask_value("customer_number", value)
    if isinstance(out.get("source_records"), list):
        out["source_records"] = [
            {
                **r,
                "unique_id": mask_reference(r["unique_id"]),
                "source_record_id": mask_value("customer_number", r["source_record_id"]),
            }
            if isinstance(r, dict)
            else mask_reference(str(r))
            for r in out["source_records"]
        ]
    for column, kind in MASKED_FIELDS.items():
        for key in (column, f"{column}_display"):
            if out.get(key) is not None:
                out[key] = mask_value(kind, str(out[key]))
    for key in ("emails", "phones"):
        if isinstance(out.get(key), list):
            kind = "email" if key == "emails" else "phone"
            out[key] = [mask_value(kind, str(v)) for v in out[key]]
    if isinstance(out.get("addresses"), list):
        out["addresses"] = [
            {k: mask_value(k, str(v)) if v is not None else None for k, v in a.items()}
            for a in out["addresses"]
        ]
    return out


def customer_profile(
    con: duckdb.DuckDBPyConnection, customer_id: str, *, mask: bool = False
) -> CustomerProfile | None:
    """The golden record, source records, household, purchases and id history of one
    customer; personal values masked when ``mask`` is True. None when unknown."""
    golden = _rows(con, f"SELECT * FROM {CUSTOMER_360} WHERE customer_id = ?", [customer_id])
    if not golden:
        return None
    record_columns = [
        c
        for c in (*RECORD_DISPLAY_COLUMNS, "loaded_at")
        if c in table_columns(con, CUSTOMER_RECORDS)
    ]
    records = _rows(
        con,
        "SELECT " + ", ".join(f"r.{quote(c)}" for c in record_columns) + " "
        f"FROM {CUSTOMER_CLUSTERS} AS c JOIN {CUSTOMER_RECORDS} AS r USING (unique_id) "
        "WHERE c.customer_id = ? ORDER BY r.unique_id",
        [customer_id],
    )
    profile = CustomerProfile(customer_id, golden[0], records)
    if table_exists(con, CUSTOMER_GRAPH):
        profile.household_members = [
            row[0]
            for row in con.execute(
                f"SELECT target_id FROM {CUSTOMER_GRAPH} WHERE customer_id = ? "
                "AND relation = 'household_member' ORDER BY 1",
                [customer_id],
            ).fetchall()
        ]
        profile.staff = [
            (row[0], int(row[1]))
            for row in con.execute(
                f"SELECT target_id, orders FROM {CUSTOMER_GRAPH} WHERE customer_id = ? "
                "AND relation = 'served_by' ORDER BY orders DESC, target_id",
                [customer_id],
            ).fetchall()
        ]
    if table_exists(con, CUSTOMER_PRODUCTS):
        profile.products = _rows(
            con,
            "SELECT sku, product_name, orders, quantity, amount, channels, last_bought_at "
            f"FROM {CUSTOMER_PRODUCTS} WHERE customer_id = ? ORDER BY orders DESC, sku",
            [customer_id],
        )
    if table_exists(con, CUSTOMER_ID_HISTORY):
        profile.id_history = _rows(
            con,
            f"SELECT * FROM {CUSTOMER_ID_HISTORY} WHERE id = ? OR related_id = ? ORDER BY 1, 2",
            [customer_id, customer_id],
        )
    if mask:
        profile.golden = masked_record(profile.golden)
        profile.records = [masked_record(r) for r in profile.records]
    return profile
