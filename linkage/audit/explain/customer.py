"""What holds a customer together: its records, links, steward decisions and id history.

:func:`explain_customer` answers "why is this one customer?": its records, the links
between them at or above the scoring threshold with their weights, which of those form
the maximum-weight spanning tree and which are bridges (one link whose removal would
split the customer), the steward must-links that hold records in, and the customer
id's history. A retired id leads to the customer it was merged into. Reads only.

Examples:
    ```py
    con = duckdb.connect("warehouse.duckdb", read_only=True)
    customer = explain_customer(con, "cus_00a36e81bcfd0080", role=analyst)
    [(e.record_l, e.record_r) for e in customer.spanning_tree]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import duckdb

from linkage.audit.explain.customer_explanation import CustomerEdge, CustomerExplanation
from linkage.audit.explain.customer_links import customer_links, spanning_edges
from linkage.audit.explain.json_values import override_json
from linkage.audit.explain.reads import (
    ExplainError,
    fetch_dicts,
    require_tables,
    scoring_model_or_error,
)
from linkage.cluster.overrides.decisions import MUST_LINK, Override
from linkage.cluster.overrides.in_force import effective_overrides
from linkage.master.customer_view import RECORD_DISPLAY_COLUMNS
from linkage.privacy.role_policy import Role, viewing_role
from linkage.privacy.role_sql import role_select, shown_reference
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_GRAPH_METRICS,
    CUSTOMER_ID_HISTORY,
    CUSTOMER_IDS,
    CUSTOMER_RECORD_MOVES,
    CUSTOMER_RECORDS,
)
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)


def explain_customer(
    con: duckdb.DuckDBPyConnection,
    customer_id: str,
    *,
    role: Role | None = None,
    mask: bool = False,
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
        role: Whose view: the records and record ids as the role sees them (its
            view of ``customer_records``); every value in clear when None.
        mask: Also mask what the role sees in clear.

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
    records = _customer_records(con, customer_id)
    if registry is None and not records:
        raise ExplainError(f"no customer {customer_id!r} in {CUSTOMER_CLUSTERS} or {CUSTOMER_IDS}")
    status = str(registry["status"]) if registry else "active"
    merged_into = registry.get("merged_into") if registry else None
    member_ids = [str(r["unique_id"]) for r in records]
    index = {uid: i for i, uid in enumerate(member_ids)}
    links = customer_links(con, customer_id, stored.match_threshold)
    edges, components = spanning_edges(links, index)
    must_links = _must_links(con, set(member_ids))
    viewer = viewing_role(role, mask=mask)

    def ref(record: str) -> str:
        return shown_reference(viewer, record)

    history, moves, metrics = _id_rows(con, customer_id)
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
        records=_shown_records(con, viewer, customer_id, member_ids),
        edges=_referenced(edges, ref),
        link_components=components if member_ids else 0,
        must_links=tuple(override_json(o, role=viewer) for o in must_links),
        graph_metrics=metrics[0] if metrics else None,
        id_history=tuple(history),
        record_moves=tuple({**m, "member": ref(str(m["member"]))} for m in moves),
    )


def _customer_records(con: duckdb.DuckDBPyConnection, customer_id: str) -> list[dict[str, Any]]:
    """The customer's records (display columns present), by ``unique_id``."""
    columns = set(table_columns(con, CUSTOMER_RECORDS))
    shown = [c for c in RECORD_DISPLAY_COLUMNS if c in columns]
    return fetch_dicts(
        con,
        "SELECT " + ", ".join(f"r.{quote(c)}" for c in shown) + " "
        f"FROM {quote(CUSTOMER_CLUSTERS)} AS c "
        f"JOIN {quote(CUSTOMER_RECORDS)} AS r USING (unique_id) "
        "WHERE c.customer_id = ? ORDER BY r.unique_id",
        [customer_id],
    )


def _shown_records(
    con: duckdb.DuckDBPyConnection, role: Role, customer_id: str, member_ids: list[str]
) -> tuple[dict[str, Any], ...]:
    """The customer's records (display columns) through ``role``'s view of
    ``customer_records``, in the order of ``member_ids``; a record whose id the role does
    not see is labelled by its source alone."""
    sql = role_select(
        con,
        role,
        CUSTOMER_RECORDS,
        where=f"unique_id IN (SELECT unique_id FROM {quote(CUSTOMER_CLUSTERS)} "
        "WHERE customer_id = ?)",
        order_by=["unique_id"],
    )
    rows = fetch_dicts(con, sql, [customer_id]) if sql else [{} for _ in member_ids]
    shown = []
    for uid, row in zip(member_ids, rows, strict=True):
        record = {c: row[c] for c in RECORD_DISPLAY_COLUMNS if c in row}
        shown.append({"unique_id": shown_reference(role, uid), **record})
    return tuple(shown)


def _id_rows(
    con: duckdb.DuckDBPyConnection, customer_id: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """The id's history, the records moved into or out of it, and its graph metrics
    (each empty when its table does not exist)."""
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
    return history, moves, metrics


def _referenced(
    edges: Sequence[CustomerEdge], ref: Callable[[str], str]
) -> tuple[CustomerEdge, ...]:
    """The edges with their record ids as ``ref`` shows them (masked or as is)."""
    return tuple(
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
