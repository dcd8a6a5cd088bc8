"""The fast path for plain CSV files: Arrow's CSV reader, when it reads what ``csv`` reads.

A plain file (UTF-8 without a byte-order mark or NUL bytes, one record per line, every
row the width of the header) is parsed by Arrow's CSV reader, which gives the same table
as :func:`~linkage.ingest.readers.csv_text.read_csv_text` several times faster; any file
Arrow might read differently is left to the ``csv`` module.

Examples:
    >>> delivery = read_plain_csv(b"id,name\\n1,Anna\\n2,\\n", source_system="crm",
    ...                           path=Path("crm.csv"), delimiter=None)
    >>> delivery.table.column("name").to_pylist(), delivery.lines
    (['Anna', None], [2, 3])
    >>> read_plain_csv(b"id,name\\n1,Anna\\n\\n2,Bo\\n", source_system="crm",
    ...                path=Path("crm.csv"), delimiter=None) is None
    True
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from linkage.ingest.readers.csv_text import (
    MAX_FIELD_BYTES,
    SNIFFED_DELIMITERS,
    header_columns,
    sniff_delimiter,
)
from linkage.ingest.readers.delivery import Delivery, SourceError

__all__ = ["read_plain_csv"]

logger = logging.getLogger(__name__)

_UTF8_BOM = b"\xef\xbb\xbf"


def _line_count(data: bytes) -> int:
    """Lines as Python's universal newlines count them (``\\n``, ``\\r\\n`` or ``\\r``)."""
    if not data:
        return 0
    ends = data.count(b"\n") + data.count(b"\r") - data.count(b"\r\n")
    return ends + (0 if data.endswith((b"\n", b"\r")) else 1)


def read_plain_csv(
    data: bytes, *, source_system: str, path: Path, delimiter: str | None
) -> Delivery | None:
    """The fast path for a plain UTF-8 CSV file: Arrow parses it; None when it does not apply.

    It applies when the file is valid UTF-8 with no byte-order mark and no NUL byte, the
    delimiter is one of ``,;\\t|``, the header is one line with distinct names, Arrow reads
    every row with exactly the header's width, each record is one line (no blank lines,
    no line breaks inside quotes) and no field reaches the ``csv`` module's size limit.
    Then row *n* is line *n + 1* and the values are the ones
    :func:`~linkage.ingest.readers.csv_text.read_csv_text` reads; otherwise the caller
    reads the file with that function, which handles every case (and reports malformed
    rows and undecodable bytes).

    Examples:
        ```py
        delivery = read_plain_csv(Path("crm.csv").read_bytes(), source_system="crm",
                                  path=Path("crm.csv"), delimiter=None)
        ```
    """
    table, why = _plain_csv_table(data, source_system=source_system, path=path, delimiter=delimiter)
    if table is None:
        logger.debug("source %s, file %s: read with the csv module: %s", source_system, path, why)
        return None
    rows = table.num_rows
    none: list[str | None] = [None] * rows
    return Delivery(table, list(range(1, rows + 1)), list(range(2, rows + 2)), none, none, none)


def _plain_csv_table(
    data: bytes, *, source_system: str, path: Path, delimiter: str | None
) -> tuple[pa.Table | None, str]:
    """Arrow's table of a plain CSV file, or None and what makes the file not plain."""
    if data.startswith(_UTF8_BOM):
        return None, "byte-order mark"
    if b"\x00" in data:
        return None, "NUL bytes"
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, "not valid UTF-8"
    delimiter = delimiter or sniff_delimiter(text)
    if len(delimiter) != 1 or delimiter not in SNIFFED_DELIMITERS:
        return None, f"delimiter {delimiter!r}"
    columns = _plain_header(text, delimiter, source_system, path)
    del text
    if columns is None:
        return None, "the header is not one line of distinct names"
    table = _arrow_csv(data, columns, delimiter)
    if table is None:
        return None, "a row Arrow cannot read with the header's width"
    records = _line_count(data) - 1
    if table.num_rows != records:
        return None, f"{table.num_rows} records on {records} lines (blank lines or line breaks)"
    for name in columns:
        longest = pc.max(pc.utf8_length(table.column(name))).as_py()
        if longest is not None and longest >= MAX_FIELD_BYTES:
            return None, f"a field of {longest} characters in column '{name}'"
    return table, ""


def _plain_header(text: str, delimiter: str, source_system: str, path: Path) -> list[str] | None:
    """The header's column names when it is one line that
    :func:`~linkage.ingest.readers.csv_text.header_columns` accepts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        columns = header_columns(header, source_system, path)
    except (StopIteration, csv.Error, SourceError):
        return None
    return columns if columns and reader.line_num == 1 else None


def _arrow_csv(data: bytes, columns: list[str], delimiter: str) -> pa.Table | None:
    """Every column as text, empty text missing, as ``csv.reader`` with these settings."""
    try:
        return pa_csv.read_csv(
            pa.py_buffer(data),
            read_options=pa_csv.ReadOptions(column_names=columns, skip_rows=1),
            parse_options=pa_csv.ParseOptions(
                delimiter=delimiter,
                quote_char='"',
                double_quote=True,
                escape_char=False,
                newlines_in_values=True,
                ignore_empty_lines=True,
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(columns, pa.string()),
                null_values=[""],
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
    except pa.ArrowInvalid:
        return None
