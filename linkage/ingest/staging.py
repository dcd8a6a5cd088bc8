"""Turn one ``raw_<source>`` table into ``staged_<source>``: canonical, standardised fields.

Each distinct raw value of a field is standardised once in Python (the functions in
:mod:`linkage.ingest.standardise`), and the results are joined back in DuckDB, so a million
rows cost as much as their distinct values. Rows that cannot be used go to
``quarantine_<source>`` with a reason; field values that fail validation are nulled
for matching and recorded in ``quality_issues_<source>``.

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
import pandas as pd

from linkage.canonical import (
    CANONICAL_FIELDS,
    IDENTIFIER_FIELDS,
    IDENTIFYING_FIELDS,
    STAGED_COLUMNS,
    staged_columns,
)
from linkage.ingest import standardise as std
from linkage.ingest.identifiers import INVALID_HASH_TOKEN, normalise_identifier
from linkage.parallel import PendingMap, submit_tuples
from linkage.warehouse import quote, row_count

logger = logging.getLogger(__name__)

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

DEFAULT_MAX_FIELD_LENGTH = 1000
MAX_ID_LENGTH = 200
TOO_LONG = "too_long"


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


class _Mapper:
    """Builds the per-field lookup tables from distinct raw values.

    :meth:`start` submits a field's distinct values and :meth:`finish` stores every
    submitted field's lookup table: submitting a batch of fields before finishing any
    lets large fields run in the worker processes while this process works through the
    small ones.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, base: str, prefix: str) -> None:
        self.con = con
        self.base = base
        self.prefix = prefix
        self.tables: list[str] = []
        self._pending: list[tuple[str, list[str], list[tuple], PendingMap]] = []

    def start(
        self,
        name: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        function: Callable[..., tuple[Any, ...]],
    ) -> str:
        """Submit ``function`` over each distinct tuple of ``inputs``; returns the name
        of the lookup table :meth:`finish` will create."""
        columns = ", ".join(quote(c) for c in inputs)
        distinct = self.con.execute(
            f"SELECT DISTINCT {columns} FROM {quote(self.base)} "
            f"WHERE {quote(inputs[0])} IS NOT NULL"
        ).fetchall()
        # Large inputs run in worker processes: ``function`` must be picklable.
        pending = submit_tuples(function, distinct)
        table = f"{self.prefix}{name}"
        self._pending.append((table, [*inputs, *outputs], distinct, pending))
        self.tables.append(table)
        return table

    def finish(self) -> None:
        """Create the lookup table of every submitted field: those running in this
        process first, while the workers finish theirs."""
        batch = sorted(self._pending, key=lambda entry: not entry[3].in_process)
        self._pending = []
        for table, columns, distinct, pending in batch:
            mapped = pending.result()
            results = [(*row, *out) for row, out in zip(distinct, mapped, strict=True)]
            self._store(table, columns, results)

    def map_distinct(
        self,
        name: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        function: Callable[..., tuple[Any, ...]],
    ) -> str:
        """Apply ``function`` to each distinct tuple of ``inputs``; store as a lookup table."""
        table = self.start(name, inputs, outputs, function)
        self.finish()
        return table

    def _store(self, table: str, columns: list[str], results: list[tuple]) -> None:
        frame = pd.DataFrame(results, columns=columns, dtype=object)
        self.con.register("__meld_lookup", frame)
        try:
            casts = ", ".join(
                f"{quote(c)}::{'DATE' if c.endswith('_date') else 'VARCHAR'} AS {quote(c)}"
                for c in columns
            )
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {quote(table)} AS SELECT {casts} FROM __meld_lookup"
            )
        finally:
            self.con.unregister("__meld_lookup")

    def drop(self) -> None:
        for table in self.tables:
            self.con.execute(f"DROP TABLE IF EXISTS {quote(table)}")


def _raw_expr(fields: dict[str, FieldSpec], canonical: str, max_length: int | None = None) -> str:
    """The trimmed raw value of a field; NULL when blank or longer than ``max_length``."""
    spec = fields.get(canonical)
    if spec is None:
        return "NULL::VARCHAR"
    value = f"nullif(trim(raw.{quote(spec.column)}), '')"
    if max_length is None:
        return value
    return f"CASE WHEN length({value}) <= {int(max_length)} THEN {value} END"


def _identifier_parts(field: str, raw: str) -> tuple[str | None, str | None]:
    """Normalise an identifier; a national id arrives already hashed by the loader."""
    if field == "national_id":
        if raw == INVALID_HASH_TOKEN:
            return None, "invalid_identifier"
        return raw, None
    cleaned = normalise_identifier(raw, field)
    return cleaned.value, cleaned.problem


def _name_parts(raw: str) -> tuple[str | None, str | None, str | None]:
    cleaned = std.standardise_name(raw)
    display = std.clean_display(raw)
    if cleaned.value != std.fold_for_matching(raw):
        # A title or suffix was removed for matching ("Dr. Jörg"): drop it for display too.
        display = " ".join(part for part in std.split_full_name(raw) if part) or display
    return display if cleaned.value else None, cleaned.value, cleaned.problem


def _full_name_parts(raw: str) -> tuple[str | None, ...]:
    first, last = std.split_full_name(raw)
    if (
        first is None
        and last is not None
        and std.standardise_name(raw).value == (std.fold_for_matching(raw))
    ):
        # A lone name with no title ("Nela" signing a ticket) is a given name;
        # with a title ("Herr Müller") it stays the surname.
        first, last = last, None
    first_clean = std.standardise_name(first) if first else None
    last_clean = std.standardise_name(last) if last else None
    problem = None
    if not (first_clean and first_clean.value) and not (last_clean and last_clean.value):
        problem = "invalid_name"
    return (
        first if first_clean and first_clean.value else None,
        first_clean.value if first_clean else None,
        last if last_clean and last_clean.value else None,
        last_clean.value if last_clean else None,
        problem,
    )


def _custom_parts(raw: str) -> tuple[str | None]:
    return (std.fold_for_matching(raw),)


def _custom_columns(name: str) -> tuple[str, str]:
    """Raw and folded column of a custom field in the working table; never ``*_date``,
    which the lookup tables would cast to DATE."""
    return f"__custom_{name}__raw", f"__custom_{name}__value"


def _address_parts(raw: str, country: str | None) -> tuple[str | None, ...]:
    street, postcode, city = std.parse_address(raw, country)
    return street, postcode, city


def _email_parts(raw: str) -> tuple[str | None, str | None]:
    cleaned = std.standardise_email(raw)
    return cleaned.value, cleaned.problem


def _phone_parts(raw: str, region: str | None) -> tuple[str | None, str | None]:
    cleaned = std.standardise_phone(raw, region)
    return cleaned.value, cleaned.problem


def _postcode_parts(
    raw: str, country: str | None, region: str | None
) -> tuple[str | None, str | None]:
    """Validate against the record's own country; a source default is only a guess."""
    cleaned = std.standardise_postcode(raw, country or region)
    if cleaned.value is None and country is None:
        cleaned = std.standardise_postcode(raw, None)
    return cleaned.value, cleaned.problem


def _street_parts(raw: str) -> tuple[str | None, str | None]:
    return std.clean_display(raw), std.standardise_street(raw)


def _city_parts(raw: str) -> tuple[str | None, str | None]:
    return std.clean_display(raw), std.fold_for_matching(raw)


def _date_parts(
    raw: str, fmt: str | None, earliest: date, latest: date
) -> tuple[date | None, str | None]:
    cleaned = std.parse_date(raw, fmt, earliest=earliest, latest=latest)
    return cleaned.value, cleaned.problem


def _country_parts(raw: str) -> tuple[str | None, str | None]:
    country = std.standardise_country(raw)
    return country, None if country else "invalid_country"


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
            matching (lower-case ASCII, see :func:`linkage.standardise.fold_for_matching`),
            NULL when empty.

    Returns:
        Table names and counts of staged, quarantined and flagged rows.
    """
    raw_table = f"raw_{source_system}"
    base = f"__base_{source_system}"
    staged = f"staged_{source_system}"
    quarantine = f"quarantine_{source_system}"
    quality = f"quality_issues_{source_system}"
    earliest, latest = dob_range or default_dob_range()
    mapper = _Mapper(con, base, f"__map_{source_system}_")
    custom = {name: FieldSpec(column) for name, column in (custom_fields or {}).items()}

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
            f", {_raw_expr(custom, name, max_field_length)} AS {quote(_custom_columns(name)[0])}"
            for name in custom
        )
        + f" FROM {quote(raw_table)} AS raw"
    )
    country_map = mapper.map_distinct(
        "country", ["raw_country_text"], ["country_code", "country_problem"], _country_parts
    )
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.*, "
        "c.country_problem, c.country_code AS country, "
        "coalesce(c.country_code, $default_country) AS region "
        f"FROM {quote(base)} AS b LEFT JOIN {quote(country_map)} AS c "
        "ON b.raw_country_text = c.raw_country_text",
        {"default_country": default_country},
    )

    first_map = mapper.start(
        "first",
        ["raw_first_name"],
        ["first_display", "first_match", "first_problem"],
        _name_parts,
    )
    last_map = mapper.start(
        "last", ["raw_last_name"], ["last_display", "last_match", "last_problem"], _name_parts
    )
    full_map = mapper.start(
        "full",
        ["raw_full_name"],
        [
            "full_first_display",
            "full_first_match",
            "full_last_display",
            "full_last_match",
            "full_problem",
        ],
        _full_name_parts,
    )
    address_map = mapper.start(
        "address",
        ["raw_address", "country"],
        ["address_street", "address_postcode", "address_city"],
        _address_parts,
    )
    mapper.finish()
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

    dob_format = fields["date_of_birth"].format if "date_of_birth" in fields else None

    _dob_parts = partial(_date_parts, fmt=dob_format, earliest=earliest, latest=latest)

    dob_map = mapper.start("dob", ["raw_date_of_birth"], ["dob_date", "dob_problem"], _dob_parts)
    email_map = mapper.start("email", ["raw_email"], ["email", "email_problem"], _email_parts)
    phone_map = mapper.start(
        "phone", ["raw_phone", "region"], ["phone", "phone_problem"], _phone_parts
    )
    postcode_map = mapper.start(
        "postcode",
        ["postcode_text", "country", "region"],
        ["postcode", "postcode_problem"],
        _postcode_parts,
    )
    street_map = mapper.start(
        "street", ["street_text"], ["street_display", "street"], _street_parts
    )
    city_map = mapper.start("city", ["city_text"], ["city_display", "city"], _city_parts)
    identifier_maps = {
        name: mapper.start(
            f"id_{name}",
            [f"raw_{name}"],
            [f"{name}_value", f"{name}_problem"],
            partial(_identifier_parts, name),
        )
        for name in IDENTIFIER_FIELDS
    }

    mapper.finish()
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.*, "
        "d.dob_date, d.dob_problem, e.email, e.email_problem, p.phone, p.phone_problem, "
        "pc.postcode, pc.postcode_problem, s.street_display, s.street, "
        "c.city_display, c.city, "
        + ", ".join(
            f"{quote('i_' + name)}.{quote(name + '_value')} AS {quote(name)}, "
            f"{quote('i_' + name)}.{quote(name + '_problem')}"
            for name in IDENTIFIER_FIELDS
        )
        + f" FROM {quote(base)} AS b "
        f"LEFT JOIN {quote(dob_map)} AS d ON b.raw_date_of_birth = d.raw_date_of_birth "
        f"LEFT JOIN {quote(email_map)} AS e ON b.raw_email = e.raw_email "
        f"LEFT JOIN {quote(phone_map)} AS p ON b.raw_phone = p.raw_phone "
        "AND b.region IS NOT DISTINCT FROM p.region "
        f"LEFT JOIN {quote(postcode_map)} AS pc ON b.postcode_text = pc.postcode_text "
        "AND b.country IS NOT DISTINCT FROM pc.country "
        "AND b.region IS NOT DISTINCT FROM pc.region "
        f"LEFT JOIN {quote(street_map)} AS s ON b.street_text = s.street_text "
        f"LEFT JOIN {quote(city_map)} AS c ON b.city_text = c.city_text "
        + " ".join(
            f"LEFT JOIN {quote(table)} AS {quote('i_' + name)} "
            f"ON b.{quote('raw_' + name)} = {quote('i_' + name)}.{quote('raw_' + name)}"
            for name, table in identifier_maps.items()
        )
    )

    for name in custom:
        raw_column, value_column = _custom_columns(name)
        custom_map = mapper.map_distinct(
            f"custom_{name}", [raw_column], [value_column], _custom_parts
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote(base)} AS SELECT b.*, "
            f"m.{quote(value_column)} FROM {quote(base)} AS b "
            f"LEFT JOIN {quote(custom_map)} AS m ON b.{quote(raw_column)} = m.{quote(raw_column)}"
        )

    _write_quarantine(con, base, raw_table, quarantine, required_fields)
    _write_staged(con, base, quarantine, staged, list(custom))
    _write_quality_issues(
        con, base, raw_table, quarantine, quality, {**fields, **custom}, max_field_length
    )

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
    result = StageResult(
        staged_table=staged,
        quarantine_table=quarantine,
        quality_table=quality,
        raw_rows=row_count(con, raw_table),
        staged_rows=row_count(con, staged),
        quarantined_rows=row_count(con, quarantine),
        quarantine_reasons={str(k): int(v) for k, v in reasons.items()},
        field_problems={str(k): int(v) for k, v in problems.items()},
    )
    mapper.drop()
    con.execute(f"DROP TABLE IF EXISTS {quote(base)}")
    logger.info(
        "source %s: %d raw rows -> %d staged, %d quarantined",
        source_system,
        result.raw_rows,
        result.staged_rows,
        result.quarantined_rows,
    )
    return result


# Staged value and raw value of each field, for required-field and quality checks.
_STAGED_VALUE: dict[str, str] = {
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
_RAW_VALUE: dict[str, str] = {
    **{name: quote("raw_" + name) for name in CANONICAL_FIELDS},
    "street": "street_text",
    "postcode": "postcode_text",
    "city": "city_text",
    "country": "raw_country_text",
}
_PROBLEM: dict[str, str] = {
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


def _quarantine_rules(required_fields: Sequence[str]) -> list[tuple[str, str, str]]:
    """(condition, reason, field expression) in order of precedence."""
    no_identity = " AND ".join(f"{_STAGED_VALUE[name]} IS NULL" for name in IDENTIFYING_FIELDS)
    rules = [
        ("load_problem IS NOT NULL", "load_problem", "load_problem_field"),
        ("source_record_id IS NULL", "'missing_id'", "'id'"),
        (f"length(source_record_id) > {MAX_ID_LENGTH}", "'invalid_id'", "'id'"),
        ("id_rank > 1", "'duplicate_id'", "'id'"),
    ]
    for name in required_fields:
        rules.append((f"{_RAW_VALUE[name]} IS NULL", "'missing_required_field'", f"'{name}'"))
        rules.append((f"{_STAGED_VALUE[name]} IS NULL", "'invalid_required_field'", f"'{name}'"))
    rules.append((no_identity, "'no_identifying_fields'", f"'{','.join(IDENTIFYING_FIELDS)}'"))
    return rules


def _write_quarantine(
    con: duckdb.DuckDBPyConnection,
    base: str,
    raw_table: str,
    quarantine: str,
    required_fields: Sequence[str],
) -> None:
    """Quarantine rows that could not be read, have no usable or a repeated id, lack a
    required field, or have nothing to match on; with the raw values as JSON."""
    rules = _quarantine_rules(required_fields)
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


def _write_staged(
    con: duckdb.DuckDBPyConnection,
    base: str,
    quarantine: str,
    staged: str,
    custom_fields: Sequence[str] = (),
) -> None:
    expressions = {
        "unique_id": "source_system || ':' || source_record_id",
        "source_system": "source_system",
        "source_record_id": "source_record_id",
        "source_row_number": "source_row_number",
        "loaded_at": "loaded_at",
        "first_name": _STAGED_VALUE["first_name"],
        "last_name": _STAGED_VALUE["last_name"],
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
    }
    assert list(expressions) == list(STAGED_COLUMNS)
    expressions.update({name: quote(_custom_columns(name)[1]) for name in custom_fields})
    types = staged_columns(custom_fields)
    select = ", ".join(
        f"CAST({expr} AS {types[name]}) AS {quote(name)}" for name, expr in expressions.items()
    )
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(staged)} AS SELECT {select} FROM {quote(base)} "
        f"WHERE raw_row_id NOT IN (SELECT raw_row_id FROM {quote(quarantine)}) "
        "ORDER BY raw_row_id"
    )


def _write_quality_issues(
    con: duckdb.DuckDBPyConnection,
    base: str,
    raw_table: str,
    quarantine: str,
    quality: str,
    fields: dict[str, FieldSpec],
    max_field_length: int,
) -> None:
    """One row per staged record and field whose value failed validation or was too
    long, with the raw value (shortened to 200 characters)."""
    selected = dict(fields)
    if "address" in fields:
        selected.setdefault("postcode", fields["address"])
    unions = [
        "SELECT b.source_system, b.source_record_id, b.source_row_number, b.source_file, "
        f"'{name}' AS field, b.{_PROBLEM[name]} AS problem, "
        f"left(raw.{quote(spec.column)}, 200) AS raw_value, b.raw_row_id "
        f"FROM {quote(base)} AS b JOIN {quote(raw_table)} AS raw "
        "ON raw.raw_row_id = b.raw_row_id "
        f"WHERE b.{_PROBLEM[name]} IS NOT NULL"
        for name, spec in selected.items()
        if name in _PROBLEM
    ] + [
        "SELECT source_system, source_record_id, source_row_number, source_file, "
        f"'{name}' AS field, '{TOO_LONG}' AS problem, "
        f"left({quote(spec.column)}, 200) || '...' AS raw_value, raw_row_id "
        f"FROM {quote(raw_table)} "
        f"WHERE length(trim({quote(spec.column)})) > {int(max_field_length)}"
        for name, spec in fields.items()
    ]
    if not unions:
        columns = ", ".join(f"{quote(c)} {t}" for c, t in QUALITY_ISSUE_COLUMNS.items())
        con.execute(f"CREATE OR REPLACE TABLE {quote(quality)} ({columns})")
        return
    column_list = ", ".join(quote(c) for c in QUALITY_ISSUE_COLUMNS)
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(quality)} AS SELECT {column_list} FROM ("
        + " UNION ALL ".join(unions)
        + f") WHERE raw_row_id NOT IN (SELECT raw_row_id FROM {quote(quarantine)}) "
        "ORDER BY raw_row_id, field"
    )
