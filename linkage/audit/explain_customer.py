"""What holds a customer together: its records, links, steward decisions and id history.

:func:`explain_customer` answers "why is this one customer?": its records, the links
between them at or above the scoring threshold with their weights, which of those form
the maximum-weight spanning tree and which are bridges (one link whose removal would
split the customer), the steward must-links that hold records in, and the customer
id's history. A retired id leads to the customer it was merged into. Reads only.

Examples:
    ```py
    con = duckdb.connect("warehouse.duckdb", read_only=True)
    customer = explain_customer(con, "cus_00a36e81bcfd0080", mask=True)
    [(e.record_l, e.record_r) for e in customer.spanning_tree]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from linkage.audit.explain import (
    ExplainError,
    fetch_dicts,
    override_json,
    plain_value,
    require_tables,
    scoring_model_or_error,
)
from linkage.cluster.clustering import bridges_and_components
from linkage.cluster.overrides import MUST_LINK, Override, effective_overrides
from linkage.master.customer_view import RECORD_DISPLAY_COLUMNS, mask_reference, masked_record
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_GRAPH_METRICS,
    CUSTOMER_ID_HISTORY,
    CUSTOMER_IDS,
    CUSTOMER_RECORD_MOVES,
    CUSTOMER_RECORDS,
    PAIRWISE_MATCHES,
)
from linkage.warehouse import quote, table_columns, table_exists

__all__ = ["CustomerEdge", "CustomerExplanation", "explain_customer"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CustomerEdge:
    """A link between two records of one customer.

    Attributes:
        record_l: One record's ``unique_id`` (masked when asked).
        record_r: The other record's ``unique_id``.
        index_l: Position of ``record_l`` in :attr:`CustomerExplanation.records`.
        index_r: Position of ``record_r``.
        match_weight: The pair's match weight.
        match_probability: The pair's match probability.
        link_veto: The veto that forbids the link (such a pair is no link: it holds
            nothing together), if any.
        in_spanning_tree: Whether the link is in the maximum-weight spanning tree of the
            customer's links: the strongest links that, together, connect its records.
        bridge: Whether removing the link would split the customer's links in two.
    """

    record_l: str
    record_r: str
    index_l: int
    index_r: int
    match_weight: float
    match_probability: float
    link_veto: str | None
    in_spanning_tree: bool
    bridge: bool


@dataclass(frozen=True)
class CustomerExplanation:
    """What holds a customer together (see :func:`explain_customer`).

    Attributes:
        customer_id: The id asked about.
        status: ``active`` or ``retired`` (from the ``customer_ids`` registry).
        merged_into: For a retired id, the customer it was merged into.
        current_id: The active id the customer lives on as: itself, or the end of the
            ``merged_into`` chain (None when retired without a survivor).
        split_from: The customer this one split from, if any.
        created_at: When the id was issued.
        model_name: Registered model that scored the run's pairs.
        model_version: Its version.
        match_threshold: Match probability at or above which a pair is a link.
        records: The customer's records (display columns, masked when asked).
        edges: Pairs of its records at or above the threshold, strongest first.
        link_components: Pieces the links alone make (more than 1 where steward
            must-links hold records in).
        must_links: Must-link decisions in force between two of its records.
        graph_metrics: The customer's row of ``customer_graph_metrics``, if any.
        id_history: Rows of ``customer_id_history`` naming the id (as id or related id).
        record_moves: Rows of ``customer_record_moves`` into or out of the customer.
    """

    customer_id: str
    status: str
    merged_into: str | None
    current_id: str | None
    split_from: str | None
    created_at: datetime | None
    model_name: str
    model_version: str
    match_threshold: float
    records: tuple[dict[str, Any], ...]
    edges: tuple[CustomerEdge, ...]
    link_components: int
    must_links: tuple[dict[str, Any], ...]
    graph_metrics: dict[str, Any] | None
    id_history: tuple[dict[str, Any], ...]
    record_moves: tuple[dict[str, Any], ...]

    @property
    def spanning_tree(self) -> tuple[CustomerEdge, ...]:
        """The links that hold the customer together (records minus link components)."""
        return tuple(e for e in self.edges if e.in_spanning_tree)

    @property
    def bridges(self) -> tuple[CustomerEdge, ...]:
        """Links whose removal would split the customer."""
        return tuple(e for e in self.edges if e.bridge)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (timestamps and dates in ISO 8601)."""
        return plain_value(
            {
                "customer_id": self.customer_id,
                "status": self.status,
                "merged_into": self.merged_into,
                "current_id": self.current_id,
                "split_from": self.split_from,
                "created_at": self.created_at,
                "model": {
                    "name": self.model_name,
                    "version": self.model_version,
                    "match_threshold": self.match_threshold,
                },
                "records": list(self.records),
                "edges": [e.__dict__ for e in self.edges],
                "spanning_tree_edges": len(self.spanning_tree),
                "bridges": len(self.bridges),
                "link_components": self.link_components,
                "must_links": list(self.must_links),
                "graph_metrics": self.graph_metrics,
                "id_history": list(self.id_history),
                "record_moves": list(self.record_moves),
            }
        )


def explain_customer(
    con: duckdb.DuckDBPyConnection, customer_id: str, *, mask: bool = False
) -> CustomerExplanation:
    """Explain what holds a customer together, and where its id came from.

    The links are the pairs of its records that scored at or above the threshold of the
    model that scored the run. The maximum-weight spanning tree takes them strongest
    first (Kruskal), skipping vetoed pairs and links that join records already
    connected: it has one link fewer than the customer has records when the links alone
    connect it, and each missing link is a place where a steward must-link holds records
    in. A bridge is a link whose removal would split the links in two (as counted in
    ``customer_graph_metrics``).

    Args:
        con: Warehouse connection (read-only is enough).
        customer_id: A customer id (``cus_...``), active or retired.
        mask: Show personal values and record ids only by their shape.

    Returns:
        The explanation; a retired id has no records and points to its survivor.

    Raises:
        ExplainError: The id is unknown, or the customers are not built yet.

    Examples:
        ```py
        customer = explain_customer(con, "cus_00a36e81bcfd0080")
        len(customer.spanning_tree) == len(customer.records) - customer.link_components
        [e for e in customer.edges if e.bridge]
        ```
    """
    require_tables(con, CUSTOMER_RECORDS, CUSTOMER_CLUSTERS)
    stored = scoring_model_or_error(con)
    registry = _registry_row(con, customer_id)
    columns = set(table_columns(con, CUSTOMER_RECORDS))
    shown = [c for c in RECORD_DISPLAY_COLUMNS if c in columns]
    records = fetch_dicts(
        con,
        "SELECT " + ", ".join(f"r.{quote(c)}" for c in shown) + " "
        f"FROM {quote(CUSTOMER_CLUSTERS)} AS c "
        f"JOIN {quote(CUSTOMER_RECORDS)} AS r USING (unique_id) "
        "WHERE c.customer_id = ? ORDER BY r.unique_id",
        [customer_id],
    )
    if registry is None and not records:
        raise ExplainError(f"no customer {customer_id!r} in {CUSTOMER_CLUSTERS} or {CUSTOMER_IDS}")
    status = str(registry["status"]) if registry else "active"
    merged_into = registry.get("merged_into") if registry else None
    member_ids = [str(r["unique_id"]) for r in records]
    index = {uid: i for i, uid in enumerate(member_ids)}
    links = _customer_links(con, customer_id, stored.match_threshold)
    edges, components = _edges(links, index)
    must_links = _must_links(con, set(member_ids))
    ref = mask_reference if mask else str
    history = (
        fetch_dicts(
            con,
            f"SELECT * FROM {quote(CUSTOMER_ID_HISTORY)} WHERE id = ? OR related_id = ? "
            "ORDER BY event_at, id",
            [customer_id, customer_id],
        )
        if table_exists(con, CUSTOMER_ID_HISTORY)
        else []
    )
    moves = (
        fetch_dicts(
            con,
            f"SELECT * FROM {quote(CUSTOMER_RECORD_MOVES)} WHERE from_id = ? OR to_id = ? "
            "ORDER BY moved_at, member",
            [customer_id, customer_id],
        )
        if table_exists(con, CUSTOMER_RECORD_MOVES)
        else []
    )
    metrics = (
        fetch_dicts(
            con,
            f"SELECT * FROM {quote(CUSTOMER_GRAPH_METRICS)} WHERE customer_id = ?",
            [customer_id],
        )
        if table_exists(con, CUSTOMER_GRAPH_METRICS)
        else []
    )
    return CustomerExplanation(
        customer_id=customer_id,
        status=status,
        merged_into=merged_into,
        current_id=_current_id(con, customer_id) if status != "active" else customer_id,
        split_from=registry.get("split_from") if registry else None,
        created_at=registry.get("created_at") if registry else None,
        model_name=stored.model_name,
        model_version=str(stored.model_version),
        match_threshold=stored.match_threshold,
        records=tuple(masked_record(r) if mask else r for r in records),
        edges=tuple(
            CustomerEdge(
                record_l=ref(e.record_l),
                record_r=ref(e.record_r),
                index_l=e.index_l,
                index_r=e.index_r,
                match_weight=e.match_weight,
                match_probability=e.match_probability,
                link_veto=e.link_veto,
                in_spanning_tree=e.in_spanning_tree,
                bridge=e.bridge,
            )
            for e in edges
        ),
        link_components=components if member_ids else 0,
        must_links=tuple(override_json(o, mask=mask) for o in must_links),
        graph_metrics=metrics[0] if metrics else None,
        id_history=tuple(history),
        record_moves=tuple({**m, "member": ref(str(m["member"]))} for m in moves),
    )


def _registry_row(con: duckdb.DuckDBPyConnection, customer_id: str) -> dict[str, Any] | None:
    if not table_exists(con, CUSTOMER_IDS):
        return None
    rows = fetch_dicts(con, f"SELECT * FROM {quote(CUSTOMER_IDS)} WHERE id = ?", [customer_id])
    return rows[0] if rows else None


def _current_id(con: duckdb.DuckDBPyConnection, customer_id: str) -> str | None:
    """Follow ``merged_into`` from a retired id to the active id it lives on as."""
    seen = {customer_id}
    current = customer_id
    while True:
        row = _registry_row(con, current)
        if row is None:
            return None
        if row["status"] == "active":
            return current
        following = row.get("merged_into")
        if following is None or following in seen:
            return None
        seen.add(following)
        current = following


@dataclass(frozen=True)
class _Link:
    record_l: str
    record_r: str
    match_weight: float
    match_probability: float
    link_veto: str | None


def _customer_links(
    con: duckdb.DuckDBPyConnection, customer_id: str, threshold: float
) -> list[_Link]:
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
    return [_Link(r[0], r[1], float(r[2]), float(r[3]), r[4]) for r in rows]


def _edges(links: Sequence[_Link], index: dict[str, int]) -> tuple[list[CustomerEdge], int]:
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


def _must_links(con: duckdb.DuckDBPyConnection, members: set[str]) -> list[Override]:
    """Must-link decisions in force between two of ``members``."""
    if not members:
        return []
    overrides = effective_overrides(con, records_table=CUSTOMER_RECORDS)
    return [
        p.override
        for key, p in sorted(overrides.pairs.items())
        if p.decision == MUST_LINK and key[0] in members and key[1] in members
    ]
