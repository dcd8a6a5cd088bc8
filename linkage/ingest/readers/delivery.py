"""What every reader returns: a :class:`Delivery`, built row by row with a :class:`RowBuilder`.

A delivery is an Arrow table whose columns are all strings, plus, for each row, where it
was in the delivery (row number, and the line the record starts on for text files) and
any problem that stops the row being read faithfully:

- ``malformed_row``: a CSV row with the wrong number of fields, or a JSON Lines line
  that is not a JSON object. Its raw text is kept in ``load_problem_detail``.
- ``undecodable_bytes``: bytes that are not valid in the declared encoding (or NUL
  bytes). The field names where; the value keeps U+FFFD in their place.

A problem row is kept, not dropped, so staging can quarantine it with its reason.

Examples:
    >>> builder = RowBuilder(["id", "name"])
    >>> builder.add(["1", ""], line=2)
    >>> builder.add_malformed(3, "line 3: expected 2 fields, found 3: 2,Bo,x")
    >>> delivery = builder.build()
    >>> delivery.table.column("name").to_pylist(), delivery.problems
    ([None, None], [None, 'malformed_row'])
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as _field

import pyarrow as pa
import pyarrow.compute as pc

from linkage.errors import MeldError

__all__ = [
    "MALFORMED_ROW",
    "MAX_DETAIL_CHARS",
    "SURROGATES",
    "UNDECODABLE_BYTES",
    "Delivery",
    "RowBuilder",
    "SourceError",
    "json_text",
    "may_hold_undecodable",
]

MALFORMED_ROW = "malformed_row"
UNDECODABLE_BYTES = "undecodable_bytes"
MAX_DETAIL_CHARS = 2000

SURROGATES = re.compile("[\udc80-\udcff\x00]")
"""Undecodable bytes (decoded as lone surrogates) and NUL: replaced by U+FFFD and flagged."""


class SourceError(MeldError, ValueError):
    """A source cannot be loaded; the message names the source, file and column."""


@dataclass(frozen=True)
class Delivery:
    """One delivery as text columns, with each row's position and load problem.

    Attributes:
        table: The data, every column a string, in delivery order.
        row_numbers: 1-based row of each record in the delivery (header not counted).
        lines: Line of the file each record starts on, or None when not a text file.
        problems: ``None``, ``malformed_row`` or ``undecodable_bytes`` per row.
        problem_fields: The column at fault for an undecodable row.
        problem_details: What was wrong, with the raw text of a malformed row.
        source_types: Each column's type in a typed source (Parquet, a DuckDB file),
            before it was cast to text; empty for text files.
    """

    table: pa.Table
    row_numbers: list[int]
    lines: list[int | None]
    problems: list[str | None]
    problem_fields: list[str | None]
    problem_details: list[str | None]
    source_types: Mapping[str, str] = _field(default_factory=dict)

    @property
    def problem_count(self) -> int:
        """Rows that could not be read faithfully."""
        return sum(problem is not None for problem in self.problems)


class RowBuilder:
    """Accumulates rows, then builds string columns with their positions and problems.

    A row's values are kept as given until :meth:`build` makes the columns in bulk
    (see :func:`_text_array`): empty text becomes missing, JSON values become text.
    """

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.rows: list[tuple[object, ...]] = []
        self.row_numbers: list[int] = []
        self.lines: list[int | None] = []
        self.problems: list[str | None] = []
        self.fields: list[str | None] = []
        self.details: list[str | None] = []

    def add(
        self,
        values: Sequence[object],
        line: int | None,
        problem: str | None = None,
        field: str | None = None,
        detail: str | None = None,
    ) -> None:
        """Add one row, with its line and any problem."""
        if len(values) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} values, got {len(values)}")
        self.rows.append(tuple(values))  # a tuple of strings leaves the GC alone
        self.row_numbers.append(len(self.row_numbers) + 1)
        self.lines.append(line)
        self.problems.append(problem)
        self.fields.append(field)
        self.details.append(detail[:MAX_DETAIL_CHARS] if detail else detail)

    def add_malformed(self, line: int | None, detail: str) -> None:
        """Add a row that could not be split into values, with its raw text in ``detail``."""
        self.add([None] * len(self.columns), line, MALFORMED_ROW, None, detail)

    def add_decoded(self, row: list[str], line: int | None) -> None:
        """Add a row whose values may hold undecodable bytes or NUL: they become U+FFFD
        and the row is flagged ``undecodable_bytes`` with the columns at fault."""
        values: list[str | None] = []
        bad: list[str] = []
        for column, value in zip(self.columns, row, strict=True):
            cleaned, undecodable = _clean_value(value)
            values.append(cleaned)
            if undecodable:
                bad.append(column)
        if bad:
            self.add(
                values,
                line,
                UNDECODABLE_BYTES,
                ",".join(bad),
                f"line {line}: bytes not valid in the declared encoding in column(s) {bad}; "
                "check the source's encoding setting",
            )
        else:
            self.add(values, line)

    def build(self) -> Delivery:
        """The delivery of every row added."""
        if self.rows:
            columns: Iterator[Sequence[object]] = zip(*self.rows, strict=True)
        else:
            columns = iter([[] for _ in self.columns])
        table = pa.table(
            {name: _text_array(values) for name, values in zip(self.columns, columns, strict=True)}
        )
        return Delivery(
            table, self.row_numbers, self.lines, self.problems, self.fields, self.details
        )


def _text_array(values: Sequence[object]) -> pa.Array:
    """A string column in which empty text is missing, as :func:`_clean_value` makes it.

    Values other than text and None (numbers, booleans, lists and objects read from
    JSON) become JSON text, as :func:`json_text` makes them.
    """
    if not {str, type(None)}.issuperset(map(type, values)):
        values = [json_text(value) for value in values]
    array = pa.array(values, type=pa.string())
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def may_hold_undecodable(text: str) -> bool:
    """False when no character of ``text`` is NUL or an undecodable byte (a lone surrogate).

    Encoding to UTF-8 fails on any lone surrogate; that is three times faster than
    searching with ``SURROGATES``, and a false alarm only costs the slower check per value.
    """
    if "\x00" in text:
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _clean_value(value: str) -> tuple[str | None, bool]:
    """Empty text is missing; undecodable bytes and NUL become U+FFFD and are flagged."""
    if value == "":
        return None, False
    if SURROGATES.search(value):
        return SURROGATES.sub("\ufffd", value), True
    return value, False


def json_text(value: object) -> str | None:
    """A JSON value as text: strings as they are, anything else as JSON."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)
