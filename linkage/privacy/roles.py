"""Role views: one DuckDB schema per role, ``role_<name>``, with one view per customer
table that keeps, masks or leaves out each column as the role's fields say.

:func:`publish_role_views` (re)creates every role's schema in one transaction, after
the customer tables are built; a table that does not exist (households switched off,
no orders) simply has no view, and the schema of a role no longer configured is
dropped. A view reads ``main.<table>`` at query time, so it always shows the current
customers. The SQL of each view is :func:`linkage.privacy.role_sql.role_select`; the
command line reads through the same SQL.

Examples:
    ```py
    publish_role_views(con, [steward, analyst])
    con.sql("SELECT * FROM role_analyst.golden_customers")  # no names, e-mails, phones
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from linkage.privacy.role_policy import (
    RECORD_ID,
    ROLE_FIELDS,
    VISIBILITIES,
    Role,
    RoleError,
    Visibility,
    role_view_columns,
)
from linkage.privacy.role_sql import role_select
from linkage.tables import (
    CUSTOMER_360,
    CUSTOMER_CLUSTERS,
    CUSTOMER_GRAPH,
    CUSTOMER_HOUSEHOLDS,
    CUSTOMER_ID_HISTORY,
    CUSTOMER_ORDERS,
    CUSTOMER_PRODUCTS,
    CUSTOMER_RECORDS,
    GOLDEN_CUSTOMERS,
    HOUSEHOLDS,
    ROLE_SCHEMA_PREFIX,
    role_schema,
)
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

__all__ = [
    "RECORD_ID",
    "ROLE_FIELDS",
    "ROLE_VIEW_TABLES",
    "VISIBILITIES",
    "Role",
    "RoleError",
    "RoleViews",
    "Visibility",
    "publish_role_views",
    "role_schema",
    "role_view_columns",
]

ROLE_VIEW_TABLES: tuple[str, ...] = (
    GOLDEN_CUSTOMERS,
    CUSTOMER_360,
    CUSTOMER_RECORDS,
    CUSTOMER_CLUSTERS,
    CUSTOMER_ID_HISTORY,
    CUSTOMER_HOUSEHOLDS,
    HOUSEHOLDS,
    CUSTOMER_ORDERS,
    CUSTOMER_PRODUCTS,
    CUSTOMER_GRAPH,
)
"""The customer tables each role gets a view of (when they exist)."""


@dataclass(frozen=True)
class RoleViews:
    """The views published for one role."""

    role: str
    schema: str
    views: tuple[str, ...]
    clear: tuple[str, ...]
    masked: tuple[str, ...]
    hidden: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """As JSON-ready data (for asset metadata)."""
        return {
            "schema": self.schema,
            "views": list(self.views),
            "clear": list(self.clear),
            "masked": list(self.masked),
            "hidden": list(self.hidden),
        }


def _role_schemas(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The role schemas that exist in the warehouse's own catalog."""
    rows = con.execute(
        "SELECT schema_name FROM duckdb_schemas() "
        "WHERE database_name = current_database() AND starts_with(schema_name, ?)",
        [ROLE_SCHEMA_PREFIX],
    ).fetchall()
    return sorted(row[0] for row in rows)


def _create_views(con: duckdb.DuckDBPyConnection, role: Role) -> RoleViews:
    schema = role_schema(role.name)
    con.execute(f"DROP SCHEMA IF EXISTS {quote(schema)} CASCADE")
    con.execute(f"CREATE SCHEMA {quote(schema)}")
    views = []
    for table in ROLE_VIEW_TABLES:
        select = role_select(con, role, table)
        if select is None:
            continue
        con.execute(f"CREATE VIEW {quote(schema)}.{quote(table)} AS {select}")
        views.append(table)
    seen = role_view_columns(role)
    return RoleViews(
        role=role.name,
        schema=schema,
        views=tuple(views),
        **{v: tuple(f for f, shown in seen.items() if shown == v) for v in VISIBILITIES},
    )


def publish_role_views(con: duckdb.DuckDBPyConnection, roles: Sequence[Role]) -> list[RoleViews]:
    """(Re)create the schema ``role_<name>`` of every role, with a view per customer
    table that exists, and drop the schemas of roles no longer declared; all in one
    transaction, so readers see the old views or the new ones.

    Args:
        con: The warehouse, writable.
        roles: Every declared role.

    Returns:
        What each role got, in the order given.
    """
    wanted = {role_schema(role.name) for role in roles}
    con.execute("BEGIN TRANSACTION")
    try:
        for stale in _role_schemas(con):
            if stale not in wanted:
                con.execute(f"DROP SCHEMA {quote(stale)} CASCADE")
                logger.info("dropped the views of a role no longer declared (%s)", stale)
        published = [_create_views(con, role) for role in roles]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    for views in published:
        logger.info(
            "role %s: %d view(s) in %s; %d field(s) hidden, %d masked",
            views.role,
            len(views.views),
            views.schema,
            len(views.hidden),
            len(views.masked),
        )
    return published
