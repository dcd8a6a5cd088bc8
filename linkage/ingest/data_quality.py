"""Data quality of each delivery: field rates, rule outcomes, row-count changes, a profile.

Everything here reads the tables staging leaves behind (``raw_<source>``,
``quarantine_<source>``, ``quality_issues_<source>``) and the ``staging_runs`` log.
Values shown to people pass through :func:`mask_value` first: a steward sees the
shape of a value (``j***@g***.com``), never the value itself.

Examples:
    ```py
    rates = field_rates(con, "crm_contacts", {"email": "email_address"})
    outcomes = evaluate_quality_rules(rates, {"email": FieldQualityRule(min_valid_rate=0.9)})
    [o for o in outcomes if not o.passed]
    profile = profile_sources(con, {"crm_contacts": {"email": "email_address"}}, top_values=5)
    ```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import duckdb
import pandas as pd

from linkage.canonical import IDENTIFIER_FIELDS
from linkage.errors import MeldError
from linkage.tables import DATA_QUALITY_PROFILE, STAGING_RUNS
from linkage.warehouse import quote, table_columns, table_exists

logger = logging.getLogger(__name__)

STAGING_RUNS_COLUMNS: dict[str, str] = {
    "source_system": "VARCHAR",
    "run_id": "VARCHAR",
    "staged_at": "TIMESTAMP",
    "raw_rows": "BIGINT",
    "staged_rows": "BIGINT",
    "quarantined_rows": "BIGINT",
}
"""Columns of ``staging_runs``: one row per materialization of a ``staged_<source>``."""

PROFILE_COLUMNS: dict[str, str] = {
    "source_system": "VARCHAR",
    "field": "VARCHAR",
    "source_column": "VARCHAR",
    "rows": "BIGINT",
    "present": "BIGINT",
    "invalid": "BIGINT",
    "completeness": "DOUBLE",
    "validity": "DOUBLE",
    "distinct_values": "BIGINT",
    "top_values": "VARCHAR",
    "profiled_at": "TIMESTAMP",
}
"""Columns of ``data_quality_profile``: one row per source and mapped field. ``top_values``
holds masked values only."""

UNMASKED_FIELDS: frozenset[str] = frozenset({"country", "city"})
"""Fields whose values are not personal on their own and are shown as delivered."""

SHAPE_FIELDS: frozenset[str] = frozenset({"date_of_birth", *IDENTIFIER_FIELDS})
"""Fields shown only as their format (``9999-99-99``); their top values are top formats."""

_SQL_SHAPE = (
    "regexp_replace(regexp_replace(regexp_replace(value, '[0-9]', '9', 'g'), "
    "'[A-Z]', 'X', 'g'), '[a-z]', 'x', 'g')"
)


class DataQualityError(MeldError, ValueError):
    """A table the data-quality code reads is missing or lacks a column."""


class QualityRule(Protocol):
    """What :func:`evaluate_quality_rules` needs of a rule (e.g. ``FieldQualityRule``)."""

    max_null_rate: float | None
    min_valid_rate: float | None
    blocking: bool


@dataclass(frozen=True)
class FieldRates:
    """Counts of one mapped field over a source's rows that were not quarantined.

    ``present`` counts non-blank raw values; ``invalid`` counts present values that
    failed validation (listed in ``quality_issues_<source>``).
    """

    source_system: str
    field: str
    column: str
    rows: int
    present: int
    invalid: int
    distinct: int

    @property
    def null_rate(self) -> float | None:
        """Share of rows without a value; None when there are no rows."""
        return None if self.rows == 0 else (self.rows - self.present) / self.rows

    @property
    def completeness(self) -> float | None:
        """Share of rows with a value; None when there are no rows."""
        return None if self.rows == 0 else self.present / self.rows

    @property
    def valid_rate(self) -> float | None:
        """Share of present values that passed validation; None when none is present."""
        return None if self.present == 0 else (self.present - self.invalid) / self.present


@dataclass(frozen=True)
class RuleOutcome:
    """One threshold of one field's rule, checked against the observed rate."""

    field: str
    rule: str
    observed: float | None
    threshold: float
    passed: bool
    blocking: bool


@dataclass(frozen=True)
class RowCountChange:
    """Staged rows of a source's latest staging run against the run before it."""

    source_system: str
    current: int | None
    previous: int | None
    current_run_id: str | None = None
    previous_run_id: str | None = None

    @property
    def drop(self) -> float | None:
        """Share of the previous rows that are gone (negative when rows grew); None
        without a previous run with rows."""
        if self.current is None or not self.previous:
            return None
        return (self.previous - self.current) / self.previous

    def exceeds_drop(self, max_drop: float) -> bool:
        """Whether staged rows fell by more than ``max_drop`` (a share of the previous).

        Examples:
            >>> RowCountChange("crm", current=40, previous=100).exceeds_drop(0.5)
            True
            >>> RowCountChange("crm", current=60, previous=100).exceeds_drop(0.5)
            False
            >>> RowCountChange("crm", current=60, previous=None).exceeds_drop(0.5)
            False
        """
        drop = self.drop
        return drop is not None and drop > max_drop


def record_staging_run(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    run_id: str,
    raw_rows: int,
    staged_rows: int,
    quarantined_rows: int,
) -> None:
    """Append one staging run of a source to ``staging_runs``, creating the table if missing.

    Examples:
        ```py
        record_staging_run(
            con, source_system="crm_contacts", run_id=context.run_id,
            raw_rows=100, staged_rows=97, quarantined_rows=3,
        )
        ```
    """
    columns = ", ".join(f"{quote(c)} {t}" for c, t in STAGING_RUNS_COLUMNS.items())
    con.execute(f"CREATE TABLE IF NOT EXISTS {quote(STAGING_RUNS)} ({columns})")
    con.execute(
        f"INSERT INTO {quote(STAGING_RUNS)} "
        "(source_system, run_id, staged_at, raw_rows, staged_rows, quarantined_rows) "
        "VALUES (?, ?, now()::TIMESTAMP, ?, ?, ?)",
        [source_system, run_id, raw_rows, staged_rows, quarantined_rows],
    )


def row_count_change(con: duckdb.DuckDBPyConnection, source_system: str) -> RowCountChange:
    """Staged rows of the last two ``staging_runs`` of a source.

    Without the table or any run, both counts are None; on the first run ``previous``
    is None.

    Examples:
        ```py
        change = row_count_change(con, "crm_contacts")
        change.exceeds_drop(0.5)
        ```
    """
    if not table_exists(con, STAGING_RUNS):
        return RowCountChange(source_system, current=None, previous=None)
    runs = con.execute(
        f"SELECT staged_rows, run_id FROM {quote(STAGING_RUNS)} "
        "WHERE source_system = ? ORDER BY staged_at DESC, rowid DESC LIMIT 2",
        [source_system],
    ).fetchall()
    current, previous = (runs + [(None, None), (None, None)])[:2]
    return RowCountChange(
        source_system,
        current=None if current[0] is None else int(current[0]),
        previous=None if previous[0] is None else int(previous[0]),
        current_run_id=current[1],
        previous_run_id=previous[1],
    )


def _require(con: duckdb.DuckDBPyConnection, source_system: str) -> None:
    for table in (f"raw_{source_system}", *_staging_tables(source_system)):
        if not table_exists(con, table):
            raise DataQualityError(
                f"source '{source_system}': table '{table}' not found in the warehouse; "
                f"materialize staged_{source_system} first"
            )


def _staging_tables(source_system: str) -> tuple[str, str]:
    return f"quarantine_{source_system}", f"quality_issues_{source_system}"


def _row_key(con: duckdb.DuckDBPyConnection, table: str, left: str, right: str) -> str:
    """Join condition on a raw row: its row number, and its file when ``table`` has one
    (row numbers restart in each file of a multi-file delivery)."""
    condition = f"{left}.source_row_number = {right}.source_row_number"
    if "source_file" in table_columns(con, table):
        condition += f" AND {left}.source_file IS NOT DISTINCT FROM {right}.source_file"
    return condition


def _kept_rows_sql(con: duckdb.DuckDBPyConnection, source_system: str, column: str) -> str:
    """The trimmed raw value of ``column`` for every row that was not quarantined."""
    quarantine, _ = _staging_tables(source_system)
    return (
        "SELECT raw.source_row_number, raw.source_file, "
        f"nullif(trim(raw.{quote(column)}), '') AS value "
        f"FROM {quote('raw_' + source_system)} AS raw "
        f"ANTI JOIN {quote(quarantine)} AS q ON {_row_key(con, quarantine, 'raw', 'q')}"
    )


def field_rates(
    con: duckdb.DuckDBPyConnection, source_system: str, fields: Mapping[str, str]
) -> list[FieldRates]:
    """Rows, present, invalid and distinct raw values of each mapped field of a source.

    Only rows of ``raw_<source>`` that are not in ``quarantine_<source>`` count; a
    present value is invalid when ``quality_issues_<source>`` lists its row for that
    field.

    Args:
        con: Warehouse connection.
        source_system: The source's name.
        fields: Canonical field to source column.

    Returns:
        One :class:`FieldRates` per field, in the order given.

    Raises:
        DataQualityError: The raw, quarantine or quality-issue table of the source is
            missing, or a mapped column is not in ``raw_<source>``.

    Examples:
        ```py
        [rates] = field_rates(con, "crm_contacts", {"email": "email_address"})
        rates.null_rate, rates.valid_rate
        ```
    """
    _require(con, source_system)
    raw_columns = set(table_columns(con, f"raw_{source_system}"))
    _, issues = _staging_tables(source_system)
    file_key = ", source_file" if "source_file" in table_columns(con, issues) else ""
    results = []
    for field, column in fields.items():
        if column not in raw_columns:
            raise DataQualityError(
                f"source '{source_system}', field '{field}': column '{column}' not found "
                f"in raw_{source_system}"
            )
        rows, present, invalid, distinct = con.execute(
            "SELECT count(*), count(k.value), count(k.value) FILTER (WHERE i.flagged), "
            f"count(DISTINCT k.value) FROM ({_kept_rows_sql(con, source_system, column)}) AS k "
            f"LEFT JOIN (SELECT DISTINCT source_row_number{file_key}, true AS flagged "
            f"FROM {quote(issues)} WHERE field = $field) AS i "
            f"ON {_row_key(con, issues, 'k', 'i')}",
            {"field": field},
        ).fetchall()[0]
        results.append(
            FieldRates(
                source_system=source_system,
                field=field,
                column=column,
                rows=int(rows),
                present=int(present),
                invalid=int(invalid),
                distinct=int(distinct),
            )
        )
    return results


def evaluate_quality_rules(
    rates: list[FieldRates], rules: Mapping[str, QualityRule | None]
) -> list[RuleOutcome]:
    """Check each field's null and validity rates against its rule's thresholds.

    A field without a rule, or a rule without a threshold, yields no outcome. A
    validity threshold passes when no value is present (the null rule covers that).

    Args:
        rates: Observed rates, e.g. from :func:`field_rates`.
        rules: Canonical field to rule: any object with ``max_null_rate``,
            ``min_valid_rate`` and ``blocking``.

    Returns:
        One :class:`RuleOutcome` per field and threshold.

    Examples:
        >>> from types import SimpleNamespace
        >>> rates = [FieldRates("crm", "email", "mail", rows=10, present=8, invalid=4,
        ...                     distinct=8)]
        >>> rule = SimpleNamespace(max_null_rate=0.5, min_valid_rate=0.9, blocking=False)
        >>> [(o.rule, o.observed, o.passed) for o in evaluate_quality_rules(rates,
        ...                                                                {"email": rule})]
        [('max_null_rate', 0.2, True), ('min_valid_rate', 0.5, False)]
    """
    outcomes = []
    for rate in rates:
        rule = rules.get(rate.field)
        if rule is None:
            continue
        if rule.max_null_rate is not None:
            observed = rate.null_rate
            outcomes.append(
                RuleOutcome(
                    field=rate.field,
                    rule="max_null_rate",
                    observed=observed,
                    threshold=rule.max_null_rate,
                    passed=observed is None or observed <= rule.max_null_rate,
                    blocking=rule.blocking,
                )
            )
        if rule.min_valid_rate is not None:
            observed = rate.valid_rate
            outcomes.append(
                RuleOutcome(
                    field=rate.field,
                    rule="min_valid_rate",
                    observed=observed,
                    threshold=rule.min_valid_rate,
                    passed=observed is None or observed >= rule.min_valid_rate,
                    blocking=rule.blocking,
                )
            )
    return outcomes


_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)


def _shape(value: str) -> str:
    """Digits become 9 and letters X or x, other characters stay: the value's format."""
    return "".join(
        "9" if c.isdigit() else ("X" if c.isupper() else "x") if c.isalpha() else c for c in value
    )


def _initials(value: str) -> str:
    """Each word as its first letter and ``***``, numbers as 9s, punctuation kept."""
    return _WORD.sub(
        lambda m: "9" * len(m.group()) if m.group().isdigit() else m.group()[0] + "***", value
    )


def _mask_email(value: str) -> str:
    user, at, domain = value.rpartition("@")
    if not at or not user or not domain:
        return _initials(value)
    host, dot, tld = domain.rpartition(".")
    if not dot or not host:
        return f"{user[0]}***@{domain[0]}***"
    return f"{user[0]}***@{host[0]}***.{tld}"


def _mask_phone(value: str) -> str:
    """Keep the layout, a leading ``+`` and two-digit country code, and the last two digits."""
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    if len(digits) < 6:
        return _shape(value).replace("9", "*")
    keep = set(digits[-2:])
    if value.lstrip().startswith("+"):
        keep |= set(digits[:2])
    return "".join(c if i in keep or not c.isdigit() else "*" for i, c in enumerate(value))


def _mask_postcode(value: str) -> str:
    return value[:2] + "".join(" " if c.isspace() else "*" for c in value[2:])


def mask_value(field: str, value: str | None, *, max_length: int = 40) -> str | None:
    """Show a value's shape without the value, so it can go into reports.

    Countries and cities are shown as they are; postcodes keep two characters; e-mails,
    phones and names keep one character per part; dates and identifiers show only their
    format. Unknown fields are masked like names.

    Examples:
        >>> mask_value("email", "john.smith@gmail.com")
        'j***@g***.com'
        >>> mask_value("phone", "+46 70 123 45 12")
        '+46 ** *** ** 12'
        >>> mask_value("first_name", "Anna")
        'A*** (4 chars)'
        >>> mask_value("date_of_birth", "1984-03-02")
        '9999-99-99'
        >>> mask_value("postcode", "111 22")
        '11* **'
        >>> mask_value("city", "Malmö")
        'Malmö'
    """
    if value is None:
        return None
    if field in UNMASKED_FIELDS:
        masked = value
    elif field == "email":
        masked = _mask_email(value)
    elif field == "phone":
        masked = _mask_phone(value)
    elif field == "postcode":
        masked = _mask_postcode(value)
    elif field in SHAPE_FIELDS:
        masked = _shape(value)
    elif field in ("street", "address"):
        masked = _initials(value)
    else:
        masked = f"{_initials(value)} ({len(value)} chars)"
    return masked if len(masked) <= max_length else masked[: max_length - 1] + "…"


def masked_top_values(
    con: duckdb.DuckDBPyConnection, source_system: str, field: str, column: str, limit: int
) -> list[tuple[str, int]]:
    """The most frequent values of a field over rows not quarantined, masked, with their
    counts (most frequent first). Dates and identifiers count their formats instead:
    each value of them is shown the same way.

    Examples:
        ```py
        masked_top_values(con, "crm_contacts", "email", "email_address", 3)
        # [('i***@e***.com', 12), ('a***@g***.com', 1), ('a***@g***.com', 1)]
        masked_top_values(con, "crm_contacts", "date_of_birth", "birth_date", 3)
        # [('9999-99-99', 950), ('99/99/9999', 41), ('9/9/99', 3)]
        ```
    """
    shown = _SQL_SHAPE if field in SHAPE_FIELDS else "value"
    rows = con.execute(
        f"SELECT {shown} AS shown, count(*) AS n "
        f"FROM ({_kept_rows_sql(con, source_system, column)}) "
        "WHERE value IS NOT NULL GROUP BY shown ORDER BY n DESC, shown LIMIT ?",
        [limit],
    ).fetchall()
    masked = [(mask_value(field, value) or "", int(n)) for value, n in rows]
    if field not in SHAPE_FIELDS:
        return masked
    merged: dict[str, int] = {}  # non-ASCII letters are shaped only in Python
    for value, n in masked:
        merged[value] = merged.get(value, 0) + n
    return sorted(merged.items(), key=lambda item: -item[1])


def _format_top(values: list[tuple[str, int]]) -> str:
    return "; ".join(f"{value} ×{n}" for value, n in values)


def profile_sources(
    con: duckdb.DuckDBPyConnection,
    sources: Mapping[str, Mapping[str, str]],
    top_values: int,
) -> pd.DataFrame:
    """Profile every mapped field of every source and write ``data_quality_profile``.

    Args:
        con: Warehouse connection; each source's raw, quarantine and quality-issue
            tables must exist.
        sources: Source name to (canonical field to source column).
        top_values: How many of the most frequent values to keep per field (masked).

    Returns:
        The profile, with the columns of :data:`PROFILE_COLUMNS`.

    Examples:
        ```py
        profile = profile_sources(con, {"crm_contacts": {"email": "email_address"}}, 10)
        profile[["source_system", "field", "completeness", "validity", "top_values"]]
        ```
    """
    records = []
    for source_system, fields in sources.items():
        for rates in field_rates(con, source_system, fields):
            top = masked_top_values(con, source_system, rates.field, rates.column, top_values)
            records.append(
                {
                    "source_system": source_system,
                    "field": rates.field,
                    "source_column": rates.column,
                    "rows": rates.rows,
                    "present": rates.present,
                    "invalid": rates.invalid,
                    "completeness": rates.completeness,
                    "validity": rates.valid_rate,
                    "distinct_values": rates.distinct,
                    "top_values": _format_top(top),
                }
            )
        logger.info("profiled %d field(s) of source %s", len(fields), source_system)
    columns = [c for c in PROFILE_COLUMNS if c != "profiled_at"]
    profile = pd.DataFrame.from_records(records, columns=columns)
    _write_profile(con, profile)
    return profile


def rates_from_profile(profile: pd.DataFrame, source_system: str) -> list[FieldRates]:
    """The :class:`FieldRates` of one source, read back from a profile (no table scan).

    Examples:
        ```py
        profile = profile_sources(con, sources, top_values=10)
        evaluate_quality_rules(rates_from_profile(profile, "crm_contacts"), rules)
        ```
    """
    rows = profile[profile["source_system"] == source_system]
    return [
        FieldRates(
            source_system=source_system,
            field=str(row.field),
            column=str(row.source_column),
            rows=int(row.rows),
            present=int(row.present),
            invalid=int(row.invalid),
            distinct=int(row.distinct_values),
        )
        for row in rows.itertuples()
    ]


def _write_profile(con: duckdb.DuckDBPyConnection, profile: pd.DataFrame) -> None:
    typed = ", ".join(f"{quote(c)} {t}" for c, t in PROFILE_COLUMNS.items())
    con.execute(f"CREATE OR REPLACE TABLE {quote(DATA_QUALITY_PROFILE)} ({typed})")
    if profile.empty:
        return
    con.register("__meld_profile", profile)
    try:
        names = ", ".join(quote(c) for c in profile.columns)
        con.execute(
            f"INSERT INTO {quote(DATA_QUALITY_PROFILE)} ({names}, profiled_at) "
            f"SELECT {names}, now()::TIMESTAMP FROM __meld_profile"
        )
    finally:
        con.unregister("__meld_profile")
