"""The links inside a customer: its scored pairs, spanning tree and bridges.

The maximum-weight spanning tree takes the links strongest first (Kruskal), skipping
vetoed pairs and links that join records already connected; a bridge is a link whose
removal would split the customer's links in two.

Examples:
    ```py
    links = customer_links(con, "cus_00a36e81bcfd0080", threshold=0.95)
    edges, components = spanning_edges(links, {uid: i for i, uid in enumerate(members)})
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from linkage.audit.explain.customer_explanation import CustomerEdge
from linkage.cluster.graph_metrics import bridges_and_components
from linkage.tables import CUSTOMER_CLUSTERS, PAIRWISE_MATCHES
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Link:
    """A scored pair of two records of one customer, at or above the threshold."""

    record_l: str
    record_r: str
    match_weight: float
    match_probability: float
    link_veto: str | None


def customer_links(
    con: duckdb.DuckDBPyConnection, customer_id: str, threshold: float
) -> list[Link]:
    """Pairs of the customer's records at or above ``threshold``, strongest first."""
    if not table_exists(con, PAIRWISE_MATCHES):
        return []
    veto = "p.link_veto" if "link_veto" in table_columns(con, PAIRWISE_MATCHES) else "NULL"
    rows = con.execute(
        f"SELECT p.unique_id_l, p.unique_id_r, p.match_weight, p.match_probability, {veto} "
        f"FROM {quote(PAIRWISE_MATCHES)} AS p "
        f"JOIN {quote(CUSTOMER_CLUSTERS)} AS l ON l.unique_id = p.unique_id_l "
        f"JOIN {quote(CUSTOMER_CLUSTERS)} AS r ON r.unique_id = p.unique_id_r "
        "WHERE l.customer_id = $1 AND r.customer_id = $1 AND p.match_probability >= $2 "
        "AND p.unique_id_l <> p.unique_id_r "
        "ORDER BY p.match_weight DESC, p.unique_id_l, p.unique_id_r",
        [customer_id, threshold],
    ).fetchall()
    return [Link(r[0], r[1], float(r[2]), float(r[3]), r[4]) for r in rows]


def spanning_edges(links: Sequence[Link], index: dict[str, int]) -> tuple[list[CustomerEdge], int]:
    """Mark the maximum-weight spanning tree (Kruskal over the links, strongest first)
    and the bridges; return the edges and the number of pieces the links make."""
    n = len(index)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    links = [x for x in links if x.record_l in index and x.record_r in index]
    usable = [link for link in links if link.link_veto is None]
    tree: set[tuple[int, int]] = set()
    for link in usable:  # strongest first
        a, b = index[link.record_l], index[link.record_r]
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb
            tree.add((min(a, b), max(a, b)))
    pairs = sorted(
        {
            (min(index[x.record_l], index[x.record_r]), max(index[x.record_l], index[x.record_r]))
            for x in usable
        }
    )
    bridges, components = bridges_and_components(n, pairs)
    bridge_set = set(bridges)
    edges = []
    for link in links:
        a, b = index[link.record_l], index[link.record_r]
        key = (min(a, b), max(a, b))
        usable_link = link.link_veto is None
        edges.append(
            CustomerEdge(
                record_l=link.record_l,
                record_r=link.record_r,
                index_l=a,
                index_r=b,
                match_weight=link.match_weight,
                match_probability=link.match_probability,
                link_veto=link.link_veto,
                in_spanning_tree=usable_link and key in tree,
                bridge=usable_link and key in bridge_set,
            )
        )
    return edges, len(set(components)) if n else 0
