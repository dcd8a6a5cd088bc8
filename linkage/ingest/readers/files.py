"""Read one delivered file as text, by its extension.

CSV is parsed with Python's ``csv`` module (:mod:`~linkage.ingest.readers.csv_text`),
except a plain UTF-8 file, which Arrow reads faster with the same result
(:mod:`~linkage.ingest.readers.plain_csv`); JSON Lines and JSON arrays by
:mod:`~linkage.ingest.readers.json_text`; Parquet by DuckDB
(:mod:`~linkage.ingest.readers.database`).

Examples:
    ```py
    delivery = read_file(Path("landing/crm.csv"), source_system="crm")
    delivery.table.num_rows, delivery.problem_count
    ```
"""

from __future__ import annotations

import codecs
from pathlib import Path

from linkage.ingest.readers.csv_text import read_csv_text
from linkage.ingest.readers.database import read_parquet
from linkage.ingest.readers.delivery import Delivery, SourceError
from linkage.ingest.readers.json_text import read_json_text
from linkage.ingest.readers.plain_csv import read_plain_csv
from linkage.ingest.readers.sniff import (
    PARQUET,
    SAMPLE_BYTES,
    check_parquet_head,
    sniff_text,
)

__all__ = [
    "CSV_SUFFIXES",
    "FORMAT_SUFFIXES",
    "JSON_SUFFIXES",
    "PARQUET_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "data_suffix",
    "read_file",
]

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt")
JSON_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet",)
GZIP_SUFFIX = ".gz"
FORMAT_SUFFIXES: tuple[str, ...] = CSV_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES
"""The suffixes that say how a file is read (see :func:`data_suffix`)."""
SUPPORTED_SUFFIXES: tuple[str, ...] = FORMAT_SUFFIXES + (GZIP_SUFFIX,)
"""File name endings a source may deliver; ``.gz`` after a CSV or JSON one."""


def data_suffix(path: Path) -> str:
    """The suffix that says how a file is read: ``.csv`` for ``crm.csv.gz``, too.

    Examples:
        >>> data_suffix(Path("crm.CSV")), data_suffix(Path("crm.jsonl.gz"))
        ('.csv', '.jsonl')
    """
    suffix = path.suffix.lower()
    return Path(path.stem).suffix.lower() if suffix == GZIP_SUFFIX else suffix


def _python_codec(encoding: str, source_system: str) -> str:
    """The codec to decode with: UTF-8 drops a byte-order mark (``utf-8-sig``)."""
    try:
        name = codecs.lookup(encoding).name
    except (LookupError, ValueError):
        raise SourceError(
            f"source '{source_system}': unknown encoding '{encoding[:40]}'; give a name "
            "Python's codecs know, e.g. 'utf-8', 'windows-1252', 'iso-8859-15'"
        ) from None
    return "utf-8-sig" if name == "utf-8" else name


def _decode(data: bytes, encoding: str, source_system: str) -> str:
    codec = _python_codec(encoding, source_system)
    try:
        return data.decode(codec, errors="surrogateescape")
    except (UnicodeError, LookupError) as exc:
        raise SourceError(
            f"source '{source_system}': cannot decode the file as {codec} "
            f"({type(exc).__name__}); check the source's encoding"
        ) from None


def _is_utf8(encoding: str) -> bool:
    try:
        return codecs.lookup(encoding).name == "utf-8"
    except (LookupError, ValueError):
        return False


def _read_parquet_file(path: Path, source_system: str) -> Delivery:
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    check_parquet_head(head, source_system=source_system, path=path)
    return read_parquet(path, source_system=source_system)


def read_file(
    path: Path, *, source_system: str, delimiter: str | None = None, encoding: str = "utf-8"
) -> Delivery:
    """Read one delivered file by its extension, after checking what it holds.

    Raises:
        SourceError: Unsupported type, empty file, a workbook, archive or other binary
            content, an unreadable header or Parquet.
    """
    suffix = data_suffix(path)
    if suffix not in FORMAT_SUFFIXES:
        found = suffix + GZIP_SUFFIX if path.suffix.lower() == GZIP_SUFFIX else path.suffix
        raise SourceError(
            f"source '{source_system}', file '{path}': unsupported file type "
            f"'{found}'; expected one of {list(FORMAT_SUFFIXES)}, "
            "optionally gzip-compressed ('.csv.gz')"
        )
    if path.stat().st_size == 0:
        raise SourceError(f"source '{source_system}', file '{path}': file is empty")
    if suffix in PARQUET_SUFFIXES:
        if path.suffix.lower() == GZIP_SUFFIX:
            raise SourceError(
                f"source '{source_system}', file '{path}': gzip-compressed Parquet is not "
                "read; Parquet compresses itself, deliver the .parquet file as it is"
            )
        return _read_parquet_file(path, source_system)
    content = sniff_text(
        path.read_bytes(),
        source_system=source_system,
        path=path,
        encoding=encoding,
        expected="JSON" if suffix in JSON_SUFFIXES else "CSV",
    )
    if content.kind == PARQUET:
        return read_parquet(path, source_system=source_system)
    data, encoding = content.data, content.encoding
    if not data:
        raise SourceError(f"source '{source_system}', file '{path}': file is empty")
    if suffix in JSON_SUFFIXES:
        text = _decode(data, encoding, source_system)
        return read_json_text(text, source_system=source_system, path=path)
    if suffix == ".tsv" and delimiter is None:
        delimiter = "\t"
    if _is_utf8(encoding):
        delivery = read_plain_csv(data, source_system=source_system, path=path, delimiter=delimiter)
        if delivery is not None:
            return delivery
    text = _decode(data, encoding, source_system)
    return read_csv_text(text, source_system=source_system, path=path, delimiter=delimiter)
