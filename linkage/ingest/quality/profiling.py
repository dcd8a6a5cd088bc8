"""The data-quality profile: per source and mapped field, completeness, validity, distinct
values and the most frequent values (masked), written to ``data_quality_profile``.

Examples:
    ```py
    profile = profile_sources(con, {"crm_contacts": {"email": "email_address"}}, top_values=5)
    rates = rates_from_profile(profile, "crm_contacts")
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import duckdb
import pandas as pd

from linkage.atomic import transaction
from linkage.ingest.quality.masking import SHAPE_FIELDS, mask_value
from linkage.ingest.quality.rules import FieldRates, field_rates, kept_rows_sql
from linkage.tables import DATA_QUALITY_PROFILE
from linkage.warehouse import quote

__all__ = ["PROFILE_COLUMNS", "masked_top_values", "profile_sources", "rates_from_profile"]

logger = logging.getLogger(__name__)

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


_SQL_SHAPE = (
    "regexp_replace(regexp_replace(regexp_replace(value, '[0-9]', '9', 'g'), "
    "'[A-Z]', 'X', 'g'), '[a-z]', 'x', 'g')"
)


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
        f"FROM ({kept_rows_sql(con, source_system, column)}) "
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
    create = f"CREATE OR REPLACE TABLE {quote(DATA_QUALITY_PROFILE)} ({typed})"
    if profile.empty:
        con.execute(create)
        return
    con.register("__meld_profile", profile)
    try:
        names = ", ".join(quote(c) for c in profile.columns)
        with transaction(con):  # never an empty profile in place of the last one
            con.execute(create)
            con.execute(
                f"INSERT INTO {quote(DATA_QUALITY_PROFILE)} ({names}, profiled_at) "
                f"SELECT {names}, now()::TIMESTAMP FROM __meld_profile"
            )
    finally:
        con.unregister("__meld_profile")
