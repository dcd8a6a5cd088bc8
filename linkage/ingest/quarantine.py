"""Rows staging cannot use, and field values it had to null: the quarantine and
quality-issue tables of a source.

Both read staging's working table, which holds each raw row with every field's raw text,
standardised value and problem (the column expressions :data:`STAGED_VALUE`,
:data:`RAW_VALUE` and :data:`PROBLEM` name per field):

- ``quarantine_<source>``: rows that could not be read, have no usable or a repeated id,
  lack a required field, or have nothing to match on; with the reason and the raw values;
- ``quality_issues_<source>``: one row per staged record and field whose value failed
  validation or was too long, with the problem and the raw value.

Examples:
    ```py
    raw, quarantine = raw_table("crm"), quarantine_table("crm")
    write_quarantine(con, "__base_crm", raw, quarantine, required_fields=["email"])
    write_quality_issues(
        con, "__base_crm", raw, quarantine, quality_issues_table("crm"),
        {"email": "email_address"}, max_field_length=1000,
    )
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import duckdb

from linkage.canonical import CANONICAL_FIELDS, IDENTIFIER_FIELDS, IDENTIFYING_FIELDS
from linkage.warehouse import quote

__all__ = [
    "MAX_ID_LENGTH",
    "PROBLEM",
    "QUALITY_ISSUE_COLUMNS",
    "QUARANTINE_COLUMNS",
    "RAW_VALUE",
    "STAGED_VALUE",
    "TOO_LONG",
    "quarantine_rules",
    "write_quality_issues",
    "write_quarantine",
]

QUARANTINE_COLUMNS: dict[str, str] = {
    "source_system": "VARCHAR",
    "source_record_id": "VARCHAR",
    "source_row_number": "BIGINT",
    "source_line": "BIGINT",
    "source_file": "VARCHAR",
    "raw_row_id": "BIGINT",
    "field": "VARCHAR",
    "reason": "VARCHAR",
    "detail": "VARCHAR",
    "raw_values": "VARCHAR",
    "quarantined_at": "TIMESTAMP",
}
"""Columns of every ``quarantine_<source>`` table and of ``quarantined_records``."""

QUALITY_ISSUE_COLUMNS: dict[str, str] = {
    "source_system": "VARCHAR",
    "source_record_id": "VARCHAR",
    "source_row_number": "BIGINT",
    "source_file": "VARCHAR",
    "field": "VARCHAR",
    "problem": "VARCHAR",
    "raw_value": "VARCHAR",
}
"""Columns of every ``quality_issues_<source>`` table and of ``data_quality_issues``."""

MAX_ID_LENGTH = 200
TOO_LONG = "too_long"

# Staged value and raw value of each field, for required-field and quality checks.
STAGED_VALUE: dict[str, str] = {
    "first_name": "coalesce(first_match, full_first_match)",
    "last_name": "coalesce(last_match, full_last_match)",
    "full_name": "coalesce(full_first_match, full_last_match)",
    "date_of_birth": "dob_date",
    "email": "email",
    "phone": "phone",
    "street": "street",
    "postcode": "postcode",
    "city": "city",
    "country": "country",
    "address": "coalesce(street, postcode, city)",
    **{name: quote(name) for name in IDENTIFIER_FIELDS},
}
RAW_VALUE: dict[str, str] = {
    **{name: quote("raw_" + name) for name in CANONICAL_FIELDS},
    "street": "street_text",
    "postcode": "postcode_text",
    "city": "city_text",
    "country": "raw_country_text",
}
PROBLEM: dict[str, str] = {
    "first_name": "first_problem",
    "last_name": "last_problem",
    "full_name": "full_problem",
    "date_of_birth": "dob_problem",
    "email": "email_problem",
    "phone": "phone_problem",
    "postcode": "postcode_problem",
    "country": "country_problem",
    **{name: quote(name + "_problem") for name in IDENTIFIER_FIELDS},
}


def quarantine_rules(required_fields: Sequence[str]) -> list[tuple[str, str, str]]:
    """(condition, reason, field expression) in order of precedence."""
    no_identity = " AND ".join(f"{STAGED_VALUE[name]} IS NULL" for name in IDENTIFYING_FIELDS)
    rules = [
        ("load_problem IS NOT NULL", "load_problem", "load_problem_field"),
        ("source_record_id IS NULL", "'missing_id'", "'id'"),
        (f"length(source_record_id) > {MAX_ID_LENGTH}", "'invalid_id'", "'id'"),
        ("id_rank > 1", "'duplicate_id'", "'id'"),
    ]
    for name in required_fields:
        rules.append((f"{RAW_VALUE[name]} IS NULL", "'missing_required_field'", f"'{name}'"))
        invalid = f"{STAGED_VALUE[name]} IS NULL"
        if name in PROBLEM:  # an invalid value kept for matching still fails the rule
            invalid += f" OR {PROBLEM[name]} IS NOT NULL"
        rules.append((f"({invalid})", "'invalid_required_field'", f"'{name}'"))
    rules.append((no_identity, "'no_identifying_fields'", f"'{','.join(IDENTIFYING_FIELDS)}'"))
    return rules


def write_quarantine(
    con: duckdb.DuckDBPyConnection,
    base: str,
    raw_table: str,
    quarantine: str,
    required_fields: Sequence[str],
) -> None:
    """Quarantine rows that could not be read, have no usable or a repeated id, lack a
    required field, or have nothing to match on; with the raw values as JSON."""
    rules = quarantine_rules(required_fields)
    reason = "CASE " + " ".join(f"WHEN {c} THEN {r}" for c, r, _ in rules) + " END"
    field_at_fault = "CASE " + " ".join(f"WHEN {c} THEN {f}" for c, _, f in rules) + " END"
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(quarantine)} AS "
        "WITH ranked AS ("
        "  SELECT *, row_number() OVER ("
        "    PARTITION BY source_record_id ORDER BY raw_row_id) AS id_rank "
        f"  FROM {quote(base)}"
        "), reasons AS ("
        f"  SELECT raw_row_id, {reason} AS reason, {field_at_fault} AS field, "
        "  load_problem_detail FROM ranked"
        "), described AS ("
        "  SELECT raw_row_id, reason, field, CASE "
        "    WHEN reason IN ('malformed_row', 'undecodable_bytes') THEN load_problem_detail "
        "    WHEN reason = 'duplicate_id' THEN 'id repeated in the same delivery' "
        f"    WHEN reason = 'invalid_id' THEN 'id longer than {MAX_ID_LENGTH} characters' "
        "    WHEN reason = 'invalid_required_field' THEN 'required field failed validation' "
        "  END AS detail FROM reasons"
        ") "
        "SELECT raw.source_system, raw.source_record_id, raw.source_row_number, "
        "raw.source_line, raw.source_file, raw.raw_row_id, r.field, r.reason, r.detail, "
        "to_json(raw)::VARCHAR AS raw_values, now()::TIMESTAMP AS quarantined_at "
        "FROM described AS r JOIN (SELECT * EXCLUDE (record_hash, load_problem_detail) "
        f"FROM {quote(raw_table)}) AS raw ON raw.raw_row_id = r.raw_row_id "
        "WHERE r.reason IS NOT NULL ORDER BY raw.raw_row_id"
    )


def write_quality_issues(
    con: duckdb.DuckDBPyConnection,
    base: str,
    raw_table: str,
    quarantine: str,
    quality: str,
    columns: Mapping[str, str],
    max_field_length: int,
) -> None:
    """One row per staged record and field whose value failed validation or was too
    long, with the raw value (shortened to 200 characters).

    Args:
        con: Warehouse connection.
        base: Staging's working table.
        raw_table: The source's raw table.
        quarantine: The source's quarantine table; its rows get no quality issues.
        quality: The table to (re)create.
        columns: Each mapped field (canonical and custom) to its source column.
        max_field_length: Raw values longer than this are ``too_long``.
    """
    selected = dict(columns)
    if "address" in columns:
        selected.setdefault("postcode", columns["address"])
    unions = [
        "SELECT b.source_system, b.source_record_id, b.source_row_number, b.source_file, "
        f"'{name}' AS field, b.{PROBLEM[name]} AS problem, "
        f"left(raw.{quote(column)}, 200) AS raw_value, b.raw_row_id "
        f"FROM {quote(base)} AS b JOIN {quote(raw_table)} AS raw "
        "ON raw.raw_row_id = b.raw_row_id "
        f"WHERE b.{PROBLEM[name]} IS NOT NULL"
        for name, column in selected.items()
        if name in PROBLEM
    ] + [
        "SELECT source_system, source_record_id, source_row_number, source_file, "
        f"'{name}' AS field, '{TOO_LONG}' AS problem, "
        f"left({quote(column)}, 200) || '...' AS raw_value, raw_row_id "
        f"FROM {quote(raw_table)} "
        f"WHERE length(trim({quote(column)})) > {int(max_field_length)}"
        for name, column in columns.items()
    ]
    if not unions:
        typed = ", ".join(f"{quote(c)} {t}" for c, t in QUALITY_ISSUE_COLUMNS.items())
        con.execute(f"CREATE OR REPLACE TABLE {quote(quality)} ({typed})")
        return
    column_list = ", ".join(quote(c) for c in QUALITY_ISSUE_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(quality)} AS SELECT {column_list} FROM ("
        + " UNION ALL ".join(unions)
        + f") WHERE raw_row_id NOT IN (SELECT raw_row_id FROM {quote(quarantine)}) "
        "ORDER BY raw_row_id, field"
    )
