"""Warehouse reads shared by the explanations, and the error they raise.

Examples:
    ```py
    require_tables(con, "customer_records")
    stored = scoring_model_or_error(con)
    rows = fetch_dicts(con, "SELECT * FROM customer_ids WHERE id = ?", ["cus_1"])
    ```
"""

from __future__ import annotations

import logging
from typing import Any

import duckdb

from linkage.errors import MeldError
from linkage.model.store import StoredModel, scoring_model
from linkage.warehouse import table_exists

logger = logging.getLogger(__name__)


class ExplainError(MeldError, LookupError):
    """A record, customer or table to explain is not in the warehouse; the message says
    which and what to do."""


def fetch_dicts(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]
) -> list[dict[str, Any]]:
    """The rows of a query as dicts keyed by column name."""
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def require_tables(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    """Raise :class:`ExplainError` naming the tables the warehouse does not have yet."""
    missing = [t for t in tables if not table_exists(con, t)]
    if missing:
        raise ExplainError(
            f"no table {', '.join(missing)} in the warehouse yet: materialize the pipeline first"
        )


def scoring_model_or_error(con: duckdb.DuckDBPyConnection) -> StoredModel:
    """The model that scored the run's pairs, or :class:`ExplainError` when there is none."""
    try:
        return scoring_model(con)
    except LookupError as exc:
        raise ExplainError(str(exc)) from exc
