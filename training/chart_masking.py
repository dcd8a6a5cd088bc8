"""Masked copies of the charts that show record values, for MLflow.

Splink's waterfall charts, comparison viewer and term-frequency charts show the values
they compare: names, e-mails, phones, record ids. The charts themselves stay beside the
warehouse (under the project's ``artifacts`` folder); what MLflow may get is decided by
``mlflow.record_level_artifacts``: ``masked`` (the default) logs a copy drawn from the
same data with every personal value masked by
:func:`linkage.ingest.quality.masking.mask_value` (``j***@g***.com``, ``A*** (4
chars)``) and every record id by its shape; ``none`` logs no such chart.

Examples:
    >>> masked_pair({"unique_id_l": "crm:C0042", "first_name_l": "anna", "gamma_email": 3,
    ...              "email_r": "anna.berg@example.se", "source_system_r": "crm"})
    {'unique_id_l': 'crm:X9999', 'first_name_l': 'a*** (4 chars)', 'gamma_email': 3, \
'email_r': 'a***@e***.se', 'source_system_r': 'crm'}
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from linkage.canonical import IDENTIFIER_FIELDS
from linkage.ingest.quality.masking import mask_value
from linkage.master.customer_view import mask_reference

__all__ = [
    "RECORD_LEVEL_POLICIES",
    "RecordLevelPolicy",
    "mask_record_ids",
    "mask_record_value",
    "masked_pair",
    "masked_pair_column",
    "masked_tf_chart_data",
]

RecordLevelPolicy = Literal["masked", "none"]
RECORD_LEVEL_POLICIES: tuple[str, ...] = ("masked", "none")
"""``mlflow.record_level_artifacts``: what MLflow gets of a chart showing record values."""

CLEAR_COLUMNS: frozenset[str] = frozenset({"source_system", "match_key", "link_veto"})
"""Columns holding Meld's own words (source names, rule numbers, veto names)."""

_KIND_BY_COLUMN: dict[str, str] = {
    "first_name_display": "first_name",
    "last_name_display": "last_name",
    "first_name_phonetic": "first_name",
    "last_name_phonetic": "last_name",
    "phone_national": "phone",
    "street_display": "street",
    "city_display": "city",
    **{field: "customer_number" for field in IDENTIFIER_FIELDS},
}
"""Record columns masked like another field; any other column is masked as itself."""

_SIDE = re.compile(r"^(?P<base>.+)_(?:l|r)$")
_SCORE_PREFIXES = ("gamma_", "bf_", "tf_", "mw_", "match_")


def mask_record_value(column: str, value: Any) -> Any:
    """A record column's value masked for a chart; numbers, flags and missing kept.

    ``unique_id`` keeps its source and shows the id's shape; columns of Meld's own words
    (:data:`CLEAR_COLUMNS`) stay; dates show their format.

    Examples:
        >>> mask_record_value("phone", "+46701234567")
        '+46*******67'
        >>> mask_record_value("date_of_birth", dt.date(1984, 3, 2))
        '9999-99-99'
        >>> mask_record_value("unique_id", "pos:6107965249778")
        'pos:9999999999999'
        >>> mask_record_value("phone_valid", True)
        True
    """
    if value is None or isinstance(value, bool | int | float) or column in CLEAR_COLUMNS:
        return value
    if isinstance(value, dt.date | dt.datetime):
        value = value.isoformat()
    text = str(value)
    if column == "unique_id":
        return mask_reference(text)
    return mask_value(_KIND_BY_COLUMN.get(column, column), text)


def masked_pair_column(key: str) -> str | None:
    """The record column whose value a scored pair's column ``key`` holds, when it is
    masked (``email_l`` -> ``email``); None for scores, levels, term frequencies and
    Meld's own words.

    Examples:
        >>> masked_pair_column("email_l"), masked_pair_column("gamma_email")
        ('email', None)
    """
    side = _SIDE.match(key)
    if side is None or key.startswith(_SCORE_PREFIXES) or side.group("base") in CLEAR_COLUMNS:
        return None
    return side.group("base")


def masked_pair(record: Mapping[str, Any]) -> dict[str, Any]:
    """A scored pair's row (``<column>_l`` / ``<column>_r`` and scores) with its record
    values masked and its scores, levels and term frequencies kept."""
    masked = {}
    for key, value in record.items():
        column = masked_pair_column(key)
        masked[key] = value if column is None else mask_record_value(column, value)
    return masked


def masked_tf_chart_data(
    rows: Iterable[Mapping[str, Any]], column: str, *, value_key: str = "value"
) -> list[dict[str, Any]]:
    """Rows of a term-frequency chart with each value masked and numbered by rank, so
    values that mask alike stay apart (``#1 p*** (5 chars)``).

    Examples:
        >>> masked_tf_chart_data([{"value": "peter", "log2_bf_tf": -0.9}], "first_name")
        [{'value': '#1 p*** (5 chars)', 'log2_bf_tf': -0.9}]
    """
    out = []
    for rank, row in enumerate(rows, start=1):
        row = dict(row)
        if row.get(value_key) is not None:
            row[value_key] = f"#{rank} {mask_record_value(column, row[value_key])}"
        out.append(row)
    return out


def mask_record_ids(text: str, sources: Iterable[str]) -> str:
    """Replace each record id ``<source>:<id>`` of the given sources in a page by its
    shape, for a copy that may leave the warehouse.

    Examples:
        >>> mask_record_ids("<td>crm:C0042</td><td>crm</td>", ["crm"])
        '<td>crm:X9999</td><td>crm</td>'
    """
    names = sorted({re.escape(s) for s in sources}, key=len, reverse=True)
    if not names:
        return text
    pattern = re.compile(rf"(?<![\w-])((?:{'|'.join(names)}):[^\s<>\"'&,;()\[\]]+)")
    return pattern.sub(lambda m: mask_reference(m.group(1)), text)
