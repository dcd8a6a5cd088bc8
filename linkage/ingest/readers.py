"""Read one delivery of a source (a file, or a table or query in a database) as text.

Every reader returns a :class:`Delivery`: an Arrow table whose columns are all
strings, plus, for each row, where it was in the delivery (row number, and the line
the record starts on for text files) and any problem that stops the row being read
faithfully:

- ``malformed_row``: a CSV row with the wrong number of fields, or a JSON Lines line
  that is not a JSON object. Its raw text is kept in ``load_problem_detail``.
- ``undecodable_bytes``: bytes that are not valid in the declared encoding (or NUL
  bytes). The field names where; the value keeps U+FFFD in their place.

A problem row is kept, not dropped, so staging can quarantine it with its reason.
CSV is parsed with Python's ``csv`` module (quoted multi-line fields, any delimiter,
sniffed when not given; a UTF-8 byte-order mark is removed). A plain file (UTF-8
without a byte-order mark or NUL bytes, one record per line, every row the width of
the header) is parsed by Arrow's CSV reader instead, which gives the same table several
times faster; any file Arrow might read differently is left to ``csv``.
Parquet and DuckDB files are read by DuckDB; other databases through SQLAlchemy, with
the URL taken from an environment variable so no password sits in the config.

Examples:
    ```py
    delivery = read_file(Path("landing/crm.csv"), source_system="crm")
    delivery.table.num_rows, delivery.problem_count
    ```
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from linkage.errors import MeldError
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

MALFORMED_ROW = "malformed_row"
UNDECODABLE_BYTES = "undecodable_bytes"
CSV_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt")
JSON_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet",)
SUPPORTED_SUFFIXES: tuple[str, ...] = CSV_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES
SNIFFED_DELIMITERS = ",;\t|"
MAX_FIELD_BYTES = 16 * 1024 * 1024
MAX_DETAIL_CHARS = 2000

_SURROGATES = re.compile("[\udc80-\udcff\x00]")
_NUL_OR_SURROGATE_ESCAPES = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_UTF8_BOM = b"\xef\xbb\xbf"
_JSON_DECODER = json.JSONDecoder()
_PYTHON_CODECS = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "windows-1252": "cp1252"}

csv.field_size_limit(MAX_FIELD_BYTES)


class SourceError(MeldError, ValueError):
    """A source cannot be loaded; the message names the source, file and column."""


@dataclass(frozen=True)
class DatabaseSpec:
    """A table or query in another database.

    Attributes:
        kind: ``duckdb`` (a DuckDB file at ``path``) or ``sqlalchemy`` (any database
            whose SQLAlchemy URL is in the environment variable ``url_env``).
        table: Table to read, optionally ``schema.table``.
        query: A SELECT to run instead of a table.
    """

    kind: str
    path: Path | None = None
    url_env: str | None = None
    table: str | None = None
    query: str | None = None

    def describe(self) -> str:
        """A name for lineage and messages that never includes credentials."""
        where = f"duckdb:{self.path}" if self.kind == "duckdb" else f"sqlalchemy:${self.url_env}"
        return f"{where}#{self.table}" if self.table else f"{where}#query"


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
    """

    table: pa.Table
    row_numbers: list[int]
    lines: list[int | None]
    problems: list[str | None]
    problem_fields: list[str | None]
    problem_details: list[str | None]

    @property
    def problem_count(self) -> int:
        """Rows that could not be read faithfully."""
        return sum(problem is not None for problem in self.problems)


class _Builder:
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
        if len(values) != len(self.columns):
            raise ValueError(f"expected {len(self.columns)} values, got {len(values)}")
        self.rows.append(tuple(values))  # a tuple of strings leaves the GC alone
        self.row_numbers.append(len(self.row_numbers) + 1)
        self.lines.append(line)
        self.problems.append(problem)
        self.fields.append(field)
        self.details.append(detail[:MAX_DETAIL_CHARS] if detail else detail)

    def add_malformed(self, line: int | None, detail: str) -> None:
        self.add([None] * len(self.columns), line, MALFORMED_ROW, None, detail)

    def build(self) -> Delivery:
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
    JSON) become JSON text, as :func:`_json_text` makes them.
    """
    if not {str, type(None)}.issuperset(map(type, values)):
        values = [_json_text(value) for value in values]
    array = pa.array(values, type=pa.string())
    return pc.if_else(pc.equal(array, ""), pa.scalar(None, pa.string()), array)


def _may_hold_undecodable(text: str) -> bool:
    """False when no character of ``text`` is NUL or an undecodable byte (a lone surrogate).

    Encoding to UTF-8 fails on any lone surrogate; that is three times faster than
    searching with ``_SURROGATES``, and a false alarm only costs the slower check per value.
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
    if _SURROGATES.search(value):
        return _SURROGATES.sub("\ufffd", value), True
    return value, False


def _decode(data: bytes, encoding: str, source_system: str) -> str:
    codec = _PYTHON_CODECS.get(encoding)
    if codec is None:
        raise SourceError(
            f"source '{source_system}': unsupported encoding '{encoding}'; "
            f"expected one of {sorted(_PYTHON_CODECS)}"
        )
    return data.decode(codec, errors="surrogateescape")


def _header(raw: list[str], source_system: str, path: Path) -> list[str]:
    columns = [
        _SURROGATES.sub("\ufffd", name.strip()) or f"column_{i + 1}" for i, name in enumerate(raw)
    ]
    seen: set[str] = set()
    repeated = sorted({c for c in columns if c in seen or seen.add(c)})
    if repeated:
        raise SourceError(
            f"source '{source_system}', file '{path}', line 1: repeated column name(s) "
            f"{repeated} in the header"
        )
    return columns


def _sniff_delimiter(text: str) -> str:
    sample = text[: 64 * 1024]
    try:
        return csv.Sniffer().sniff(sample, delimiters=SNIFFED_DELIMITERS).delimiter
    except csv.Error:
        return ","


def read_csv_text(text: str, *, source_system: str, path: Path, delimiter: str | None) -> Delivery:
    """Parse decoded CSV text (header on the first line) into a :class:`Delivery`."""
    delimiter = delimiter or _sniff_delimiter(text)
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise SourceError(f"source '{source_system}', file '{path}': file is empty") from None
    except csv.Error as exc:
        raise SourceError(
            f"source '{source_system}', file '{path}', line 1: cannot read the header: {exc}"
        ) from exc
    columns = _header(header, source_system, path)
    builder = _Builder(columns)
    width = len(columns)
    careful = _may_hold_undecodable(text)
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
                + _SURROGATES.sub("\ufffd", raw_text),
            )
            continue
        if careful and any(map(_SURROGATES.search, row)):
            _add_values(builder, columns, row, start)
        else:
            builder.add(row, start)
    return builder.build()


def _add_values(builder: _Builder, columns: list[str], row: list[str], line: int | None) -> None:
    values: list[str | None] = []
    bad: list[str] = []
    for column, value in zip(columns, row, strict=True):
        cleaned, undecodable = _clean_value(value)
        values.append(cleaned)
        if undecodable:
            bad.append(column)
    if bad:
        builder.add(
            values,
            line,
            UNDECODABLE_BYTES,
            ",".join(bad),
            f"line {line}: bytes not valid in the declared encoding in column(s) {bad}; "
            "check the source's encoding setting",
        )
    else:
        builder.add(values, line)


def _json_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def _json_records(text: str) -> Iterator[tuple[int | None, object, str]]:
    """(line, parsed object or an exception, raw line) for JSON Lines or a JSON array."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as exc:
            yield exc.lineno, exc, text[:MAX_DETAIL_CHARS]
            return
        for item in items:
            yield None, item, ""
        return
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield number, _json_line(line), line
        except json.JSONDecodeError as exc:
            yield number, exc, line


def _json_line(line: str) -> object:
    """``json.loads(line)``, skipping its overhead for a line that is exactly one JSON value.

    The decoder's scanner is what ``json.loads`` runs after skipping whitespace; any line
    it does not read whole (whitespace around the value, extra data, an error) goes
    through ``json.loads``, so results and errors are the same.
    """
    try:
        value, end = _JSON_DECODER.scan_once(line, 0)
    except (StopIteration, json.JSONDecodeError):
        return json.loads(line)
    return value if end == len(line) else json.loads(line)


def read_json_text(text: str, *, source_system: str, path: Path) -> Delivery:
    """Parse JSON Lines (or a JSON array of objects) into a :class:`Delivery`.

    Columns are the union of keys in first-seen order; nested values become JSON text.
    """
    # Three lists rather than a tuple per record: a million tuples holding dicts would
    # stay tracked by the garbage collector, which would scan them again and again.
    lines: list[int | None] = []
    items: list[object] = []
    raw_lines: list[str] = []
    for line, item, raw_line in _json_records(text):
        lines.append(line)
        items.append(item)
        raw_lines.append(raw_line)
    columns: dict[str, None] = {}
    shapes: set[tuple] = set()  # the keys of most records come in a few orders
    for item in items:
        if isinstance(item, dict):
            shape = tuple(item)
            if shape not in shapes:
                shapes.add(shape)
                columns.update(dict.fromkeys(str(key) for key in shape))
    if not items:
        raise SourceError(f"source '{source_system}', file '{path}': file has no records")
    names = [_SURROGATES.sub("\ufffd", name) for name in columns]
    builder = _Builder(names)
    # An escape (\u0000, \udc80) can put NUL or a lone surrogate in a value, too.
    careful = _may_hold_undecodable(text) or (
        "\\u" in text and _NUL_OR_SURROGATE_ESCAPES.search(text) is not None
    )
    for line, item, raw_line in zip(lines, items, raw_lines, strict=True):
        if not isinstance(item, dict):
            reason = item if isinstance(item, Exception) else "not a JSON object"
            builder.add_malformed(
                line, f"line {line}: {reason}: {_SURROGATES.sub(chr(0xFFFD), raw_line)}"
            )
            continue
        row = tuple(map(item.get, columns))
        if careful:
            text_row = [_json_text(value) or "" for value in row]
            if any(map(_SURROGATES.search, text_row)):
                _add_values(builder, names, text_row, line)
                continue
        builder.add(row, line)
    del items, raw_lines  # the parsed records, no longer needed while the columns are built
    return builder.build()


def _all_text(table: pa.Table) -> pa.Table:
    return pa.table({name: table.column(name).cast(pa.string()) for name in table.column_names})


def read_parquet(path: Path, *, source_system: str) -> Delivery:
    """Read a Parquet file with DuckDB, every column cast to text."""
    con = duckdb.connect()
    try:
        table = con.sql(
            "SELECT COLUMNS(*)::VARCHAR FROM read_parquet($path)", params={"path": str(path)}
        ).to_arrow_table()
    except duckdb.Error as exc:
        raise SourceError(f"source '{source_system}', file '{path}': cannot read: {exc}") from exc
    finally:
        con.close()
    return _from_table(_all_text(table))


def _from_table(table: pa.Table) -> Delivery:
    rows = table.num_rows
    none: list[str | None] = [None] * rows
    return Delivery(table, list(range(1, rows + 1)), [None] * rows, none, none, none)


def read_file(
    path: Path, *, source_system: str, delimiter: str | None = None, encoding: str = "utf-8"
) -> Delivery:
    """Read one delivered file by its extension.

    Raises:
        SourceError: Unsupported type, empty file, unreadable header or Parquet.
    """
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise SourceError(
            f"source '{source_system}', file '{path}': unsupported file type "
            f"'{path.suffix}'; expected one of {list(SUPPORTED_SUFFIXES)}"
        )
    if path.stat().st_size == 0:
        raise SourceError(f"source '{source_system}', file '{path}': file is empty")
    if suffix in PARQUET_SUFFIXES:
        return read_parquet(path, source_system=source_system)
    data = path.read_bytes()
    if suffix in JSON_SUFFIXES:
        text = _decode(data, encoding, source_system)
        return read_json_text(text, source_system=source_system, path=path)
    if suffix == ".tsv" and delimiter is None:
        delimiter = "\t"
    if encoding == "utf-8":
        delivery = read_plain_csv(data, source_system=source_system, path=path, delimiter=delimiter)
        if delivery is not None:
            return delivery
    text = _decode(data, encoding, source_system)
    return read_csv_text(text, source_system=source_system, path=path, delimiter=delimiter)


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
    Then row *n* is line *n + 1* and the values are the ones :func:`read_csv_text` reads;
    otherwise the caller reads the file with :func:`read_csv_text`, which handles every
    case (and reports malformed rows and undecodable bytes).

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
    delimiter = delimiter or _sniff_delimiter(text)
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
    """The header's column names when it is one line that :func:`_header` accepts."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        header = next(reader)
        columns = _header(header, source_system, path)
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


def _qualified(name: str) -> str:
    return ".".join(quote(part) for part in name.split("."))


def read_database(spec: DatabaseSpec, *, source_system: str) -> Delivery:
    """Read a table or query from a DuckDB file or a SQLAlchemy URL (from the environment).

    A DuckDB file is opened read-only, so a query cannot change it.

    Raises:
        SourceError: The file or environment variable is missing, or the read fails.
    """
    where = spec.describe()
    if spec.kind == "duckdb":
        if spec.path is None or not spec.path.is_file():
            raise SourceError(f"source '{source_system}': no DuckDB file at '{spec.path}'")
        sql = spec.query or f"SELECT * FROM {_qualified(spec.table or '')}"
        try:
            with duckdb.connect(str(spec.path), read_only=True) as con:
                table = con.sql(f"SELECT COLUMNS(*)::VARCHAR FROM ({sql})").to_arrow_table()
        except duckdb.Error as exc:
            raise SourceError(f"source '{source_system}', {where}: cannot read: {exc}") from exc
        return _from_table(table)
    return _from_table(_read_sqlalchemy(spec, source_system=source_system))


def _read_sqlalchemy(spec: DatabaseSpec, *, source_system: str) -> pa.Table:
    import pandas as pd
    import sqlalchemy

    url = os.environ.get(spec.url_env or "", "")
    if not url:
        raise SourceError(
            f"source '{source_system}': environment variable {spec.url_env} with the "
            "database URL is not set"
        )
    try:
        engine = sqlalchemy.create_engine(url)
    except Exception as exc:  # noqa: BLE001 - any driver error; the URL is not echoed
        raise SourceError(
            f"source '{source_system}': the URL in {spec.url_env} is not usable: "
            f"{type(exc).__name__}"
        ) from None
    try:
        with engine.connect() as connection:
            if spec.table:
                schema, _, name = spec.table.rpartition(".")
                table = sqlalchemy.Table(
                    name, sqlalchemy.MetaData(), schema=schema or None, autoload_with=connection
                )
                frame = pd.read_sql(sqlalchemy.select(table), connection)
            else:
                frame = pd.read_sql(sqlalchemy.text(spec.query or ""), connection)
    except Exception as exc:  # noqa: BLE001 - add the source to any driver error
        raise SourceError(
            f"source '{source_system}', {spec.describe()}: cannot read: "
            f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
        ) from None
    finally:
        engine.dispose()
    text = frame.astype(object).where(frame.notna(), None)
    return pa.table(
        {
            str(column): pa.array(
                [None if v is None else str(v) for v in text[column]], type=pa.string()
            )
            for column in text.columns
        }
    )
