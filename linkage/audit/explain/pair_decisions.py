"""What was decided about two records: their customers, steward decisions and refusals.

Examples:
    ```py
    customers = customers_of(con, (left, right))
    decision, history, unmerges = pair_overrides(con, left, right, role=steward)
    refusals = refused_links(con, left, right, role=analyst)
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import duckdb

from linkage.audit.explain.json_values import override_json
from linkage.audit.explain.reads import fetch_dicts
from linkage.cluster.overrides.decisions import list_overrides
from linkage.cluster.overrides.in_force import effective_overrides
from linkage.privacy.role_policy import Role
from linkage.privacy.role_sql import shown_reference
from linkage.tables import CUSTOMER_CLUSTERS, CUSTOMER_RECORDS, REFUSED_LINKS
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)


def customers_of(con: duckdb.DuckDBPyConnection, records: Sequence[str]) -> dict[str, str]:
    """The customer of each record, by ``unique_id`` (empty before clustering)."""
    if not table_exists(con, CUSTOMER_CLUSTERS):
        return {}
    return dict(
        con.execute(
            f"SELECT unique_id, customer_id FROM {quote(CUSTOMER_CLUSTERS)} "
            "WHERE list_contains(?, unique_id)",
            [list(records)],
        ).fetchall()
    )


def pair_overrides(
    con: duckdb.DuckDBPyConnection, left: str, right: str, *, role: Role
) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """The decision in force between the records, the pair's decision history and the
    unmerges in force of either record."""
    overrides = effective_overrides(con, records_table=CUSTOMER_RECORDS)
    in_force = overrides.for_pair(left, right)
    decision = (
        {"decision": in_force.decision, "override": override_json(in_force.override, role=role)}
        if in_force
        else None
    )
    pair = {left, right}
    history = tuple(
        override_json(o, role=role)
        for o in list_overrides(con)
        if o.record_b is not None and {o.record_a, o.record_b} == pair
    )
    unmerges = tuple(override_json(u, role=role) for u in overrides.unmerges if u.record_a in pair)
    return decision, history, unmerges


def refused_links(
    con: duckdb.DuckDBPyConnection, left: str, right: str, *, role: Role
) -> tuple[dict[str, Any], ...]:
    """Rows of ``refused_links`` about the pair: its own link refused (``role`` ``link``)
    or links refused because the pair is a cannot-link (``role`` ``forbidden_pair``)."""
    if not table_exists(con, REFUSED_LINKS):
        return ()
    rows = fetch_dicts(
        con,
        "SELECT CASE WHEN least(unique_id_l, unique_id_r) = $1 "
        "AND greatest(unique_id_l, unique_id_r) = $2 THEN 'link' ELSE 'forbidden_pair' END "
        f"AS role, * FROM {quote(REFUSED_LINKS)} "
        "WHERE (least(unique_id_l, unique_id_r) = $1 AND greatest(unique_id_l, unique_id_r) = $2) "
        "OR (least(cannot_link_l, cannot_link_r) = $1 "
        "AND greatest(cannot_link_l, cannot_link_r) = $2)",
        [left, right],
    )
    ids = ("unique_id_l", "unique_id_r", "cannot_link_l", "cannot_link_r")
    return tuple(
        {k: shown_reference(role, v) if k in ids and v is not None else v for k, v in r.items()}
        for r in rows
    )
