"""Looking a customer up as a role: ``meld customer --role``.

:func:`find_customers_as` resolves what a user types like
:func:`linkage.master.customer_view.find_customers`, but only by what the role sees: a
customer id always, a source record, an e-mail or a phone only when the role does not
hide record ids, e-mails or phones (an analyst who could type an e-mail and get the
customer back would learn who the pseudonymous customer is).
:func:`role_customer_profile` reads the golden record and the source records through
the role's view SQL (:func:`linkage.privacy.role_sql.role_select`).

Examples:
    ```py
    ids = find_customers_as(con, analyst, "cus_0123456789abcdef")
    profile = role_customer_profile(con, analyst, ids[0])
    ```
"""

from __future__ import annotations

import logging
import re
from typing import Any

import duckdb

from linkage.master.customer_view import (
    RECORD_DISPLAY_COLUMNS,
    CustomerProfile,
    customer_profile,
    find_customers,
)
from linkage.privacy.role_policy import RECORD_ID, Role, RoleError
from linkage.privacy.role_sql import role_select
from linkage.tables import CUSTOMER_360, CUSTOMER_CLUSTERS, CUSTOMER_RECORDS
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

_SOURCE_RECORD = re.compile(r"^([a-z][a-z0-9_]*):.+$")
_LABELS = {RECORD_ID: "source record ids", "email": "e-mails", "phone": "phone numbers"}


def _fetch(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _lookup_field(con: duckdb.DuckDBPyConnection, text: str) -> str:
    """Which field a lookup that is not a customer id uses: a record id when it reads
    ``<source>:<id>`` of a known source, else an e-mail (with ``@``) or a phone."""
    match = _SOURCE_RECORD.match(text)
    if match:
        known = con.execute(
            f"SELECT count(*) FROM main.{quote(CUSTOMER_CLUSTERS)} WHERE source_system = ?",
            [match.group(1)],
        ).fetchall()[0][0]
        if known:
            return RECORD_ID
    return "email" if "@" in text else "phone"


def find_customers_as(con: duckdb.DuckDBPyConnection, role: Role, query: str) -> list[str]:
    """Customer ids for a customer id, or for a source record, e-mail or phone the role
    sees (in clear or masked).

    Raises:
        RoleError: The query is a record id, e-mail or phone and the role does not see
            that field.
    """
    text = query.strip()
    if not text:
        return []
    by_id = con.execute(
        f"SELECT DISTINCT customer_id FROM main.{quote(CUSTOMER_CLUSTERS)} WHERE customer_id = ?",
        [text],
    ).fetchall()
    if by_id:
        return [by_id[0][0]]
    field = _lookup_field(con, text)
    if role.visibility(field) == "hidden":
        raise RoleError(
            f"role {role.name!r} does not see {_LABELS[field]}, so it cannot look customers "
            "up by them; use a customer id (cus_...)"
        )
    return find_customers(con, text)


def role_customer_profile(
    con: duckdb.DuckDBPyConnection, role: Role, customer_id: str
) -> CustomerProfile | None:
    """Everything ``meld customer`` shows about a customer, as ``role`` sees it: the
    golden record (``customer_360``) and the source records through the role's view
    SQL; household, purchases and id history hold no personal values. None when the
    customer is unknown."""
    profile = customer_profile(con, customer_id)
    if profile is None:
        return None
    golden_sql = role_select(con, role, CUSTOMER_360, where="customer_id = ?")
    golden = _fetch(con, golden_sql, [customer_id]) if golden_sql else []
    records_sql = role_select(
        con,
        role,
        CUSTOMER_RECORDS,
        where=f"unique_id IN (SELECT unique_id FROM main.{quote(CUSTOMER_CLUSTERS)} "
        "WHERE customer_id = ?)",
        order_by=["unique_id"],
    )
    records = _fetch(con, records_sql, [customer_id]) if records_sql else []
    shown = (*RECORD_DISPLAY_COLUMNS, "loaded_at")
    profile.golden = golden[0] if golden else {"customer_id": customer_id}
    profile.records = [{k: r[k] for k in shown if k in r} for r in records]
    return profile
