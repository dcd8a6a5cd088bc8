"""Group scored pairs into customers."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb
from splink import DuckDBAPI
from splink.clustering import cluster_pairwise_predictions_at_threshold

from linkage.warehouse import drop_splink_tables, quote, table_columns

logger = logging.getLogger(__name__)

CUSTOMER_ID_PREFIX = "cus_"

_FIRST_NAMES_CONFLICT = "jaro_winkler_similarity(first_name_l, first_name_r) < 0.7"
_NAMES_NOT_SWAPPED = (
    "coalesce(jaro_winkler_similarity(first_name_l, last_name_r), 0) < 0.7 "
    "AND coalesce(jaro_winkler_similarity(last_name_l, first_name_r), 0) < 0.7"
)
_BIRTH_DATES_CONFLICT = (
    "date_of_birth_l <> date_of_birth_r "
    "AND strftime(date_of_birth_l, '%Y-%d-%m') <> strftime(date_of_birth_r, '%Y-%m-%d')"
)

LINK_VETOES: dict[str, tuple[tuple[str, ...], str]] = {
    "first_name_and_date_of_birth_conflict": (
        ("first_name", "last_name", "date_of_birth"),
        f"{_FIRST_NAMES_CONFLICT} AND {_NAMES_NOT_SWAPPED} AND {_BIRTH_DATES_CONFLICT}",
    ),
}
"""Evidence no score can outweigh: two records whose first names have nothing in common
(and are not simply swapped with the last names) *and* whose dates of birth are both
known and differ (not merely day and month swapped) are two people, whatever else they
share. A family sharing a mailbox and an address is the typical case; nicknames (Olek
and Aleksander) keep their link through the date of birth. Vetoed pairs stay in
``pairwise_matches`` with the veto's name in ``link_veto``."""


def apply_link_vetoes(con: duckdb.DuckDBPyConnection, pairs_table: str) -> dict[str, int]:
    """Fill ``link_veto`` in ``pairs_table`` for pairs a veto forbids.

    Returns:
        Number of pairs each veto applies to.
    """
    columns = set(table_columns(con, pairs_table))
    con.execute(f"ALTER TABLE {quote(pairs_table)} ADD COLUMN IF NOT EXISTS link_veto VARCHAR")
    con.execute(f"UPDATE {quote(pairs_table)} SET link_veto = NULL")
    counts = {}
    for name, (needed, condition) in LINK_VETOES.items():
        if not all(f"{c}_l" in columns and f"{c}_r" in columns for c in needed):
            continue
        con.execute(
            f"UPDATE {quote(pairs_table)} SET link_veto = $name "
            f"WHERE link_veto IS NULL AND ({condition})",
            {"name": name},
        )
        counts[name] = int(
            con.execute(
                f"SELECT count(*) FROM {quote(pairs_table)} WHERE link_veto = ?", [name]
            ).fetchall()[0][0]
        )
    return counts


@dataclass(frozen=True)
class ClusterSummary:
    """Sizes of the clustering result."""

    records: int
    customers: int
    largest_customer: int
    singletons: int


def cluster_records(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str,
) -> ClusterSummary:
    """Connected components over pairs at or above ``threshold``: one row per record.

    Pairs with a ``link_veto`` (see :data:`LINK_VETOES`) are not links.

    Every record of ``records_table`` gets a ``customer_id``, singletons included.
    The id is derived from the smallest ``unique_id`` in the customer, so it is opaque
    and reproducible for the same clustering.

    Args:
        con: Warehouse connection.
        records_table: Records with ``unique_id``, ``source_system``, ``source_record_id``.
        pairs_table: Scored pairs with ``unique_id_l``, ``unique_id_r``, ``match_probability``.
        threshold: Match probability at or above which two records are one customer.
        out_table: Table to (re)create.

    Returns:
        Counts of records, customers, the largest customer and singletons.
    """
    db_api = DuckDBAPI(connection=con)
    columns = set(table_columns(con, pairs_table))
    links = "__meld_links"
    veto_filter = "WHERE link_veto IS NULL" if "link_veto" in columns else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {links} AS SELECT unique_id_l, unique_id_r, "
        f"match_probability FROM {quote(pairs_table)} {veto_filter}"
    )
    try:
        clusters = cluster_pairwise_predictions_at_threshold(
            nodes=records_table,
            edges=links,
            db_api=db_api,
            node_id_column_name="unique_id",
            threshold_match_probability=threshold,
        )
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(out_table)} AS "
            "WITH clustered AS ("
            "  SELECT r.source_system, r.source_record_id, r.unique_id, c.cluster_id "
            f"  FROM {quote(records_table)} AS r "
            f"  JOIN {quote(clusters.physical_name)} AS c USING (unique_id)"
            "), named AS ("
            "  SELECT *, min(unique_id) OVER (PARTITION BY cluster_id) AS anchor, "
            "  count(*) OVER (PARTITION BY cluster_id) AS customer_record_count FROM clustered"
            ") "
            "SELECT source_system, source_record_id, unique_id, "
            "$prefix || substr(md5(anchor), 1, 16) AS customer_id, customer_record_count "
            "FROM named ORDER BY customer_id, unique_id",
            {"prefix": CUSTOMER_ID_PREFIX},
        )
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)
        con.execute(f"DROP TABLE IF EXISTS {links}")
    row = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), coalesce(max(customer_record_count), 0), "
        "count(*) FILTER (WHERE customer_record_count = 1) "
        f"FROM {quote(out_table)}"
    ).fetchall()[0]
    summary = ClusterSummary(int(row[0]), int(row[1]), int(row[2]), int(row[3]))
    logger.info("clustered %d records into %d customers", summary.records, summary.customers)
    return summary
