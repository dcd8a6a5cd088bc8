"""Turn one ``raw_<source>`` table into ``staged_<source>``: canonical, standardised fields.

Each distinct raw value of a field is standardised once in Python (the functions in
:mod:`linkage.ingest.field_parts`, over :mod:`linkage.ingest.standardise`), and the
results are joined back in DuckDB (:class:`~linkage.ingest.lookups.LookupTables`), so a
million rows cost as much as their distinct values. Rows that cannot be used go to
``quarantine_<source>`` with a reason; field values that fail validation are nulled
for matching and recorded in ``quality_issues_<source>`` (see
:mod:`linkage.ingest.quarantine`).

Staging builds a working table in steps, each adding columns to it: the raw text of
every field, then the country, the names and address parts, every other field's
standardised value and problem, and the custom fields; the three tables are written
from it.

Examples:
    ```py
    result = stage_source(
        con,
        source_system="crm_contacts",
        fields={"email": FieldSpec("email_address")},
        default_country="SE",
    )
    result.staged_rows, result.quarantined_rows
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import partial
from typing import Any

import duckdb

from linkage.atomic import transaction
from linkage.canonical import CANONICAL_FIELDS, IDENTIFIER_FIELDS, STAGED_COLUMNS, staged_columns
from linkage.ingest.field_parts import (
    address_parts,
    city_parts,
    country_parts,
    custom_columns,
    custom_parts,
    date_parts,
    email_parts,
    full_name_parts,
    identifier_parts,
    name_parts,
    phone_parts,
    phonetic_parts,
    postcode_parts,
    street_parts,
)
from linkage.ingest.lookups import LookupTables
from linkage.ingest.quarantine import STAGED_VALUE, write_quality_issues, write_quarantine
from linkage.tables import quality_issues_table, quarantine_table, raw_table, staged_table
from linkage.warehouse import quote, row_count

logger = logging.getLogger(__name__)

DEFAULT_MAX_FIELD_LENGTH = 1000


@dataclass(frozen=True)
class FieldSpec:
    """A mapped source column and, for dates, its strptime format."""

    column: str
    format: str | None = None


@dataclass(frozen=True)
class StageResult:
    """What :func:`stage_source` produced."""

    staged_table: str
    quarantine_table: str
    quality_table: str
    raw_rows: int
    staged_rows: int
    quarantined_rows: int
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    field_problems: dict[str, int] = field(default_factory=dict)


def default_dob_range(today: date | None = None) -> tuple[date, date]:
    """Plausible dates of birth: an age of 0 to 120 years."""
    today = today or date.today()
    try:
        earliest = today.replace(year=today.year - 120)
    except ValueError:  # 29 February
        earliest = today.replace(year=today.year - 120, day=28)
    return earliest, today


def stage_source(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    fields: dict[str, FieldSpec],
    default_country: str | None = None,
    dob_range: tuple[date, date] | None = None,
    required_fields: Sequence[str] = (),
    max_field_length: int = DEFAULT_MAX_FIELD_LENGTH,
    custom_fields: Mapping[str, str] | None = None,
    match_invalid_values: bool = True,
) -> StageResult:
    """Standardise ``raw_<source_system>`` into ``staged_<source_system>``.

    Args:
        con: Warehouse connection; ``raw_<source_system>`` must exist.
        source_system: The source's name.
        fields: Canonical field to source column (and date format).
        default_country: ISO country for phones and postcodes without one.
        dob_range: Earliest and latest plausible date of birth.
        required_fields: Fields a row cannot do without: when missing or invalid the
            row is quarantined rather than staged.
        max_field_length: Longer values are nulled and recorded as ``too_long``.
        custom_fields: Custom field name to source column. Each becomes a text column
            of ``staged_<source_system>`` named after the field: trimmed, folded for
            matching (lower-case ASCII, see
            :func:`~linkage.ingest.standardise.text.fold_for_matching`), NULL when empty.
        match_invalid_values: Phones, e-mails and postcodes that fail validation keep
            a comparable form (and their problem in the quality issues); false nulls
            them for matching.

    Returns:
        Table names and counts of staged, quarantined and flagged rows.
    """
    raw = raw_table(source_system)
    base = f"__base_{source_system}"
    earliest, latest = dob_range or default_dob_range()
    lookups = LookupTables(con, base, f"__map_{source_system}_")
    custom = {name: FieldSpec(column) for name, column in (custom_fields or {}).items()}

    _create_working_table(con, base, raw, fields, custom, max_field_length)
    _add_country(con, base, lookups, default_country)
    _add_names_and_address(con, base, lookups)
    dob_format = fields["date_of_birth"].format if "date_of_birth" in fields else None
    dob_parts = partial(date_parts, fmt=dob_format, earliest=earliest, latest=latest)
    _add_field_values(con, base, lookups, dob_parts, match_invalid_values)
    _add_phonetic_codes(con, base, lookups)
    _add_custom_fields(con, base, lookups, custom)

    result = _write_outputs(
        con,
        base,
        source_system,
        columns={name: spec.column for name, spec in {**fields, **custom}.items()},
        custom_fields=list(custom),
        required_fields=required_fields,
        max_field_length=max_field_length,
    )
    lookups.drop()
    con.execute(f"DROP TABLE IF EXISTS {quote(base)}")
    logger.info(
        "source %s: %d raw rows -> %d staged, %d quarantined",
        source_system,
        result.raw_rows,
        result.staged_rows,
        result.quarantined_rows,
    )
    return result


def _raw_expr(
    fields: Mapping[str, FieldSpec], canonical: str, max_length: int | None = None
) -> str:
    """The trimmed raw value of a field; NULL when blank or longer than ``max_length``."""
    spec = fields.get(canonical)
    if spec is None:
        return "NULL::VARCHAR"
    value = f"nullif(trim(raw.{quote(spec.column)}), '')"
    if max_length is None:
        return value
    return f"CASE WHEN length({value}) <= {int(max_length)} THEN {value} END"


def _create_working_table(
    con: duckdb.DuckDBPyConnection,
    base: str,
    raw: str,
    fields: Mapping[str, FieldSpec],
    custom: Mapping[str, FieldSpec],
    max_field_length: int,
) -> None:
    """The working table: each raw row's lineage and the trimmed raw text of every
    canonical and custom field (NULL when blank or too long)."""
    raw_country = _raw_expr(fields, "country", max_field_length)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT "
        "raw.source_system, raw.source_record_id, raw.source_row_number, raw.source_file, "
        "raw.loaded_at, raw.raw_row_id, raw.load_problem, raw.load_problem_field, "
        "raw.load_problem_detail, "
        + ", ".join(
            f"{_raw_expr(fields, name, max_field_length)} AS {quote('raw_' + name)}"
            for name in CANONICAL_FIELDS
            if name != "country"
        )
        + f", {raw_country} AS raw_country_text"
        + "".join(
            f", {_raw_expr(custom, name, max_field_length)} AS {quote(custom_columns(name)[0])}"
            for name in custom
        )
        + f" FROM {quote(raw)} AS raw"
    )


def _add_country(
    con: duckdb.DuckDBPyConnection,
    base: str,
    lookups: LookupTables,
    default_country: str | None,
) -> None:
    """Add each row's ISO ``country`` and its problem, and the ``region`` its phones and
    postcodes are read in (its country, else the source's default)."""
    country_map = lookups.map_distinct(
        "country", ["raw_country_text"], ["country_code", "country_problem"], country_parts
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.*, "
        "c.country_problem, c.country_code AS country, "
        "coalesce(c.country_code, $default_country) AS region "
        f"FROM {quote(base)} AS b LEFT JOIN {quote(country_map)} AS c "
        "ON b.raw_country_text = c.raw_country_text",
        {"default_country": default_country},
    )


def _add_names_and_address(
    con: duckdb.DuckDBPyConnection, base: str, lookups: LookupTables
) -> None:
    """Add the standardised given name, surname and full-name parts, and the street,
    postcode and city text (a mapped column, else the part of the address line)."""
    first_map = lookups.start(
        "first",
        ["raw_first_name"],
        ["first_display", "first_match", "first_problem"],
        name_parts,
    )
    last_map = lookups.start(
        "last", ["raw_last_name"], ["last_display", "last_match", "last_problem"], name_parts
    )
    full_map = lookups.start(
        "full",
        ["raw_full_name"],
        [
            "full_first_display",
            "full_first_match",
            "full_last_display",
            "full_last_match",
            "full_problem",
        ],
        full_name_parts,
    )
    address_map = lookups.start(
        "address",
        ["raw_address", "country"],
        ["address_street", "address_postcode", "address_city"],
        address_parts,
    )
    lookups.finish()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.*, "
        "f.first_display, f.first_match, f.first_problem, "
        "l.last_display, l.last_match, l.last_problem, "
        "n.full_first_display, n.full_first_match, n.full_last_display, n.full_last_match, "
        "n.full_problem, "
        "coalesce(b.raw_street, a.address_street) AS street_text, "
        "coalesce(b.raw_postcode, a.address_postcode) AS postcode_text, "
        "coalesce(b.raw_city, a.address_city) AS city_text "
        f"FROM {quote(base)} AS b "
        f"LEFT JOIN {quote(first_map)} AS f ON b.raw_first_name = f.raw_first_name "
        f"LEFT JOIN {quote(last_map)} AS l ON b.raw_last_name = l.raw_last_name "
        f"LEFT JOIN {quote(full_map)} AS n ON b.raw_full_name = n.raw_full_name "
        f"LEFT JOIN {quote(address_map)} AS a ON b.raw_address = a.raw_address "
        "AND b.country IS NOT DISTINCT FROM a.country"
    )


def _add_field_values(
    con: duckdb.DuckDBPyConnection,
    base: str,
    lookups: LookupTables,
    dob_parts: Callable[[str], tuple[Any, ...]],
    match_invalid: bool = True,
) -> None:
    """Add the standardised value and problem of the date of birth, e-mail, phone,
    postcode, street, city and every identifier."""
    maps = {
        "dob": lookups.start("dob", ["raw_date_of_birth"], ["dob_date", "dob_problem"], dob_parts),
        "email": lookups.start(
            "email",
            ["raw_email"],
            ["email", "email_problem"],
            partial(email_parts, match_invalid=match_invalid),
        ),
        "phone": lookups.start(
            "phone",
            ["raw_phone", "region"],
            ["phone", "phone_national", "phone_valid", "phone_problem"],
            partial(phone_parts, match_invalid=match_invalid),
        ),
        "postcode": lookups.start(
            "postcode",
            ["postcode_text", "country", "region"],
            ["postcode", "postcode_problem"],
            partial(postcode_parts, match_invalid=match_invalid),
        ),
        "street": lookups.start(
            "street", ["street_text"], ["street_display", "street"], street_parts
        ),
        "city": lookups.start("city", ["city_text"], ["city_display", "city"], city_parts),
    }
    identifier_maps = {
        name: lookups.start(
            f"id_{name}",
            [f"raw_{name}"],
            [f"{name}_value", f"{name}_problem"],
            partial(identifier_parts, name),
        )
        for name in IDENTIFIER_FIELDS
    }
    lookups.finish()
    _join_field_values(con, base, maps, identifier_maps)


def _join_field_values(
    con: duckdb.DuckDBPyConnection,
    base: str,
    maps: Mapping[str, str],
    identifier_maps: Mapping[str, str],
) -> None:
    """Join the lookup tables of :func:`_add_field_values` to the working table."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.*, "
        "d.dob_date, d.dob_problem, e.email, e.email_problem, p.phone, p.phone_national, "
        "p.phone_valid, p.phone_problem, "
        "pc.postcode, pc.postcode_problem, s.street_display, s.street, "
        "c.city_display, c.city, "
        + ", ".join(
            f"{quote('i_' + name)}.{quote(name + '_value')} AS {quote(name)}, "
            f"{quote('i_' + name)}.{quote(name + '_problem')}"
            for name in IDENTIFIER_FIELDS
        )
        + f" FROM {quote(base)} AS b "
        f"LEFT JOIN {quote(maps['dob'])} AS d ON b.raw_date_of_birth = d.raw_date_of_birth "
        f"LEFT JOIN {quote(maps['email'])} AS e ON b.raw_email = e.raw_email "
        f"LEFT JOIN {quote(maps['phone'])} AS p ON b.raw_phone = p.raw_phone "
        "AND b.region IS NOT DISTINCT FROM p.region "
        f"LEFT JOIN {quote(maps['postcode'])} AS pc ON b.postcode_text = pc.postcode_text "
        "AND b.country IS NOT DISTINCT FROM pc.country "
        "AND b.region IS NOT DISTINCT FROM pc.region "
        f"LEFT JOIN {quote(maps['street'])} AS s ON b.street_text = s.street_text "
        f"LEFT JOIN {quote(maps['city'])} AS c ON b.city_text = c.city_text "
        + " ".join(
            f"LEFT JOIN {quote(table)} AS {quote('i_' + name)} "
            f"ON b.{quote('raw_' + name)} = {quote('i_' + name)}.{quote('raw_' + name)}"
            for name, table in identifier_maps.items()
        )
    )


def _add_phonetic_codes(con: duckdb.DuckDBPyConnection, base: str, lookups: LookupTables) -> None:
    """Add the Metaphone code of the matching first and last name, computed once per
    distinct name."""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT *, "
        f"{STAGED_VALUE['first_name']} AS __first_name, "
        f"{STAGED_VALUE['last_name']} AS __last_name FROM {quote(base)}"
    )
    first = lookups.start("phonetic_first", ["__first_name"], ["first_phonetic"], phonetic_parts)
    last = lookups.start("phonetic_last", ["__last_name"], ["last_phonetic"], phonetic_parts)
    lookups.finish()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.* EXCLUDE (__first_name, "
        "__last_name), f.first_phonetic, l.last_phonetic "
        f"FROM {quote(base)} AS b "
        f"LEFT JOIN {quote(first)} AS f ON b.__first_name = f.__first_name "
        f"LEFT JOIN {quote(last)} AS l ON b.__last_name = l.__last_name"
    )


def _add_custom_fields(
    con: duckdb.DuckDBPyConnection,
    base: str,
    lookups: LookupTables,
    custom: Mapping[str, FieldSpec],
) -> None:
    """Add the matching form of each custom field."""
    for name in custom:
        raw_column, value_column = custom_columns(name)
        custom_map = lookups.map_distinct(
            f"custom_{name}", [raw_column], [value_column], custom_parts
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.*, "
            f"m.{quote(value_column)} FROM {quote(base)} AS b "
            f"LEFT JOIN {quote(custom_map)} AS m ON b.{quote(raw_column)} = m.{quote(raw_column)}"
        )


def _write_outputs(
    con: duckdb.DuckDBPyConnection,
    base: str,
    source_system: str,
    *,
    columns: Mapping[str, str],
    custom_fields: Sequence[str],
    required_fields: Sequence[str],
    max_field_length: int,
) -> StageResult:
    """Write the quarantine, staged and quality-issue tables from the working table;
    count what went where."""
    raw = raw_table(source_system)
    staged = staged_table(source_system)
    quarantine = quarantine_table(source_system)
    quality = quality_issues_table(source_system)
    with transaction(con):  # the three tables of a source agree, whatever kills the run
        write_quarantine(con, base, raw, quarantine, required_fields)
        _write_staged(con, base, quarantine, staged, custom_fields)
        write_quality_issues(con, base, raw, quarantine, quality, columns, max_field_length)

    reasons = dict(
        con.execute(
            f"SELECT reason, count(*) FROM {quote(quarantine)} GROUP BY reason ORDER BY reason"
        ).fetchall()
    )
    problems = dict(
        con.execute(
            f"SELECT field || ':' || problem, count(*) FROM {quote(quality)} "
            "GROUP BY ALL ORDER BY 1"
        ).fetchall()
    )
    return StageResult(
        staged_table=staged,
        quarantine_table=quarantine,
        quality_table=quality,
        raw_rows=row_count(con, raw),
        staged_rows=row_count(con, staged),
        quarantined_rows=row_count(con, quarantine),
        quarantine_reasons={str(k): int(v) for k, v in reasons.items()},
        field_problems={str(k): int(v) for k, v in problems.items()},
    )


def _write_staged(
    con: duckdb.DuckDBPyConnection,
    base: str,
    quarantine: str,
    staged: str,
    custom_fields: Sequence[str] = (),
) -> None:
    """``staged_<source>``: every row not quarantined, in the canonical columns."""
    expressions = {
        "unique_id": "source_system || ':' || source_record_id",
        "source_system": "source_system",
        "source_record_id": "source_record_id",
        "source_row_number": "source_row_number",
        "loaded_at": "loaded_at",
        "first_name": STAGED_VALUE["first_name"],
        "last_name": STAGED_VALUE["last_name"],
        "date_of_birth": "dob_date",
        "email": "email",
        "phone": "phone",
        "street": "street",
        "postcode": "postcode",
        "city": "city",
        "country": "country",
        **{name: quote(name) for name in IDENTIFIER_FIELDS},
        "first_name_display": "coalesce(first_display, full_first_display)",
        "last_name_display": "coalesce(last_display, full_last_display)",
        "street_display": "street_display",
        "city_display": "city_display",
        "phone_national": "phone_national",
        "phone_valid": "phone_valid",
        "first_name_phonetic": "first_phonetic",
        "last_name_phonetic": "last_phonetic",
    }
    assert list(expressions) == list(STAGED_COLUMNS)
    expressions.update({name: quote(custom_columns(name)[1]) for name in custom_fields})
    types = staged_columns(custom_fields)
    select = ", ".join(
        f"CAST({expr} AS {types[name]}) AS {quote(name)}" for name, expr in expressions.items()
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(staged)} AS SELECT {select} FROM {quote(base)} "
        f"WHERE raw_row_id NOT IN (SELECT raw_row_id FROM {quote(quarantine)}) "
        "ORDER BY raw_row_id"
    )
