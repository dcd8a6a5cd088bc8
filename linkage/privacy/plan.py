"""Which rows of which tables an erasure removes, found from the columns, not from a list.

Every base table of the warehouse is looked at. A row refers to an erased record when:

- a column named in :data:`RECORD_ID_COLUMNS`, or ending in ``_source`` (the golden
  record's provenance), holds its unique id ``<source>:<record id>``;
- a list column in :data:`RECORD_LIST_COLUMNS` contains it (also a list of structs
  with a ``unique_id`` field);
- a column pair in :data:`RECORD_PAIRS` (``source_system, source_record_id``,
  ``buyer_source, buyer_record_id``) names it;
- it is an erased raw row without id: ``source_system, raw_row_id``, or, in a table
  without ``raw_row_id``, ``source_system, source_file, source_row_number``.

A row of a derived customer table (a ``customer_id`` column, or a ``customer_ids`` /
``customers`` list) refers to a touched customer; those rows are removed too and
rebuilt afterwards, since a golden record or a household may hold the erased values.

What happens to a matching row:

- deleted, by default;
- kept with the link set to NULL when the table refers to records only through
  :data:`LINK_COLUMNS` (an order keeps its amount and loses its buyer; the id registry
  keeps the id and loses its ``first_member``);
- in the customer membership, given a keyed placeholder, so the next clustering sees
  the member gone and retires or keeps the customer id as for any other change.

:data:`PROTECTED_TABLES` (the ledger, the erasure's own tables) are never touched, and
scratch tables left by a killed run (``__splink__*``, ``__meld_*``) are dropped.
:func:`record_references` searches every text column for erased ids by value: the
check after an erasure, and the test that a new table is covered.

Examples:
    ```py
    plan = erasure_plan(con)
    stage_target(con, target, placeholders)
    counts = count_rows(con, plan)       # {"raw_crm": 2, "pairwise_matches": 7, ...}
    apply_plan(con, plan)
    ```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import duckdb
import pyarrow as pa

from linkage.cluster.stable_ids.tables import CUSTOMER_ID_TABLES
from linkage.privacy.subject import ErasureTarget
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    ERASURE_DENY_LIST,
    ERASURE_LOG,
    ERASURE_REFUSALS,
    LINKAGE_RUNS,
    PUBLISHED_SNAPSHOT,
    STEWARD_UNMERGE_RESOLUTIONS,
)
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

RECORD_ID_COLUMNS = (
    "unique_id",
    "unique_id_l",
    "unique_id_r",
    "record_a",
    "record_b",
    "member",
    "first_member",
    "target_id",
)
"""Columns that hold a record's unique id ``<source>:<record id>``."""
RECORD_ID_SUFFIX = "_source"
RECORD_LIST_COLUMNS = ("source_records",)
RECORD_PAIRS = (("source_system", "source_record_id"), ("buyer_source", "buyer_record_id"))
"""(source, record id) column pairs."""
RAW_ROW_COLUMNS = ("source_system", "raw_row_id")
ROW_LOCATION_COLUMNS = ("source_system", "source_file", "source_row_number")
CUSTOMER_COLUMNS = ("customer_id",)
CUSTOMER_LIST_COLUMNS = ("customer_ids", "customers")
LINK_COLUMNS = frozenset({"first_member", "buyer_record_id"})
"""References that are set to NULL instead of deleting the row."""
CUSTOMER_STATE_TABLES = frozenset({CUSTOMER_CLUSTERS, STEWARD_UNMERGE_RESOLUTIONS})
"""Tables with a customer id whose rows are state, not derived: kept for touched customers."""
PROTECTED_TABLES = frozenset(
    {LINKAGE_RUNS, ERASURE_LOG, ERASURE_DENY_LIST, ERASURE_REFUSALS, PUBLISHED_SNAPSHOT}
)
SCRATCH_PREFIXES = ("__splink__", "__meld_")
MEMBERSHIP_TABLE = CUSTOMER_ID_TABLES.membership

IDS, RAW_KEYS, LOCATIONS, CUSTOMERS, PLACEHOLDERS = (
    "__meld_erase_ids",
    "__meld_erase_raw_rows",
    "__meld_erase_locations",
    "__meld_erase_customers",
    "__meld_erase_placeholders",
)
_IN_IDS = f"IN (SELECT v FROM temp.main.{IDS})"
_ID_LIST = f"(SELECT coalesce(list(v), []) FROM temp.main.{IDS})"


@dataclass(frozen=True)
class TablePlan:
    """How one table is matched and changed.

    Attributes:
        table: The table (``schema.table`` outside ``main``).
        record_match: SQL conditions, one per referring column (or pair), by column.
        customer_match: SQL condition on the touched customers, when the table is derived.
        action: ``delete``, ``nullify`` or ``placeholder``.
    """

    table: str
    record_match: Mapping[str, str]
    customer_match: str | None = None
    action: str = "delete"

    @property
    def where(self) -> str:
        """The condition of the rows this table loses (or has rewritten)."""
        conditions = list(self.record_match.values())
        if self.customer_match:
            conditions.append(self.customer_match)
        return " OR ".join(f"({c})" for c in conditions)


@dataclass(frozen=True)
class ErasurePlan:
    """Every table an erasure changes, and the scratch tables it drops."""

    tables: tuple[TablePlan, ...]
    scratch: tuple[str, ...] = field(default=())

    def covers(self, table: str) -> bool:
        return any(plan.table == table for plan in self.tables)


def _qualified(schema: str, table: str) -> str:
    return table if schema == "main" else f"{schema}.{table}"


def _sql_name(table: str) -> str:
    return ".".join(quote(part) for part in table.split(".", 1))


def base_tables(con: duckdb.DuckDBPyConnection) -> dict[str, dict[str, str]]:
    """Every base table of the warehouse (not temporary) with its columns and types."""
    rows = con.execute(
        "SELECT c.table_schema, c.table_name, c.column_name, c.data_type "
        "FROM information_schema.columns AS c JOIN information_schema.tables AS t "
        "USING (table_catalog, table_schema, table_name) "
        "WHERE t.table_type = 'BASE TABLE' AND t.table_catalog = current_database() "
        "ORDER BY c.table_schema, c.table_name, c.ordinal_position"
    ).fetchall()
    tables: dict[str, dict[str, str]] = {}
    for schema, table, column, data_type in rows:
        tables.setdefault(_qualified(schema, table), {})[column] = data_type
    return tables


def _list_match(column: str, data_type: str) -> str | None:
    col = quote(column)
    if data_type == "VARCHAR[]":
        return f"list_has_any({col}, {_ID_LIST})"
    if data_type.startswith("STRUCT(") and data_type.endswith("[]") and "unique_id " in data_type:
        return f"list_has_any(list_transform({col}, lambda x: x.unique_id), {_ID_LIST})"
    return None


def _record_matches(columns: Mapping[str, str]) -> dict[str, str]:
    found: dict[str, str] = {}
    pair_sources = {source for source, _ in RECORD_PAIRS}
    for column, data_type in columns.items():
        named = column in RECORD_ID_COLUMNS or (
            column.endswith(RECORD_ID_SUFFIX) and column not in pair_sources
        )
        if named and data_type == "VARCHAR":
            found[column] = f"{quote(column)} {_IN_IDS}"
        elif column in RECORD_LIST_COLUMNS and (match := _list_match(column, data_type)):
            found[column] = match
    for source, record in RECORD_PAIRS:
        if source in columns and record in columns:
            found[record] = f"({quote(source)} || ':' || {quote(record)}) {_IN_IDS}"
    if all(c in columns for c in RAW_ROW_COLUMNS):
        found["raw_row_id"] = (
            f"(source_system || ':' || raw_row_id::VARCHAR) IN (SELECT v FROM temp.main.{RAW_KEYS})"
        )
    elif all(c in columns for c in ROW_LOCATION_COLUMNS):
        found["source_row_number"] = (
            "(source_system || '|' || source_file || '|' || source_row_number::VARCHAR) "
            f"IN (SELECT v FROM temp.main.{LOCATIONS})"
        )
    return found


def _customer_match(table: str, columns: Mapping[str, str]) -> str | None:
    if table in CUSTOMER_STATE_TABLES:
        return None
    customers = f"(SELECT coalesce(list(v), []) FROM temp.main.{CUSTOMERS})"
    conditions = [
        f"list_contains({customers}, {quote(c)})"
        for c in CUSTOMER_COLUMNS
        if columns.get(c) == "VARCHAR"
    ]
    conditions += [
        f"list_has_any({quote(c)}, {customers})"
        for c in CUSTOMER_LIST_COLUMNS
        if columns.get(c) == "VARCHAR[]"
    ]
    return " OR ".join(conditions) or None


def _action(table: str, record_match: Mapping[str, str], customer_match: str | None) -> str:
    if table == MEMBERSHIP_TABLE and set(record_match) == {"member"}:
        return "placeholder"
    if record_match and set(record_match) <= LINK_COLUMNS and customer_match is None:
        return "nullify"
    return "delete"


def erasure_plan(con: duckdb.DuckDBPyConnection) -> ErasurePlan:
    """Find every table that can hold an erased record or a touched customer."""
    plans: list[TablePlan] = []
    scratch: list[str] = []
    for table, columns in base_tables(con).items():
        name = table.rsplit(".", 1)[-1]
        if name.startswith(SCRATCH_PREFIXES):
            scratch.append(table)
            continue
        if name in PROTECTED_TABLES:
            continue
        record_match = _record_matches(columns)
        customer_match = _customer_match(name, columns)
        if record_match or customer_match:
            action = _action(name, record_match, customer_match)
            plans.append(TablePlan(table, record_match, customer_match, action))
    return ErasurePlan(tuple(plans), tuple(scratch))


def stage_target(
    con: duckdb.DuckDBPyConnection,
    target: ErasureTarget,
    locations: Sequence[str] = (),
    placeholders: Mapping[str, str] | None = None,
) -> None:
    """Put the erased ids, raw rows, locations, customers and membership placeholders
    in temporary tables the plan's conditions read."""
    values = {
        IDS: target.unique_ids,
        RAW_KEYS: target.raw_row_keys,
        LOCATIONS: sorted(locations),
        CUSTOMERS: sorted(target.customers),
    }
    for table, items in values.items():
        con.execute(f"CREATE OR REPLACE TEMP TABLE {table} (v VARCHAR)")
        if items:
            con.executemany(f"INSERT INTO temp.main.{table} VALUES (?)", [[v] for v in items])
    mapping = placeholders or {}
    frame = pa.table(
        {"v": pa.array(list(mapping), pa.string()), "p": pa.array(list(mapping.values()))}
    )
    con.register("__meld_erase_frame", frame)
    try:
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {PLACEHOLDERS} AS "
            "SELECT v, p::VARCHAR AS p FROM __meld_erase_frame"
        )
    finally:
        con.unregister("__meld_erase_frame")


def drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables of :func:`stage_target`."""
    for table in (IDS, RAW_KEYS, LOCATIONS, CUSTOMERS, PLACEHOLDERS):
        con.execute(f"DROP TABLE IF EXISTS temp.main.{table}")


def count_rows(con: duckdb.DuckDBPyConnection, plan: ErasurePlan) -> dict[str, int]:
    """Rows each table would lose or have rewritten (tables with none left out)."""
    counts: dict[str, int] = {}
    for item in plan.tables:
        n = con.execute(f"SELECT count(*) FROM {_sql_name(item.table)} WHERE {item.where}")
        found = int(n.fetchall()[0][0])
        if found:
            counts[item.table] = found
    return counts


def _apply_one(con: duckdb.DuckDBPyConnection, item: TablePlan) -> int:
    name = _sql_name(item.table)
    if item.action == "placeholder":
        rows = con.execute(
            f"UPDATE {name} SET member = p.p FROM temp.main.{PLACEHOLDERS} AS p "
            f"WHERE {name}.member = p.v RETURNING 1"
        ).fetchall()
        return len(rows)
    if item.action == "nullify":
        changed = 0
        for column, condition in item.record_match.items():
            rows = con.execute(
                f"UPDATE {name} SET {quote(column)} = NULL WHERE {condition} RETURNING 1"
            ).fetchall()
            changed += len(rows)
        return changed
    return len(con.execute(f"DELETE FROM {name} WHERE {item.where} RETURNING 1").fetchall())


def apply_plan(con: duckdb.DuckDBPyConnection, plan: ErasurePlan) -> dict[str, int]:
    """Change every table as planned (inside the caller's transaction) and drop the
    scratch tables; returns the rows changed per table."""
    counts: dict[str, int] = {}
    for item in plan.tables:
        changed = _apply_one(con, item)
        if changed:
            counts[item.table] = changed
    for table in plan.scratch:
        con.execute(f"DROP TABLE IF EXISTS {_sql_name(table)}")
    logger.info(
        "erasure: %d row(s) changed in %d table(s); %d scratch table(s) dropped",
        sum(counts.values()),
        len(counts),
        len(plan.scratch),
    )
    return counts


def record_references(
    con: duckdb.DuckDBPyConnection, unique_ids: Sequence[str]
) -> list[tuple[str, str]]:
    """(table, column) of every text column of every base table that holds one of
    ``unique_ids`` exactly (or inside a list or struct), outside the protected tables."""
    if not unique_ids:
        return []
    params = {"ids": list(unique_ids), "pattern": _pattern(unique_ids)}
    found: list[tuple[str, str]] = []
    for table, columns in base_tables(con).items():
        if table.rsplit(".", 1)[-1] in PROTECTED_TABLES:
            continue
        checks = {
            column: f"list_contains($ids, {quote(column)})"
            if data_type == "VARCHAR"
            else f"regexp_matches({quote(column)}::VARCHAR, $pattern)"
            for column, data_type in columns.items()
            if data_type == "VARCHAR" or data_type.endswith("[]") or data_type.startswith("STRUCT")
        }
        if not checks:
            continue
        counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in checks.values())
        used = {k: v for k, v in params.items() if f"${k}" in counts}
        row = con.execute(f"SELECT {counts} FROM {_sql_name(table)}", used).fetchall()[0]
        found += [(table, column) for column, hits in zip(checks, row, strict=True) if hits]
    return found


def _pattern(unique_ids: Sequence[str]) -> str:
    """A regular expression matching any of the ids as a whole value inside list text."""
    alternatives = "|".join(re.escape(uid) for uid in unique_ids)
    return rf"(^|[\s\[{{'\",])({alternatives})($|[\s\]}}'\",])"
