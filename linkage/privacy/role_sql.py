"""A table as a role sees it: one DuckDB ``SELECT`` that keeps, masks or leaves out each
column, and the same masks for single values shown outside a table.

Each column is read as a field (:data:`COLUMN_FIELDS`: ``emails`` holds e-mails,
``first_name_source`` a record id), as not personal (:data:`NON_PERSONAL_COLUMNS`:
ids of customers and households, counts, amounts, times), or else as a field of its own
name (a custom field, or a column Meld does not know: the role's ``other_fields``
decide). Lists are masked element by element and structs field by field, so
``addresses`` (street, postcode, city, country) follows each part's visibility.

The masks are SQL, written once and used for both the role views and single values
(:func:`masked_value` runs them on an in-memory DuckDB), so a value looks the same
wherever a role meets it:

========================  =========================================  ====================
field                     masked                                     example
========================  =========================================  ====================
names, street, city, ...  first letter and ``***``                   ``A***``
email                     first letter, ``***@`` and the domain      ``a***@example.com``
phone                     ``***`` and the last two digits            ``***12``
date_of_birth             the year, as a number                      ``1984``
postcode                  the first two characters and ``***``       ``11***``
identifiers               ``***`` and the last two characters        ``***78``
record_id                 the source, ``:***`` and the last two      ``crm_contacts:***69``
========================  =========================================  ====================

Identifiers, record ids and phones shorter than six characters lose their tail too.
Matching aids derived from a value (``first_name_phonetic``, ``phone_national``) are
shown only to roles that see the value in clear.

Examples:
    >>> from linkage.privacy.role_policy import Role
    >>> analyst = Role("analyst", {"email": "hidden", "postcode": "masked", "city": "clear"})
    >>> masked_value(analyst, "postcode", "111 22")
    (True, '11***')
    >>> masked_value(analyst, "email", "anna@example.com")
    (False, None)
    >>> masked_value(Role("service", {"email": "masked"}), "email", "anna@example.com")
    (True, 'a***@example.com')
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

import duckdb

from linkage.canonical import IDENTIFIER_FIELDS
from linkage.privacy.role_policy import RECORD_ID, Role
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

__all__ = [
    "COLUMN_FIELDS",
    "NON_PERSONAL_COLUMNS",
    "column_field",
    "mask_sql",
    "masked_value",
    "role_select",
    "shown_reference",
]

COLUMN_FIELDS: dict[str, str] = {
    "first_name": "first_name",
    "first_name_display": "first_name",
    "last_name": "last_name",
    "last_name_display": "last_name",
    "date_of_birth": "date_of_birth",
    "email": "email",
    "emails": "email",
    "phone": "phone",
    "phones": "phone",
    "street": "street",
    "street_display": "street",
    "postcode": "postcode",
    "city": "city",
    "city_display": "city",
    "country": "country",
    **{name: name for name in IDENTIFIER_FIELDS},
    **dict.fromkeys(
        (
            "unique_id",
            "source_record_id",
            "source_records",
            "unique_id_l",
            "unique_id_r",
            "record_a",
            "record_b",
            "member",
            "first_member",
            "buyer_record_id",
            "cannot_link_l",
            "cannot_link_r",
        ),
        RECORD_ID,
    ),
}
"""Columns that hold a field's values (or lists of them), by name."""

DERIVED_COLUMNS: dict[str, str] = {
    "first_name_phonetic": "first_name",
    "last_name_phonetic": "last_name",
    "phone_national": "phone",
}
"""Matching aids computed from a field: shown in clear or not at all (a masked name
with its Metaphone code beside it would not be masked)."""

CONDITIONAL_COLUMNS: dict[str, tuple[str, str]] = {
    "target_id": ("target_type = 'source_record'", RECORD_ID),
}
"""Columns that hold a field only in some rows (``customer_graph.target_id`` is a
record id on ``has_record`` edges, a store, product or customer id on others)."""

NON_PERSONAL_COLUMNS: frozenset[str] = frozenset(
    {
        "customer_id",
        "household_id",
        "customer_ids",
        "customers",
        "record_count",
        "customer_record_count",
        "household_customers",
        "sources",
        "source_system",
        "source_row_number",
        "loaded_at",
        "last_loaded_at",
        "phone_valid",
        "order_count",
        "order_value",
        "online_orders",
        "in_store_orders",
        "last_order_at",
        "last_interaction_at",
        "order_id",
        "sku",
        "product_name",
        "category",
        "quantity",
        "channel",
        "channels",
        "store_id",
        "staff_id",
        "amount",
        "ordered_at",
        "orders",
        "first_bought_at",
        "last_bought_at",
        "relation",
        "target_type",
        "first_at",
        "last_at",
        "run_id",
        "event_at",
        "id",
        "event",
        "related_id",
        "members",
    }
)
"""Columns that hold no personal value: shown to every role as they are."""

_SOURCE_PREFIX = "^[a-z][a-z0-9_]*:"
_MASKABLE = {"varchar", "date"}


def column_field(column: str) -> str | None:
    """The field a column holds, or None when it holds nothing personal.

    Examples:
        >>> column_field("emails"), column_field("email_source"), column_field("order_count")
        ('email', 'record_id', None)
        >>> column_field("birth_place")
        'birth_place'
    """
    if column in COLUMN_FIELDS:
        return COLUMN_FIELDS[column]
    if column in DERIVED_COLUMNS:
        return DERIVED_COLUMNS[column]
    if column in CONDITIONAL_COLUMNS:
        return CONDITIONAL_COLUMNS[column][1]
    if column.endswith("_source"):
        return RECORD_ID
    if column in NON_PERSONAL_COLUMNS:
        return None
    return column


def _tail(x: str) -> str:
    """``***`` and the last two characters of ``x``, when it has at least six."""
    return f"'***' || CASE WHEN length({x}) >= 6 THEN right({x}, 2) ELSE '' END"


def mask_sql(field: str, x: str, type_id: str) -> str | None:
    """A DuckDB expression of the masked form of ``x``, a value of ``field`` of DuckDB
    type ``type_id`` (``varchar``, ``date``, ...); None when such a value cannot be
    masked (it is then left out).

    Examples:
        >>> mask_sql("postcode", "p", "varchar")
        "CASE WHEN p IS NULL THEN NULL ELSE left(p, 2) || '***' END"
        >>> mask_sql("city", "c", "bigint") is None
        True
    """
    if type_id not in _MASKABLE:
        return None
    if field == "date_of_birth":
        body = f"year({x})" if type_id == "date" else f"year(TRY_CAST({x} AS DATE))"
    elif type_id != "varchar":
        return None
    elif field == "email":
        body = (
            f"CASE WHEN contains({x}, '@') THEN left({x}, 1) || '***@' || "
            f"regexp_extract({x}, '@([^@]*)$', 1) ELSE '***' END"
        )
    elif field == "phone":
        body = _tail(f"regexp_replace({x}, '[^0-9]', '', 'g')")
    elif field == "postcode":
        body = f"left({x}, 2) || '***'"
    elif field in IDENTIFIER_FIELDS:
        body = _tail(x)
    elif field == RECORD_ID:
        body = (
            f"CASE WHEN regexp_matches({x}, '{_SOURCE_PREFIX}') "
            f"THEN regexp_extract({x}, '({_SOURCE_PREFIX})', 1) ELSE '' END || "
            + _tail(f"regexp_replace({x}, '{_SOURCE_PREFIX}', '')")
        )
    else:
        body = f"left({x}, 1) || '***'"
    return f"CASE WHEN {x} IS NULL THEN NULL ELSE {body} END"


def _scalar_expr(x: str, type_id: str, field: str | None, role: Role) -> str | None:
    if field is None:
        return x
    visibility = role.visibility(field)
    if visibility == "clear":
        return x
    if visibility == "hidden":
        return None
    return mask_sql(field, x, type_id)


def _column_expr(
    x: str, dtype: duckdb.DuckDBPyType, field: str | None, role: Role, depth: int = 0
) -> str | None:
    """``x`` as ``role`` sees it: unchanged, masked, or None (left out)."""
    if dtype.id == "list":
        var = f"v{depth}"
        inner = _column_expr(var, dtype.children[0][1], field, role, depth + 1)
        if inner is None or inner == var:
            return None if inner is None else x
        return f"list_transform({x}, lambda {var}: {inner})"
    if dtype.id == "struct":
        parts, changed = [], False
        for name, child in dtype.children:
            part = f"struct_extract({x}, '{name.replace(chr(39), chr(39) * 2)}')"
            shown = _column_expr(part, child, column_field(name), role, depth)
            changed |= shown != part
            if shown is not None:
                parts.append(f"{quote(name)} := {shown}")
        if not parts:
            return None
        packed = f"struct_pack({', '.join(parts)})"
        return f"CASE WHEN {x} IS NULL THEN NULL ELSE {packed} END" if changed else x
    return _scalar_expr(x, dtype.id, field, role)


def _conditional_expr(column: str, dtype: duckdb.DuckDBPyType, role: Role) -> str:
    condition, field = CONDITIONAL_COLUMNS[column]
    x = quote(column)
    shown = _column_expr(x, dtype, field, role)
    if shown == x:
        return x
    return f"CASE WHEN {condition} THEN {shown or 'NULL'} ELSE {x} END"


def role_select(
    con: duckdb.DuckDBPyConnection,
    role: Role,
    table: str,
    *,
    where: str = "",
    order_by: Sequence[str] = (),
) -> str | None:
    """The ``SELECT`` that shows ``table`` (in the main schema) as ``role`` sees it.

    Args:
        con: The warehouse.
        role: Whose view.
        table: A table of the main schema.
        where: A condition on the table's own (unmasked) columns, with ``?``
            placeholders for values the caller passes.
        order_by: Columns of the table to order by, their own values (not the masked
            ones).

    Returns:
        The statement, or None when the table does not exist or the role sees none of
        its columns.

    Examples:
        ```py
        sql = role_select(con, analyst, "golden_customers", where="customer_id = ?")
        con.execute(sql, ["cus_0123456789abcdef"]).fetchall()
        ```
    """
    if not table_exists(con, table):
        return None
    relation = con.sql(f"SELECT * FROM main.{quote(table)} LIMIT 0")
    shown = []
    for column, dtype in zip(relation.columns, relation.types, strict=True):
        if column in DERIVED_COLUMNS:
            clear = role.visibility(DERIVED_COLUMNS[column]) == "clear"
            expr: str | None = quote(column) if clear else None
        elif column in CONDITIONAL_COLUMNS:
            expr = _conditional_expr(column, dtype, role)
        else:
            expr = _column_expr(quote(column), dtype, column_field(column), role)
        if expr is not None:
            shown.append(expr if expr == quote(column) else f"{expr} AS {quote(column)}")
    if not shown:
        return None
    sql = f"SELECT {', '.join(shown)} FROM main.{quote(table)}"
    if where:
        sql += f" WHERE {where}"
    if order_by:
        sql += " ORDER BY " + ", ".join(f"{quote(table)}.{quote(c)}" for c in order_by)
    return sql


_local = threading.local()


def _masker() -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB of this thread, to run the masks on single values."""
    if getattr(_local, "con", None) is None:
        _local.con = duckdb.connect()
    return _local.con


def masked_value(role: Role, column: str, value: Any) -> tuple[bool, Any]:
    """A single value of ``column`` as ``role`` sees it: ``(shown, value)``, where
    ``shown`` is False when the role does not see the column at all."""
    field = column_field(column)
    if field is None:
        return True, value
    visibility = role.visibility(field)
    if visibility == "clear":
        return True, value
    if visibility == "hidden" or column in DERIVED_COLUMNS:
        return False, None
    if value is None:
        return True, None
    if isinstance(value, date) and not isinstance(value, datetime):
        type_id, cast = "date", "DATE"
    elif isinstance(value, str):
        type_id, cast = "varchar", "VARCHAR"
    else:
        return False, None
    expr = mask_sql(field, f"CAST($v AS {cast})", type_id)
    if expr is None:
        return False, None
    return True, _masker().execute(f"SELECT {expr}", {"v": value}).fetchall()[0][0]


def shown_reference(role: Role, reference: str) -> str:
    """A record id (``<source>:<id>``) as ``role`` sees it; a role that does not see
    record ids sees only the source.

    Examples:
        >>> from linkage.privacy.role_policy import Role
        >>> shown_reference(Role("r", {"record_id": "masked"}), "crm_contacts:C0000069")
        'crm_contacts:***69'
        >>> shown_reference(Role("r", {"record_id": "hidden"}), "crm_contacts:C0000069")
        'crm_contacts:(hidden)'
    """
    shown, value = masked_value(role, "unique_id", reference)
    if shown:
        return str(value)
    source, sep, _ = reference.partition(":")
    return f"{source}:(hidden)" if sep else "(hidden)"
