"""Each customer's link graph described: size, links, density, weakest link, bridges.

:func:`customer_graph_metrics` writes ``customer_graph_metrics`` (one row per customer)
and warns about customers larger than a limit; :func:`bridges_and_components` finds
the links that hold a customer together on their own.

Examples:
    ```py
    metrics = customer_graph_metrics(
        con,
        clusters_table="customer_clusters",
        pairs_table="pairwise_matches",
        threshold=0.95,
        warn_cluster_size=50,
    )
    metrics.oversized
    ```
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import numpy as np
import pyarrow as pa

from linkage.tables import CUSTOMER_GRAPH_METRICS
from linkage.warehouse import quote, table_columns

logger = logging.getLogger(__name__)

_NODES = "__meld_cluster_nodes"
_MEMBERS = "__meld_graph_members"
_BRIDGES = "__meld_graph_bridges"


@dataclass(frozen=True)
class GraphMetricsSummary:
    """What :func:`customer_graph_metrics` found.

    Attributes:
        customers: Customers described (one row each in the metrics table).
        largest_customer: Records in the largest customer.
        warn_cluster_size: Customers with more records than this are oversized.
        oversized: ``(customer_id, records)`` of each oversized customer, largest first.
        customers_with_bridges: Customers that one link holds together somewhere (a
            link whose removal would split them).
        customers_held_by_must_links: Customers whose links alone do not connect them.
    """

    customers: int
    largest_customer: int
    warn_cluster_size: int
    oversized: tuple[tuple[str, int], ...]
    customers_with_bridges: int
    customers_held_by_must_links: int


def customer_graph_metrics(
    con: duckdb.DuckDBPyConnection,
    *,
    clusters_table: str,
    pairs_table: str,
    threshold: float,
    out_table: str = CUSTOMER_GRAPH_METRICS,
    warn_cluster_size: int = 50,
) -> GraphMetricsSummary:
    """Describe each customer's link graph in ``out_table`` and warn about big customers.

    A customer's links are its pairs at or above ``threshold`` without a ``link_veto``.
    One row per customer of ``clusters_table``:

    - ``records``, ``links`` and ``density`` (links over record pairs; NULL for one
      record): a big customer of low density is a chain, not a person;
    - ``min_link_probability`` and ``mean_link_probability`` (NULL without links);
    - ``bridges``: links whose removal would split the customer, each a single point
      where two groups of records hang together;
    - ``link_components``: pieces the links alone make (1, or more where steward
      must-links join what the model does not link);
    - ``vetoed_pairs``: vetoed pairs inside the customer (put there by must-links, or
      by connected components through other records);
    - ``oversized``: more than ``warn_cluster_size`` records; each is also logged as a
      warning.

    Splink's ``linker.clustering.compute_graph_metrics`` computes similar node, edge and
    cluster tables, but it needs a ``Linker`` over the records, the optional ``igraph``
    package for bridges, and it counts every pair above the threshold as an edge,
    vetoed ones included; this works on the warehouse tables alone, with the same links
    the clustering used, and takes seconds for a million records.

    Args:
        con: Warehouse connection.
        clusters_table: One row per record with ``unique_id`` and ``customer_id``.
        pairs_table: Scored pairs with ``unique_id_l``, ``unique_id_r``,
            ``match_probability`` and optionally ``link_veto``.
        threshold: Match probability at or above which a pair is a link.
        out_table: Table to (re)create.
        warn_cluster_size: Customers with more records than this are oversized.

    Returns:
        Counts, and the oversized customers largest first.

    Examples:
        ```py
        metrics = customer_graph_metrics(
            con,
            clusters_table="customer_clusters",
            pairs_table="pairwise_matches",
            threshold=0.95,
            warn_cluster_size=50,
        )
        for customer_id, records in metrics.oversized:
            ...
        ```
    """
    has_veto = "link_veto" in table_columns(con, pairs_table)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_NODES} AS "
        "SELECT unique_id, customer_id, "
        "(row_number() OVER (ORDER BY unique_id) - 1)::BIGINT AS node "
        f"FROM {quote(clusters_table)}"
    )
    try:
        n = int(con.execute(f"SELECT count(*) FROM {_NODES}").fetchall()[0][0])
        _create_links_in_customers(con, pairs_table, threshold, has_veto=has_veto)
        _register_bridges(con, n)
        _create_metrics_table(con, out_table, pairs_table, warn_cluster_size, has_veto=has_veto)
    finally:
        with contextlib.suppress(duckdb.Error):
            con.unregister(_BRIDGES)
        con.execute(f"DROP TABLE IF EXISTS {_MEMBERS}")
        con.execute(f"DROP TABLE IF EXISTS {_NODES}")
    summary = _summarise(con, out_table, warn_cluster_size)
    if summary.oversized:
        _warn_oversized(summary, out_table)
    return summary


def _warn_oversized(summary: GraphMetricsSummary, out_table: str) -> None:
    """One warning naming the ten largest oversized customers."""
    logger.warning(
        "%d customer(s) have more than %d records (clustering.warn_cluster_size), "
        "largest first: %s; see %s",
        len(summary.oversized),
        summary.warn_cluster_size,
        ", ".join(f"{customer_id} ({records})" for customer_id, records in summary.oversized[:10]),
        out_table,
    )


def _pairs_in_customer(pairs_table: str) -> str:
    """SQL ``FROM ... WHERE``: the pairs between two records of one customer (``p``,
    with the nodes ``l`` and ``r``)."""
    return (
        f"FROM {quote(pairs_table)} AS p "
        f"JOIN {_NODES} AS l ON l.unique_id = p.unique_id_l "
        f"JOIN {_NODES} AS r ON r.unique_id = p.unique_id_r "
        "WHERE l.customer_id = r.customer_id AND l.node <> r.node "
    )


def _create_links_in_customers(
    con: duckdb.DuckDBPyConnection, pairs_table: str, threshold: float, *, has_veto: bool
) -> None:
    """The links inside each customer, each node pair once with its best probability."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_MEMBERS} AS "
        "SELECT l.customer_id, least(l.node, r.node) AS node_l, "
        "greatest(l.node, r.node) AS node_r, max(p.match_probability) AS probability "
        + _pairs_in_customer(pairs_table)
        + "AND p.match_probability >= $threshold "
        + ("AND p.link_veto IS NULL " if has_veto else "")
        + "GROUP BY ALL",
        {"threshold": threshold},
    )


def _register_bridges(con: duckdb.DuckDBPyConnection, n: int) -> None:
    """Per node: its link component and how many bridges end in it (as the left end)."""
    edges = con.execute(f"SELECT node_l, node_r FROM {_MEMBERS} ORDER BY 1, 2").fetchall()
    bridges, components = bridges_and_components(n, edges)
    con.register(
        _BRIDGES,
        pa.table(
            {
                "node": pa.array(np.arange(n, dtype=np.int64)),
                "component": pa.array(np.asarray(components, dtype=np.int64)),
                "bridge_ends": pa.array(
                    np.bincount(np.asarray([a for a, _ in bridges], dtype=np.int64), minlength=n)
                ),
            }
        ),
    )


def _create_metrics_table(
    con: duckdb.DuckDBPyConnection,
    out_table: str,
    pairs_table: str,
    warn_cluster_size: int,
    *,
    has_veto: bool,
) -> None:
    """(Re)create ``out_table`` from the nodes, links and bridges tables."""
    vetoed = (
        "(SELECT l.customer_id, count(DISTINCT (least(l.node, r.node), "
        "greatest(l.node, r.node))) AS vetoed_pairs "
        + _pairs_in_customer(pairs_table)
        + "AND p.link_veto IS NOT NULL GROUP BY 1)"
        if has_veto
        else "(SELECT NULL::VARCHAR AS customer_id, 0 AS vetoed_pairs WHERE false)"
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(out_table)} AS "
        "WITH nodes AS ("
        "  SELECT n.customer_id, count(*) AS records, "
        "  count(DISTINCT b.component) AS link_components, sum(b.bridge_ends) AS bridges "
        f"  FROM {_NODES} AS n JOIN {_BRIDGES} AS b USING (node) GROUP BY 1"
        "), links AS ("
        "  SELECT customer_id, count(*) AS links, min(probability) AS min_p, "
        f"  avg(probability) AS mean_p FROM {_MEMBERS} GROUP BY 1"
        ") "
        "SELECT n.customer_id, n.records::BIGINT AS records, "
        "coalesce(k.links, 0)::BIGINT AS links, "
        "CASE WHEN n.records > 1 THEN coalesce(k.links, 0) / (n.records * (n.records - 1) / 2) "
        "END AS density, k.min_p AS min_link_probability, k.mean_p AS mean_link_probability, "
        "n.bridges::BIGINT AS bridges, n.link_components::BIGINT AS link_components, "
        "coalesce(v.vetoed_pairs, 0)::BIGINT AS vetoed_pairs, "
        "n.records > $warn AS oversized "
        "FROM nodes AS n LEFT JOIN links AS k USING (customer_id) "
        f"LEFT JOIN {vetoed} AS v USING (customer_id) "
        "ORDER BY n.records DESC, n.customer_id",
        {"warn": warn_cluster_size},
    )


def _summarise(
    con: duckdb.DuckDBPyConnection, out_table: str, warn_cluster_size: int
) -> GraphMetricsSummary:
    """Counts from the metrics table, and the oversized customers largest first."""
    row = con.execute(
        "SELECT count(*), coalesce(max(records), 0), count(*) FILTER (WHERE bridges > 0), "
        f"count(*) FILTER (WHERE link_components > 1) FROM {quote(out_table)}"
    ).fetchall()[0]
    oversized = tuple(
        (str(customer_id), int(records))
        for customer_id, records in con.execute(
            f"SELECT customer_id, records FROM {quote(out_table)} WHERE oversized "
            "ORDER BY records DESC, customer_id"
        ).fetchall()
    )
    return GraphMetricsSummary(
        customers=int(row[0]),
        largest_customer=int(row[1]),
        warn_cluster_size=warn_cluster_size,
        oversized=oversized,
        customers_with_bridges=int(row[2]),
        customers_held_by_must_links=int(row[3]),
    )


def bridges_and_components(
    n: int, edges: Sequence[tuple[int, int]]
) -> tuple[list[tuple[int, int]], list[int]]:
    """Bridges of an undirected simple graph (Tarjan's low-link, without recursion) and
    a component label per node.

    Examples:
        >>> bridges_and_components(5, [(0, 1), (1, 2), (0, 2), (2, 3)])
        ([(2, 3)], [0, 0, 0, 0, 4])
    """
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in edges:
        neighbours[a].append(b)
        neighbours[b].append(a)
    order = [-1] * n  # discovery time
    low = [0] * n
    component = list(range(n))
    bridges: list[tuple[int, int]] = []
    clock = 0
    for start in range(n):
        if order[start] != -1 or not neighbours[start]:
            continue
        order[start] = low[start] = clock
        clock += 1
        stack = [(start, -1, iter(neighbours[start]))]
        while stack:
            node, parent, todo = stack[-1]
            for other in todo:
                if other == parent:
                    continue
                if order[other] == -1:
                    order[other] = low[other] = clock
                    clock += 1
                    component[other] = start
                    stack.append((other, node, iter(neighbours[other])))
                    break
                if order[other] < low[node]:
                    low[node] = order[other]
            else:
                stack.pop()
                if parent != -1:
                    if low[node] < low[parent]:
                        low[parent] = low[node]
                    if low[node] > order[parent]:
                        bridges.append((min(parent, node), max(parent, node)))
    return sorted(bridges), component
