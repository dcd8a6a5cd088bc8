"""The types a typed source (Parquet, a DuckDB file) may give the columns Meld maps.

Every column is read as text, but not every type reads back as the value it held: a
floating-point phone number becomes ``'46701234567.0'``, a list or struct becomes its
printed form, binary becomes escapes. The id column and every mapped column must hold
text, integers, dates (or timestamps) or booleans; anything else is refused with the
source, file, column, config key and type. Columns Meld does not map may be of any type.

Examples:
    >>> check_column_types({"phone": "DOUBLE"}, {"fields.phone": "phone"},
    ...                    where="source 'pos', file 'pos.parquet'")
    Traceback (most recent call last):
    ...
    linkage.ingest.readers.delivery.SourceError: source 'pos', file 'pos.parquet': column 'phone' (config key fields.phone) is DOUBLE: floating-point numbers read back with a '.0' or an exponent; store the column as text (or an integer)
"""  # noqa: E501

from __future__ import annotations

import re
from collections.abc import Mapping

from linkage.ingest.readers.delivery import SourceError

__all__ = ["column_type_problem", "check_column_types"]

_TEXT = frozenset({"VARCHAR", "UUID", "BOOLEAN", "DATE"})
_INTEGER = re.compile(r"^U?(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT)$")
_TIMESTAMP = re.compile(r"^TIMESTAMP(_S|_MS|_NS)?( WITH TIME ZONE)?$")
_DECIMAL = re.compile(r"^DECIMAL\(\d+,\s*(\d+)\)$")
_NESTED = re.compile(r"^(STRUCT|MAP|UNION)\(|\]$")
MAX_TYPE_CHARS = 40


def column_type_problem(type_name: str) -> str | None:
    """Why a column of this DuckDB type cannot be mapped, or None when it can.

    Examples:
        >>> column_type_problem("BIGINT") is None, column_type_problem("DECIMAL(10,0)") is None
        (True, True)
        >>> column_type_problem("VARCHAR[]")
        'lists, structs and maps are not values Meld can compare; flatten the column'
    """
    name = type_name.upper()
    if name in _TEXT or name.startswith("ENUM(") or _INTEGER.match(name):
        return None
    if _TIMESTAMP.match(name):
        return None
    decimal = _DECIMAL.match(name)
    if decimal and int(decimal[1]) == 0:
        return None
    if name in {"FLOAT", "DOUBLE", "REAL"} or decimal:
        return (
            "floating-point numbers read back with a '.0' or an exponent; store the column "
            "as text (or an integer)"
        )
    if _NESTED.search(name):
        return "lists, structs and maps are not values Meld can compare; flatten the column"
    if name in {"BLOB", "BIT"}:
        return "binary data is not text; store the column as text"
    return "expected text, an integer or a date"


def check_column_types(
    source_types: Mapping[str, str], columns: Mapping[str, str], *, where: str
) -> None:
    """Refuse a mapped column whose type in the source does not read back as its value.

    Args:
        source_types: Column name to its DuckDB type (``Delivery.source_types``); empty
            for text files, which are not checked.
        columns: Config key (``id_column``, ``fields.phone``, ...) to the column it maps.
        where: The source and file, for the message.

    Raises:
        SourceError: Naming the source, file, column, config key and type.
    """
    for key, column in columns.items():
        type_name = source_types.get(column)
        if type_name is None:
            continue
        problem = column_type_problem(type_name)
        if problem is not None:
            shown = type_name if len(type_name) <= MAX_TYPE_CHARS else type_name[:37] + "..."
            raise SourceError(
                f"{where}: column '{column}' (config key {key}) is {shown}: {problem}"
            )
