"""Golden customer records: one value per field, chosen by a survivorship rule.

Each golden field of a customer is chosen from the customer's records by the rule
configured for it (``mastering.rules`` in the project config, ``mastering.default_rule``
for the others). Only records that carry the field take part, ranked by the rule:

``most_frequent``
    Most votes first: the number of the customer's records carrying the same value
    in its matching form (folded names, normalised e-mail and phone, the address as
    street, postcode and city together).
``most_recent``
    Latest ``loaded_at`` first.
``source_priority``
    Most trusted source first (its position in ``source_priority``; sources not
    listed rank after the listed ones, all equal).
``most_complete``
    Most non-null matching columns first (see :data:`COMPLETENESS_COLUMNS`).
``longest``
    Longest displayed value first (for the address: street plus city).

Ties go, in this order, to the value with most votes, for the address to the
record filling more of street, postcode, city and country, to the latest
``loaded_at``, then to the greatest ``unique_id``, so every choice is deterministic.
The first record wins: it gives both the displayed value (accents and case kept:
``first_name_display``, not the folded ``first_name``) and ``<field>_source``, its
``unique_id``. Under ``most_frequent`` that is the most recent record carrying the
winning value (for the address, the most recent of those filling most parts). The
address (street, postcode, city, country) is always chosen as one unit from one record.

``national_id`` is never a golden field: it is stored only as a keyed hash and must
not be shown. ``device_id`` and ``cookie_id`` are linking keys, not customer data.

Examples:
    ```py
    customers = build_golden_customers(
        con,
        records_table="customer_records",
        clusters_table="customer_clusters",
        out_table="golden_customers",
        rules={"email": "most_recent", "phone": "source_priority"},
        source_priority=["crm_contacts", "webshop_accounts"],
    )
    ```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import duckdb

from linkage.atomic import transaction
from linkage.canonical import MATCHING_COLUMNS
from linkage.warehouse import quote, row_count

logger = logging.getLogger(__name__)

RULES: tuple[str, ...] = (
    "most_frequent",
    "most_recent",
    "source_priority",
    "most_complete",
    "longest",
)
"""Survivorship rules a golden field can use."""

_BASE = "__meld_golden_base"
"""Temporary table: each clustered record with its customer, the customer's record
count, its source's rank and its completeness."""

COMPLETENESS_COLUMNS: tuple[str, ...] = tuple(c for c in MATCHING_COLUMNS if c != "country")
"""Matching columns counted by ``most_complete`` (``country`` is left out: it is
usually a source's default, not information about the customer)."""


@dataclass(frozen=True)
class GoldenField:
    """How one golden field is read from a record.

    Attributes:
        name: The golden field, also the prefix of its output columns.
        match: SQL expressions (over the records alias ``r``) of the matching form;
            records agree on a value when all of them are equal.
        shown: Output column -> SQL expression of the value displayed.
        length: SQL expression of the displayed length, for ``longest``.
    """

    name: str
    match: tuple[str, ...]
    shown: tuple[tuple[str, str], ...]
    length: str

    @property
    def present(self) -> str:
        """SQL condition: the record carries a value for this field."""
        return "(" + " OR ".join(f"{m} IS NOT NULL" for m in self.match) + ")"

    @property
    def parts(self) -> str:
        """SQL: how many of the displayed columns are filled (for the address)."""
        return " + ".join(f"({sql} IS NOT NULL)::INTEGER" for _, sql in self.shown)


def _column_field(name: str, display: str | None = None) -> GoldenField:
    match = f"r.{quote(name)}"
    shown = f"coalesce(r.{quote(display)}, {match})" if display else match
    return GoldenField(
        name=name,
        match=(match,),
        shown=((name, shown),),
        length=f"length(CAST({shown} AS VARCHAR))",
    )


GOLDEN_FIELDS: dict[str, GoldenField] = {
    "first_name": _column_field("first_name", "first_name_display"),
    "last_name": _column_field("last_name", "last_name_display"),
    "date_of_birth": _column_field("date_of_birth"),
    "email": _column_field("email"),
    "phone": _column_field("phone"),
    "address": GoldenField(
        name="address",
        match=("r.street", "r.postcode", "r.city"),
        shown=(
            ("street", "coalesce(r.street_display, r.street)"),
            ("postcode", "r.postcode"),
            ("city", "coalesce(r.city_display, r.city)"),
            ("country", "r.country"),
        ),
        length=(
            "coalesce(length(coalesce(r.street_display, r.street)), 0) "
            "+ coalesce(length(coalesce(r.city_display, r.city)), 0)"
        ),
    ),
    "loyalty_card": _column_field("loyalty_card"),
    "customer_number": _column_field("customer_number"),
}
"""The golden fields, in output order."""


def resolve_rules(
    rules: Mapping[str, str] | None = None, default_rule: str = "most_frequent"
) -> dict[str, str]:
    """The rule of every golden field: its own if given, else ``default_rule``.

    Raises:
        ValueError: A field is not a golden field, or a rule is not one of :data:`RULES`.

    Examples:
        >>> resolve_rules({"email": "most_recent"})["email"]
        'most_recent'
        >>> resolve_rules({"email": "most_recent"})["phone"]
        'most_frequent'
        >>> resolve_rules({"email": "newest"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: golden field 'email': unknown survivorship rule 'newest'; expected one of [...]
    """
    allowed = f"expected one of {list(RULES)}"
    if default_rule not in RULES:
        raise ValueError(f"default survivorship rule {default_rule!r} is unknown; {allowed}")
    rules = dict(rules or {})
    for field, rule in rules.items():
        if field not in GOLDEN_FIELDS:
            hint = (
                " (national_id is stored only as a keyed hash and is never shown)"
                if field == "national_id"
                else ""
            )
            raise ValueError(
                f"survivorship rule given for {field!r}, which is not a golden field{hint}; "
                f"expected one of {list(GOLDEN_FIELDS)}"
            )
        if rule not in RULES:
            raise ValueError(
                f"golden field {field!r}: unknown survivorship rule {rule!r}; {allowed}"
            )
    return {field: rules.get(field, default_rule) for field in GOLDEN_FIELDS}


def _order_by(rule: str, field: GoldenField) -> str:
    """SQL ``ORDER BY`` list ranking a customer's records for ``field``: first wins."""
    own = {
        "most_frequent": [],
        "most_recent": ["r.loaded_at DESC NULLS LAST"],
        "source_priority": ["r.source_rank"],
        "most_complete": ["r.completeness DESC"],
        "longest": [f"{field.length} DESC"],
    }[rule]
    parts = [f"{field.parts} DESC"] if len(field.shown) > 1 else []
    return ", ".join(
        [*own, "votes DESC", *parts, "r.loaded_at DESC NULLS LAST", "r.unique_id DESC"]
    )


def _best_cte(field: GoldenField, rule: str) -> str:
    """CTE ``<name>_best``: each multi-record customer's winning record for ``field``.

    ``votes`` is the number of the customer's records carrying the same value (in its
    matching form); a record that lacks the field never wins.
    """
    votes = f"count(*) OVER (PARTITION BY r.customer_id, {', '.join(field.match)}) AS votes"
    shown = ", ".join(f"{sql} AS {quote(col)}" for col, sql in field.shown)
    return (
        f"{field.name}_best AS ("
        f"  SELECT r.customer_id, {shown}, r.unique_id AS {quote(field.name + '_source')} "
        f"  FROM (SELECT r.*, {votes} FROM multi AS r WHERE {field.present}) AS r "
        f"  QUALIFY row_number() OVER "
        f"    (PARTITION BY r.customer_id ORDER BY {_order_by(rule, field)}) = 1"
        f")"
    )


_RECORD_COLUMNS: tuple[str, ...] = (
    "unique_id",
    "source_system",
    "loaded_at",
    "first_name",
    "first_name_display",
    "last_name",
    "last_name_display",
    "date_of_birth",
    "email",
    "phone",
    "street",
    "street_display",
    "postcode",
    "city",
    "city_display",
    "country",
    "loyalty_card",
    "customer_number",
)
"""Columns of ``customer_records`` the golden record reads."""


def _lists(address: GoldenField) -> dict[str, tuple[str, str]]:
    """List and summary columns: name -> (SQL over a customer's records, SQL over its
    only record). A customer of one record takes the cheap second form."""
    struct = ", ".join(f"{quote(col)} := {sql}" for col, sql in address.shown)
    one_address = f"CASE WHEN {address.present} THEN struct_pack({struct}) END"
    return {
        "emails": (
            "list_sort(list_distinct(list(r.email)))",
            "CASE WHEN r.email IS NULL THEN [] ELSE [r.email] END",
        ),
        "phones": (
            "list_sort(list_distinct(list(r.phone)))",
            "CASE WHEN r.phone IS NULL THEN [] ELSE [r.phone] END",
        ),
        "addresses": (
            f"list_sort(list_distinct(list({one_address})))",
            f"CASE WHEN {address.present} THEN [struct_pack({struct})] ELSE [] END",
        ),
        "record_count": ("count(*)", "r.record_count"),
        "sources": ("list_sort(list_distinct(list(r.source_system)))", "[r.source_system]"),
        "source_records": ("list_sort(list(r.unique_id))", "[r.unique_id]"),
        "last_loaded_at": ("max(r.loaded_at)", "r.loaded_at"),
    }


def build_golden_customers(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    clusters_table: str,
    out_table: str,
    rules: Mapping[str, str] | None = None,
    default_rule: str = "most_frequent",
    source_priority: Sequence[str] = (),
) -> int:
    """Create ``out_table``: one golden record per customer, and ``<out_table>_rules``.

    Args:
        con: Warehouse connection.
        records_table: Records with the columns of
            :data:`linkage.canonical.STAGED_COLUMNS` (``customer_records``).
        clusters_table: ``unique_id`` -> ``customer_id`` (``customer_clusters``).
        out_table: Table to (re)create, one row per customer (in no particular order):
            ``customer_id``; ``<field>`` and ``<field>_source`` for ``first_name``,
            ``last_name``, ``date_of_birth``, ``email`` and ``phone``; ``street``,
            ``postcode``, ``city``, ``country`` and ``address_source``; ``loyalty_card``,
            ``loyalty_card_source``, ``customer_number``, ``customer_number_source``;
            the lists ``emails``, ``phones`` (distinct, sorted) and ``addresses``
            (distinct structs of displayed street, postcode, city and country, sorted);
            ``record_count``, ``sources`` (distinct, sorted), ``source_records`` (sorted
            ``unique_id`` values) and ``last_loaded_at``. A field no record carries is
            NULL, with a NULL source; a list with nothing in it is empty.
            ``<out_table>_rules(field, rule, source_priority)`` records the rule used
            for each field.
        rules: Survivorship rule per golden field (see :data:`GOLDEN_FIELDS`, :data:`RULES`).
        default_rule: Rule for the fields not in ``rules``.
        source_priority: Source systems, most trusted first, for ``source_priority``.

    Returns:
        Number of customers written.

    Raises:
        ValueError: Unknown golden field or rule (see :func:`resolve_rules`).

    Examples:
        ```py
        build_golden_customers(
            con,
            records_table="customer_records",
            clusters_table="customer_clusters",
            out_table="golden_customers",
            rules={"email": "most_recent"},
        )
        con.execute("SELECT field, rule FROM golden_customers_rules").fetchall()
        # [('first_name', 'most_frequent'), ..., ('email', 'most_recent'), ...]
        ```
    """
    chosen = resolve_rules(rules, default_rule)
    priority = [str(source) for source in source_priority]
    if not priority and "source_priority" in chosen.values():
        logger.warning(
            "source_priority rule used for %s without a source priority: "
            "every source ranks equal, so the most frequent value wins",
            sorted(f for f, r in chosen.items() if r == "source_priority"),
        )
    started = time.perf_counter()
    _create_base(con, records_table, clusters_table, priority)
    try:
        with transaction(con):  # the customers and the rules that chose their values
            _create_golden_table(con, out_table, chosen)
            _write_rules(con, out_table, chosen, priority)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {_BASE}")
    customers = row_count(con, out_table)
    logger.info(
        "%d golden customers in %s (%.1fs), rules %s",
        customers,
        out_table,
        time.perf_counter() - started,
        chosen,
    )
    return customers


def _create_base(
    con: duckdb.DuckDBPyConnection, records_table: str, clusters_table: str, priority: list[str]
) -> None:
    """Fill the temporary base table: each clustered record with its customer, the
    customer's record count, its source's rank and its completeness."""
    completeness = " + ".join(f"(r.{quote(c)} IS NOT NULL)::INTEGER" for c in COMPLETENESS_COLUMNS)
    columns = ", ".join(f"r.{quote(c)}" for c in _RECORD_COLUMNS)
    # One pass over the records: a customer of one record needs no vote, so the
    # (costly) windows below run only over customers of several records.
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {_BASE} AS "
        "WITH sized AS ("
        "  SELECT customer_id, unique_id, count(*) OVER (PARTITION BY customer_id) AS record_count "
        f"  FROM {quote(clusters_table)}"
        f") SELECT s.customer_id, s.record_count, {columns}, "
        "coalesce(list_position($priority::VARCHAR[], r.source_system), "
        "  len($priority::VARCHAR[]) + 1) AS source_rank, "
        f"{completeness} AS completeness "
        f"FROM sized AS s JOIN {quote(records_table)} AS r USING (unique_id)",
        {"priority": priority},
    )


def _create_golden_table(
    con: duckdb.DuckDBPyConnection, out_table: str, chosen: Mapping[str, str]
) -> None:
    """(Re)create ``out_table`` from the base table: customers of several records by
    their rules' winners, customers of one record straight from it."""
    lists = _lists(GOLDEN_FIELDS["address"])
    ctes = [f"multi AS NOT MATERIALIZED (SELECT * FROM {_BASE} WHERE record_count > 1)"]
    ctes += [_best_cte(GOLDEN_FIELDS[name], rule) for name, rule in chosen.items()]
    ctes.append(
        "members AS (SELECT r.customer_id, "
        + ", ".join(f"{many} AS {quote(col)}" for col, (many, _) in lists.items())
        + " FROM multi AS r GROUP BY r.customer_id)"
    )
    several = ["m.customer_id"]
    one = ["r.customer_id"]
    joins = []
    for name, field in GOLDEN_FIELDS.items():
        several += [f"{name}_best.{quote(col)}" for col, _ in field.shown]
        several.append(f"{name}_best.{quote(name + '_source')}")
        one += [f"CASE WHEN {field.present} THEN {sql} END" for _, sql in field.shown]
        one.append(f"CASE WHEN {field.present} THEN r.unique_id END")
        joins.append(f"LEFT JOIN {name}_best USING (customer_id)")
    several += [f"m.{quote(col)}" for col in lists]
    one += [single for _, single in lists.values()]
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(out_table)} AS WITH "
        + ", ".join(ctes)
        + " SELECT "
        + ", ".join(several)
        + " FROM members AS m "
        + " ".join(joins)
        + " UNION ALL SELECT "
        + ", ".join(one)
        + f" FROM {_BASE} AS r WHERE r.record_count = 1"
    )


def _write_rules(
    con: duckdb.DuckDBPyConnection, out_table: str, chosen: Mapping[str, str], priority: list[str]
) -> None:
    """(Re)create ``<out_table>_rules``: the rule used for each field."""
    rules_table = f"{out_table}_rules"
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(rules_table)} "
        "(field VARCHAR, rule VARCHAR, source_priority VARCHAR[])"
    )
    con.executemany(
        f"INSERT INTO {quote(rules_table)} VALUES (?, ?, ?)",
        [
            [field, rule, priority if rule == "source_priority" else None]
            for field, rule in chosen.items()
        ],
    )
