"""Relationships on a small hand-made case: orders attributed to customers through their
source records, products bought, channels, staff, and household members."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from linkage.ingest.readers.delivery import SourceError
from linkage.master.relationships import (
    OPTIONAL_ORDER_COLUMNS,
    ORDER_COLUMNS,
    PRODUCT_COLUMNS,
    build_customer_graph,
    build_customer_orders,
    build_customer_products,
    channels_used,
    household_members,
    load_related_file,
    products_bought,
    staff_dealt_with,
)

ORDERS = (
    "order_id,buyer_source,buyer_record_id,sku,quantity,channel,store_id,staff_id,amount,"
    "ordered_at\n"
    """O1,webshop,W1,MUG,1,online,,partner-dhl,19.00,2024-01-05
O2,pos,P1,BEANS,2,in_store,S1,S1-anna,48.00,2024-02-10
O3,pos,P1,MUG,1,in_store,S1,S1-anna,19.00,2024-03-01
O4,pos,P2,BEANS,1,in_store,S2,S2-bo,24.00,2024-03-02
O5,webshop,W9,MUG,1,online,,web-team,19.00,2024-03-03
O6,pos,P2,BEANS,1,in_store,S2,S2-bo,not-a-number,2024-03-04
"""
)
PRODUCTS = (
    "sku,name,category,unit_price\nMUG,Travel mug,cups,19.00\nBEANS,Espresso beans,coffee,24.00\n"
)


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    (tmp_path / "orders.csv").write_text(ORDERS)
    (tmp_path / "products.csv").write_text(PRODUCTS)
    load_related_file(
        connection,
        "orders",
        tmp_path / "orders.csv",
        ORDER_COLUMNS,
        columns={},
        optional=OPTIONAL_ORDER_COLUMNS,
    )
    load_related_file(
        connection, "products", tmp_path / "products.csv", PRODUCT_COLUMNS, columns={}
    )
    # Anna has a webshop account W1 and a loyalty card P1; Bo has card P2; both share a home.
    connection.execute(
        "CREATE TABLE customer_clusters AS SELECT * FROM (VALUES "
        "('webshop', 'W1', 'webshop:W1', 'cus_anna', 2), ('pos', 'P1', 'pos:P1', 'cus_anna', 2), "
        "('pos', 'P2', 'pos:P2', 'cus_bo', 1)) "
        "AS t(source_system, source_record_id, unique_id, customer_id, customer_record_count)"
    )
    connection.execute(
        "CREATE TABLE customer_households AS SELECT * FROM (VALUES "
        "('cus_anna', 'hh_home'), ('cus_bo', 'hh_home')) AS t(customer_id, household_id)"
    )
    yield connection
    connection.close()


def test_orders_are_attributed_through_source_records(con) -> None:
    counts = build_customer_orders(con)
    assert counts == {"orders": 5, "attributed": 4, "customers": 2}
    rows = con.execute(
        "SELECT order_id, customer_id, household_id FROM customer_orders ORDER BY order_id"
    ).fetchall()
    assert rows == [
        ("O1", "cus_anna", "hh_home"),
        ("O2", "cus_anna", "hh_home"),
        ("O3", "cus_anna", "hh_home"),
        ("O4", "cus_bo", "hh_home"),
        ("O5", None, None),  # an account no customer has: kept, unattributed
    ]
    rejects = con.execute("SELECT source_row_number, reason FROM orders_rejects").fetchall()
    assert rejects == [(6, "unreadable_value")]


def test_queries_answer_the_stewards_questions(con) -> None:
    build_customer_orders(con)
    build_customer_products(con)
    edges = build_customer_graph(con)
    assert edges["bought"] == 3 and edges["household_member"] == 2
    assert household_members(con, "cus_anna") == ["cus_bo"]
    bought = products_bought(con, "cus_anna")
    assert [(sku, orders, channels) for sku, _, orders, _, channels in bought] == [
        ("MUG", 2, ["in_store", "online"]),
        ("BEANS", 1, ["in_store"]),
    ]
    assert channels_used(con, "cus_anna") == {"in_store": 2, "online": 1}
    assert staff_dealt_with(con, "cus_anna") == [("S1-anna", 2), ("partner-dhl", 1)]
    stores = con.execute(
        "SELECT target_id FROM customer_graph WHERE customer_id = 'cus_bo' "
        "AND relation = 'shopped_in'"
    ).fetchall()
    assert stores == [("S2",)]


def test_missing_order_column_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text("order_id,sku\nO1,MUG\n")
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    with pytest.raises(SourceError, match="column 'buyer_source'"):
        load_related_file(con, "orders", path, ORDER_COLUMNS, columns={})
