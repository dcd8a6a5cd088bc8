"""Where each kind of stable id keeps its state: four warehouse tables (see
:mod:`linkage.cluster.stable_ids.assign` for how ids are assigned).

- registry (``customer_ids``): every id ever issued, never deleted (:data:`REGISTRY_COLUMNS`).
- membership (``customer_membership``): ``member`` -> ``id`` as of the last run.
- history (``customer_id_history``): ids issued and retired, per run (:data:`HISTORY_COLUMNS`).
- moves (``customer_record_moves``): members whose id changed, per run.

Examples:
    ```py
    ensure_id_tables(con, CUSTOMER_ID_TABLES, member_type="VARCHAR")
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

from linkage.tables import (
    CUSTOMER_ID_HISTORY,
    CUSTOMER_IDS,
    CUSTOMER_MEMBERSHIP,
    CUSTOMER_RECORD_MOVES,
    HOUSEHOLD_ID_HISTORY,
    HOUSEHOLD_IDS,
    HOUSEHOLD_MEMBERSHIP,
    HOUSEHOLD_MOVES,
)
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

REGISTRY_COLUMNS: dict[str, str] = {
    "id": "VARCHAR",
    "created_run_id": "VARCHAR",
    "created_at": "TIMESTAMP",
    "created_seq": "BIGINT",
    "status": "VARCHAR",
    "retired_run_id": "VARCHAR",
    "merged_into": "VARCHAR",
    "split_from": "VARCHAR",
    "first_member": "VARCHAR",
}
"""Columns of the registry of every id ever issued (times in UTC)."""

HISTORY_COLUMNS: dict[str, str] = {
    "run_id": "VARCHAR",
    "event_at": "TIMESTAMP",
    "id": "VARCHAR",
    "event": "VARCHAR",
    "related_id": "VARCHAR",
    "members": "BIGINT",
}
"""Columns of the id history: one row per id issued or retired in a run."""

EVENTS = ("new", "split", "merged", "retired")
"""The events the history table holds."""


@dataclass(frozen=True)
class IdTables:
    """Where one kind of stable id keeps its state.

    Attributes:
        prefix: Start of every id, e.g. ``"cus_"``.
        registry: Every id ever issued, never deleted.
        membership: Each member's id as of the last run.
        history: Ids issued and retired, per run.
        moves: Members whose id changed, per run.
        id_column: Name of the id column in the output table, e.g. ``"customer_id"``.

    Examples:
        >>> CUSTOMER_ID_TABLES.id_column
        'customer_id'
        >>> HOUSEHOLD_ID_TABLES.prefix
        'hh_'
    """

    prefix: str
    registry: str
    membership: str
    history: str
    moves: str
    id_column: str


CUSTOMER_ID_TABLES = IdTables(
    "cus_",
    CUSTOMER_IDS,
    CUSTOMER_MEMBERSHIP,
    CUSTOMER_ID_HISTORY,
    CUSTOMER_RECORD_MOVES,
    "customer_id",
)
HOUSEHOLD_ID_TABLES = IdTables(
    "hh_",
    HOUSEHOLD_IDS,
    HOUSEHOLD_MEMBERSHIP,
    HOUSEHOLD_ID_HISTORY,
    HOUSEHOLD_MOVES,
    "household_id",
)


def ensure_id_tables(con: duckdb.DuckDBPyConnection, tables: IdTables, member_type: str) -> None:
    """Create the four tables of ``tables`` when missing (members of ``member_type``)."""

    def create(table: str, columns: dict[str, str]) -> None:
        names = ", ".join(f"{quote(c)} {t}" for c, t in columns.items())
        con.execute(f"CREATE TABLE IF NOT EXISTS {quote(table)} ({names})")

    create(tables.registry, REGISTRY_COLUMNS)
    create(tables.membership, {"member": member_type, "id": "VARCHAR"})
    create(tables.history, HISTORY_COLUMNS)
    create(
        tables.moves,
        {
            "run_id": "VARCHAR",
            "moved_at": "TIMESTAMP",
            "member": member_type,
            "from_id": "VARCHAR",
            "to_id": "VARCHAR",
        },
    )
