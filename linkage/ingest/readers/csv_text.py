"""CSV text read with Python's ``csv`` module: the reader that handles every CSV file.

Quoted multi-line fields, any delimiter (sniffed when not given), rows of the wrong width
(kept as ``malformed_row``) and undecodable bytes (kept as ``undecodable_bytes``). The
text is already decoded; a UTF-8 byte-order mark was removed by the decoder.

Examples:
    >>> delivery = read_csv_text("id,name\\n1,Anna\\n2\\n", source_system="crm",
    ...                          path=Path("crm.csv"), delimiter=",")
    >>> delivery.table.column("name").to_pylist(), delivery.problems
    (['Anna', None], [None, 'malformed_row'])
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from linkage.ingest.readers.delivery import (
    SURROGATES,
    Delivery,
    RowBuilder,
    SourceError,
    may_hold_undecodable,
)

__all__ = [
    "MAX_FIELD_BYTES",
    "SNIFFED_DELIMITERS",
    "header_columns",
    "read_csv_text",
    "sniff_delimiter",
]

SNIFFED_DELIMITERS = ",;\t|"
MAX_FIELD_BYTES = 16 * 1024 * 1024

csv.field_size_limit(MAX_FIELD_BYTES)


def header_columns(raw: list[str], source_system: str, path: Path) -> list[str]:
    """Column names from a header row: trimmed, blank ones named ``column_<n>``.

    Raises:
        SourceError: A name is repeated.
    """
    columns = [
        SURROGATES.sub("\ufffd", name.strip()) or f"column_{i + 1}" for i, name in enumerate(raw)
    ]
    first: dict[str, int] = {}
    repeated = [
        f"{first[c]} and {i}" for i, c in enumerate(columns, start=1) if first.setdefault(c, i) != i
    ]
    if repeated:
        # Positions, not names: without its header row, line 1 is a record.
        raise SourceError(
            f"source '{source_system}', file '{path}', line 1: the header repeats a column "
            f"name (fields {'; '.join(repeated[:5])}): rename them, or add the header row "
            "if the file lacks one"
        )
    return columns


def sniff_delimiter(text: str) -> str:
    """The delimiter of CSV text, one of :data:`SNIFFED_DELIMITERS`; a comma when unsure."""
    sample = text[: 64 * 1024]
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFFED_DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_csv_text(text: str, *, source_system: str, path: Path, delimiter: str | None) -> Delivery:
    """Parse decoded CSV text (header on the first line) into a :class:`Delivery`."""
    delimiter = delimiter or sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise SourceError(f"source '{source_system}', file '{path}': file is empty") from None
    except csv.Error as exc:
        raise SourceError(
            f"source '{source_system}', file '{path}', line 1: cannot read the header: {exc}"
        ) from exc
    columns = header_columns(header, source_system, path)
    builder = RowBuilder(columns)
    width = len(columns)
    careful = may_hold_undecodable(text)
    previous_line = reader.line_num
    rows = iter(reader)
    while True:
        start = previous_line + 1
        try:
            row = next(rows)
        except StopIteration:
            break
        except csv.Error as exc:
            builder.add_malformed(start, f"line {start}: {exc}")
            previous_line = reader.line_num
            continue
        previous_line = reader.line_num
        if not row or (len(row) == 1 and row[0] == "" and width > 1):
            continue  # a blank line is not a record
        if len(row) != width:
            raw_text = delimiter.join(row)
            builder.add_malformed(
                start,
                f"line {start}: expected {width} fields, found {len(row)}: "
                + SURROGATES.sub("\ufffd", raw_text),
            )
            continue
        if careful and any(map(SURROGATES.search, row)):
            builder.add_decoded(row, start)
        else:
            builder.add(row, start)
    return builder.build()
