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
sniffed when not given; a UTF-8 byte-order mark is removed); Parquet and DuckDB files
are read by DuckDB; other databases through SQLAlchemy, with the URL taken from an
environment variable so no password sits in the config.

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
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

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
_PYTHON_CODECS = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "windows-1252": "cp1252"}

csv.field_size_limit(MAX_FIELD_BYTES)


class SourceError(ValueError):
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
    """Accumulates rows into string columns with their positions and problems."""

    def __init__(self, columns: list[str]) -> None:
        self.columns = columns
        self.values: list[list[str | None]] = [[] for _ in columns]
        self.row_numbers: list[int] = []
        self.lines: list[int | None] = []
        self.problems: list[str | None] = []
        self.fields: list[str | None] = []
        self.details: list[str | None] = []

    def add(
        self,
        values: Iterable[str | None],
        line: int | None,
        problem: str | None = None,
        field: str | None = None,
        detail: str | None = None,
    ) -> None:
        for column, value in zip(self.values, values, strict=True):
            column.append(value)
        self.row_numbers.append(len(self.row_numbers) + 1)
        self.lines.append(line)
        self.problems.append(problem)
        self.fields.append(field)
        self.details.append(detail[:MAX_DETAIL_CHARS] if detail else detail)

    def add_malformed(self, line: int | None, detail: str) -> None:
        self.add([None] * len(self.columns), line, MALFORMED_ROW, None, detail)

    def build(self) -> Delivery:
        table = pa.table(
            {
                name: pa.array(values, type=pa.string())
                for name, values in zip(self.columns, self.values, strict=True)
            }
        )
        return Delivery(
            table, self.row_numbers, self.lines, self.problems, self.fields, self.details
        )


def _clean_value(value: str) -> tuple[str | None, bool]:
    """Empty text is missing; undecodable bytes and NUL become U+FFFD and are flagged."""
    if value == "":
        return None, False
    if _SURROGATES.search(value):
        return _SURROGATES.sub("\ufffd", value), True
    return value, False


def _decode(path: Path, encoding: str, source_system: str) -> str:
    codec = _PYTHON_CODECS.get(encoding)
    if codec is None:
        raise SourceError(
            f"source '{source_system}': unsupported encoding '{encoding}'; "
            f"expected one of {sorted(_PYTHON_CODECS)}"
        )
    return path.read_bytes().decode(codec, errors="surrogateescape")


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
        _add_values(builder, columns, row, start)
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
            yield number, json.loads(line), line
        except json.JSONDecodeError as exc:
            yield number, exc, line


def read_json_text(text: str, *, source_system: str, path: Path) -> Delivery:
    """Parse JSON Lines (or a JSON array of objects) into a :class:`Delivery`.

    Columns are the union of keys in first-seen order; nested values become JSON text.
    """
    parsed = list(_json_records(text))
    columns: dict[str, None] = {}
    for _, item, _ in parsed:
        if isinstance(item, dict):
            columns.update(dict.fromkeys(str(key) for key in item))
    if not parsed:
        raise SourceError(f"source '{source_system}', file '{path}': file has no records")
    names = [_SURROGATES.sub("\ufffd", name) for name in columns]
    builder = _Builder(names)
    for line, item, raw_line in parsed:
        if not isinstance(item, dict):
            reason = item if isinstance(item, Exception) else "not a JSON object"
            builder.add_malformed(
                line, f"line {line}: {reason}: {_SURROGATES.sub(chr(0xFFFD), raw_line)}"
            )
            continue
        row = [_json_text(item.get(key)) for key in columns]
        _add_values(builder, names, [v if v is not None else "" for v in row], line)
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
    text = _decode(path, encoding, source_system)
    if suffix in JSON_SUFFIXES:
        return read_json_text(text, source_system=source_system, path=path)
    if suffix == ".tsv" and delimiter is None:
        delimiter = "\t"
    return read_csv_text(text, source_system=source_system, path=path, delimiter=delimiter)


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
