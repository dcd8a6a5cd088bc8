"""Golden customer records: the best value of each field across a customer's records.

The rule here is the simplest defensible one: the value most records agree on
(compared in its matching form), ties broken by the most recently loaded record;
the displayed value keeps its accents and case, taken from the most recent record
that carries the winning value.
"""

from __future__ import annotations

import duckdb

from linkage.warehouse import quote, row_count

GOLDEN_FIELDS: dict[str, tuple[str, str]] = {
    "first_name": ("first_name", "first_name_display"),
    "last_name": ("last_name", "last_name_display"),
    "date_of_birth": ("date_of_birth", "date_of_birth"),
    "email": ("email", "email"),
    "phone": ("phone", "phone"),
}
"""Golden field: (column voted on, column displayed)."""


def _vote_sql(records: str, clusters: str, name: str, vote: str, display: str) -> str:
    return (
        f"{name}_votes AS ("
        f"  SELECT c.customer_id, r.{quote(vote)} AS vote, count(*) AS n, "
        f"  max(r.loaded_at) AS latest, "
        f"  arg_max(r.{quote(display)}, (r.loaded_at, r.unique_id)) AS shown, "
        f"  arg_max(r.unique_id, (r.loaded_at, r.unique_id)) AS from_record "
        f"  FROM {quote(clusters)} AS c JOIN {quote(records)} AS r USING (unique_id) "
        f"  WHERE r.{quote(vote)} IS NOT NULL GROUP BY ALL"
        f"), {name}_best AS ("
        f"  SELECT customer_id, arg_max(shown, (n, latest, from_record)) AS {quote(name)}, "
        f"  arg_max(from_record, (n, latest, from_record)) AS {quote(name + '_source')} "
        f"  FROM {name}_votes GROUP BY customer_id"
        f")"
    )


def build_golden_customers(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    clusters_table: str,
    out_table: str,
) -> int:
    """Create one row per customer with its best name, dob, e-mail, phone and address.

    Every golden value names the source record (``<field>_source``) it came from.

    Returns:
        Number of customers written.
    """
    ctes = [
        _vote_sql(records_table, clusters_table, name, vote, display)
        for name, (vote, display) in GOLDEN_FIELDS.items()
    ]
    ctes.append(
        "address_votes AS ("
        "  SELECT c.customer_id, r.street, r.postcode, count(*) AS n, max(r.loaded_at) AS latest, "
        "  arg_max(struct_pack(street := r.street_display, postcode := r.postcode, "
        "    city := r.city_display, country := r.country), (r.loaded_at, r.unique_id)) AS shown, "
        "  arg_max(r.unique_id, (r.loaded_at, r.unique_id)) AS from_record "
        f"  FROM {quote(clusters_table)} AS c JOIN {quote(records_table)} AS r USING (unique_id) "
        "  WHERE r.street IS NOT NULL OR r.postcode IS NOT NULL GROUP BY ALL"
        "), address_best AS ("
        "  SELECT customer_id, arg_max(shown, (n, latest, from_record)) AS address, "
        "  arg_max(from_record, (n, latest, from_record)) AS address_source "
        "  FROM address_votes GROUP BY customer_id"
        ")"
    )
    ctes.append(
        "members AS ("
        "  SELECT c.customer_id, count(*) AS record_count, "
        "  list(DISTINCT c.source_system ORDER BY c.source_system) AS sources, "
        "  list(c.unique_id ORDER BY c.unique_id) AS source_records, "
        "  max(r.loaded_at) AS last_loaded_at "
        f"  FROM {quote(clusters_table)} AS c JOIN {quote(records_table)} AS r USING (unique_id) "
        "  GROUP BY c.customer_id"
        ")"
    )
    selects = ["m.customer_id"]
    joins = []
    for name in GOLDEN_FIELDS:
        selects += [f"{name}_best.{quote(name)}", f"{name}_best.{quote(name + '_source')}"]
        joins.append(f"LEFT JOIN {name}_best USING (customer_id)")
    selects += [
        "address_best.address.street AS street",
        "address_best.address.postcode AS postcode",
        "address_best.address.city AS city",
        "address_best.address.country AS country",
        "address_best.address_source",
        "m.record_count",
        "m.sources",
        "m.source_records",
        "m.last_loaded_at",
    ]
    joins.append("LEFT JOIN address_best USING (customer_id)")
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(out_table)} AS WITH "
        + ", ".join(ctes)
        + " SELECT "
        + ", ".join(selects)
        + " FROM members AS m "
        + " ".join(joins)
        + " ORDER BY m.customer_id"
    )
    return row_count(con, out_table)
