"""Group scored pairs into customers, respecting steward decisions.

:func:`cluster_records` reads the records and the links (pairs at or above the match
threshold without a ``link_veto``, see :mod:`linkage.model.vetoes`) from the warehouse
(:mod:`linkage.cluster.warehouse_io`), runs a clustering algorithm over node numbers
(:mod:`linkage.cluster.algorithms`: ``connected_components`` or ``best_links``, with
steward must-links first and cannot-links as barriers), and writes
``customer_clusters`` and ``refused_links``. :mod:`linkage.cluster.graph_metrics`
describes each customer's link graph afterwards.

Examples:
    ```py
    summary = cluster_records(
        con,
        records_table="customer_records",
        pairs_table="pairwise_matches",
        threshold=0.95,
        out_table="customer_clusters",
        must_link=[("crm:17", "shop:4")],
        cannot_link=[("crm:17", "crm:18")],
        method="best_links",
    )
    summary.links_refused, summary.links_refused_as_weak, summary.must_links_applied
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from linkage.cluster.algorithms import (
    CLUSTERING_METHODS,
    CONNECTED_COMPONENTS,
    MUST_LINK_CONFLICT,
    REFUSED_AS_WEAK_BRIDGE,
    REFUSED_BY_CANNOT_LINK,
    Clustering,
    ClusteringAlgorithm,
    ClusteringMethod,
)
from linkage.cluster.warehouse_io import (
    constraint_nodes,
    numbered_records,
    read_links,
    write_clusters,
    write_refused,
)
from linkage.tables import REFUSED_LINKS
from linkage.warehouse import quote, table_columns

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterSummary:
    """Sizes of the clustering result and what steward decisions changed.

    Attributes:
        records: Records clustered (every record of the records table).
        customers: Customers formed, singletons included.
        largest_customer: Records in the largest customer.
        singletons: Customers of one record.
        links: Model links considered (at or above the threshold, not vetoed).
        links_refused: Model links refused because they would join a cannot-link pair.
        must_links_applied: Must-links whose two records ended up in one customer.
        must_links_refused: Must-links refused because they contradict cannot-links.
        constraints_ignored: Must- and cannot-links naming a record not in the records
            table (they cannot apply).
        method: The clustering method (``custom`` for an ``algorithm=`` passed in).
        links_refused_as_weak: Model links refused as weak bridges between two
            customers (``best_links``).
    """

    records: int
    customers: int
    largest_customer: int
    singletons: int
    links: int = 0
    links_refused: int = 0
    must_links_applied: int = 0
    must_links_refused: int = 0
    constraints_ignored: int = 0
    method: str = CONNECTED_COMPONENTS
    links_refused_as_weak: int = 0


def cluster_records(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str,
    must_link: Sequence[tuple[str, str]] = (),
    cannot_link: Sequence[tuple[str, str]] = (),
    refused_table: str = REFUSED_LINKS,
    method: ClusteringMethod = CONNECTED_COMPONENTS,
    algorithm: ClusteringAlgorithm | None = None,
) -> ClusterSummary:
    """Cluster records into customers: one row per record in ``out_table``.

    Links are pairs at or above ``threshold`` without a ``link_veto`` (see
    :data:`linkage.model.vetoes.LINK_VETOES`). Steward decisions come as ``unique_id``
    pairs: must-links are applied first, and no customer ever holds both records of a
    cannot-link (cannot-links win over must-links that contradict them). ``method``
    chooses how links join customers: ``connected_components`` takes every link,
    ``best_links`` refuses links that would chain different people (see
    :func:`linkage.cluster.algorithms.best_links`). Every refused link and
    must-link is written to ``refused_table`` (recreated on every run, empty when
    nothing was refused) with the reason and, for a cannot-link, the pair that
    forbade it. Decisions naming a record that is not in ``records_table`` are
    ignored and counted.

    Every record of ``records_table`` gets a ``customer_id``, singletons included.
    The id is derived from the smallest ``unique_id`` in the customer, so it is opaque
    and reproducible for the same clustering.

    Args:
        con: Warehouse connection.
        records_table: Records with ``unique_id``, ``source_system``, ``source_record_id``.
        pairs_table: Scored pairs with ``unique_id_l``, ``unique_id_r``, ``match_probability``
            and optionally ``link_veto``.
        threshold: Match probability at or above which two records are one customer.
        out_table: Table to (re)create: ``source_system``, ``source_record_id``,
            ``unique_id``, ``customer_id``, ``customer_record_count``.
        must_link: Record pairs to put in one customer, highest priority first.
        cannot_link: Record pairs that must be in different customers.
        refused_table: Table to (re)create with the refused links: ``unique_id_l``,
            ``unique_id_r``, ``match_probability`` (NULL for a must-link), ``reason``
            (see :class:`Refusal`), ``cannot_link_l``, ``cannot_link_r`` (the forbidden
            pair, NULL for a weak bridge) and ``cohesion`` (weak bridges only).
        method: ``connected_components`` or ``best_links`` (see :data:`CLUSTERING_METHODS`).
        algorithm: A clustering over node numbers to use instead of ``method``; see
            :data:`ClusteringAlgorithm`.

    Returns:
        Counts of records, customers, the largest customer and singletons, links
        considered and refused (by cannot-links and as weak bridges), must-links
        applied and refused.

    Raises:
        ValueError: ``method`` is not one of :data:`CLUSTERING_METHODS`.

    Examples:
        ```py
        summary = cluster_records(
            con,
            records_table="customer_records",
            pairs_table="pairwise_matches",
            threshold=0.95,
            out_table="customer_clusters",
            cannot_link=[("crm:1", "shop:9")],
            method="best_links",
        )
        ```
    """
    algorithm, method_name = _choose_algorithm(method, algorithm)
    skip_vetoed = "link_veto" in table_columns(con, pairs_table)
    with numbered_records(con, records_table) as n:
        links = read_links(con, pairs_table, threshold, skip_vetoed=skip_vetoed)
        must, cannot, ignored = _constraint_pairs(con, records_table, must_link, cannot_link)
        result = algorithm(n, links, must_link=must, cannot_link=cannot)
        write_clusters(con, result.labels, out_table)
        write_refused(con, result.refused, refused_table)
    return _summarise(con, out_table, result, len(links), ignored, method_name)


def _choose_algorithm(
    method: str, algorithm: ClusteringAlgorithm | None
) -> tuple[ClusteringAlgorithm, str]:
    """The algorithm to run and the method name to report (``custom`` for one passed in).

    Raises:
        ValueError: ``method`` is not one of :data:`CLUSTERING_METHODS`.
    """
    if algorithm is not None:
        return algorithm, "custom"
    if method not in CLUSTERING_METHODS:
        raise ValueError(
            f"clustering method {method!r} is unknown; expected one of {sorted(CLUSTERING_METHODS)}"
        )
    return CLUSTERING_METHODS[method], method


def _constraint_pairs(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    must_link: Sequence[tuple[str, str]],
    cannot_link: Sequence[tuple[str, str]],
) -> tuple[list[tuple[int, int]], list[tuple[int, int]], int]:
    """Must- and cannot-links as node pairs, and how many name an unknown record."""
    nodes = constraint_nodes(con, [*must_link, *cannot_link])
    must = [(nodes[a], nodes[b]) for a, b in must_link if a in nodes and b in nodes]
    cannot = [(nodes[a], nodes[b]) for a, b in cannot_link if a in nodes and b in nodes]
    ignored = len(must_link) + len(cannot_link) - len(must) - len(cannot)
    if ignored:
        logger.warning("%d steward decision(s) name records not in %s", ignored, records_table)
    return must, cannot, ignored


def _summarise(
    con: duckdb.DuckDBPyConnection,
    out_table: str,
    result: Clustering,
    links: int,
    ignored: int,
    method_name: str,
) -> ClusterSummary:
    """The summary of a clustering written to ``out_table``, logged at INFO."""
    row = con.execute(
        "SELECT count(*), count(DISTINCT customer_id), coalesce(max(customer_record_count), 0), "
        "count(*) FILTER (WHERE customer_record_count = 1) "
        f"FROM {quote(out_table)}"
    ).fetchall()[0]
    reasons: dict[str, int] = {}
    for refusal in result.refused:
        reasons[refusal.reason] = reasons.get(refusal.reason, 0) + 1
    summary = ClusterSummary(
        records=int(row[0]),
        customers=int(row[1]),
        largest_customer=int(row[2]),
        singletons=int(row[3]),
        links=links,
        links_refused=reasons.get(REFUSED_BY_CANNOT_LINK, 0),
        must_links_applied=result.must_links_applied,
        must_links_refused=reasons.get(MUST_LINK_CONFLICT, 0),
        constraints_ignored=ignored,
        method=method_name,
        links_refused_as_weak=reasons.get(REFUSED_AS_WEAK_BRIDGE, 0),
    )
    logger.info(
        "clustered %d records into %d customers with %s (%d links; refused: %d by "
        "cannot-links, %d as weak bridges; %d must-links applied, %d refused)",
        summary.records,
        summary.customers,
        summary.method,
        summary.links,
        summary.links_refused,
        summary.links_refused_as_weak,
        summary.must_links_applied,
        summary.must_links_refused,
    )
    return summary
