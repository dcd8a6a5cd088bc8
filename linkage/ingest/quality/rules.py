"""Data quality of each delivery: field rates against their quality rules.

Everything here reads the tables staging leaves behind (``raw_<source>``,
``quarantine_<source>``, ``quality_issues_<source>``). The profile over every source is
in :mod:`linkage.ingest.quality.profiling`, the row counts of staging runs in
:mod:`linkage.ingest.quality.staging_runs`, and the masking of values shown to people in
:mod:`linkage.ingest.quality.masking`.

Examples:
    ```py
    rates = field_rates(con, "crm_contacts", {"email": "email_address"})
    outcomes = evaluate_quality_rules(rates, {"email": FieldQualityRule(min_valid_rate=0.9)})
    [o for o in outcomes if not o.passed]
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import duckdb

from linkage.errors import MeldError
from linkage.tables import quality_issues_table, quarantine_table, raw_table, staged_table
from linkage.warehouse import quote, table_columns, table_exists

__all__ = [
    "DataQualityError",
    "FieldRates",
    "QualityRule",
    "RuleOutcome",
    "evaluate_quality_rules",
    "field_rates",
    "kept_rows_sql",
]

logger = logging.getLogger(__name__)


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


def _require(con: duckdb.DuckDBPyConnection, source_system: str) -> None:
    for table in (raw_table(source_system), *_staging_tables(source_system)):
        if not table_exists(con, table):
            raise DataQualityError(
                f"source '{source_system}': table '{table}' not found in the warehouse; "
                f"materialize {staged_table(source_system)} first"
            )


def _staging_tables(source_system: str) -> tuple[str, str]:
    return quarantine_table(source_system), quality_issues_table(source_system)


def _row_key(con: duckdb.DuckDBPyConnection, table: str, left: str, right: str) -> str:
    """Join condition on a raw row: its row number, and its file when ``table`` has one
    (row numbers restart in each file of a multi-file delivery)."""
    condition = f"{left}.source_row_number = {right}.source_row_number"
    if "source_file" in table_columns(con, table):
        condition += f" AND {left}.source_file IS NOT DISTINCT FROM {right}.source_file"
    return condition


def kept_rows_sql(con: duckdb.DuckDBPyConnection, source_system: str, column: str) -> str:
    """The trimmed raw value of ``column`` for every row that was not quarantined."""
    quarantine, _ = _staging_tables(source_system)
    return (
        "SELECT raw.source_row_number, raw.source_file, "
        f"nullif(trim(raw.{quote(column)}), '') AS value "
        f"FROM {quote(raw_table(source_system))} AS raw "
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
    raw_columns = set(table_columns(con, raw_table(source_system)))
    _, issues = _staging_tables(source_system)
    file_key = ", source_file" if "source_file" in table_columns(con, issues) else ""
    results = []
    for field, column in fields.items():
        if column not in raw_columns:
            raise DataQualityError(
                f"source '{source_system}', field '{field}': column '{column}' not found "
                f"in {raw_table(source_system)}"
            )
        rows, present, invalid, distinct = con.execute(
            "SELECT count(*), count(k.value), count(k.value) FILTER (WHERE i.flagged), "
            f"count(DISTINCT k.value) FROM ({kept_rows_sql(con, source_system, column)}) AS k "
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
