"""The run report's customers section: the customer size distribution, with a chart.

Read from ``customer_clusters`` as it is when the report is written.
"""

from __future__ import annotations

import logging

import duckdb

from linkage.audit.run_report.markup import Html, html_table, missing_table, note, png_image
from linkage.charts import cluster_sizes_png
from linkage.tables import CUSTOMER_CLUSTERS
from linkage.warehouse import table_exists

logger = logging.getLogger(__name__)


def customers_section(con: duckdb.DuckDBPyConnection) -> Html:
    """How many customers there are and how many records they hold, with a chart."""
    if not table_exists(con, CUSTOMER_CLUSTERS):
        return missing_table(CUSTOMER_CLUSTERS)
    sizes = [
        (int(size), int(customers))
        for size, customers in con.execute(
            "SELECT records, count(*) FROM ("
            f"SELECT customer_id, count(*) AS records FROM {CUSTOMER_CLUSTERS} GROUP BY 1) "
            "GROUP BY 1 ORDER BY 1"
        ).fetchall()
    ]
    if not sizes:
        return note("customer_clusters is empty.")
    customers = sum(count for _, count in sizes)
    records = sum(size * count for size, count in sizes)
    summary = html_table(
        ["", "value"],
        [
            ("customers", customers),
            ("records in customers", records),
            ("customers with one record", dict(sizes).get(1, 0)),
            ("largest customer (records)", sizes[-1][0]),
            ("mean records per customer", records / customers),
        ],
        table_id="customer-summary",
    )
    distribution = html_table(
        ["records per customer", "customers"], sizes, table_id="cluster-sizes"
    )
    return Html(
        "<p>As in customer_clusters when the report was written.</p>"
        + summary
        + "<h3>Customer size distribution</h3>"
        + distribution
        + png_image(cluster_sizes_png(sizes), "customer size distribution")
    )
