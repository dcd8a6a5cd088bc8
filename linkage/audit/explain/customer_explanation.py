"""What an explanation of a customer holds: its records, links, decisions and history.

:class:`CustomerExplanation` is what
:func:`linkage.audit.explain.customer.explain_customer` returns; :class:`CustomerEdge`
is one link between two of its records.

Examples:
    ```py
    customer = explain_customer(con, "cus_00a36e81bcfd0080")
    [(e.record_l, e.record_r) for e in customer.spanning_tree], len(customer.bridges)
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from linkage.audit.explain.json_values import plain_value

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
