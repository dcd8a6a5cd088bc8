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

from pathlib import Path

from linkage.ingest.readers.csv_text import read_csv_text
from linkage.ingest.readers.database import read_parquet
from linkage.ingest.readers.delivery import Delivery, SourceError
from linkage.ingest.readers.json_text import read_json_text
from linkage.ingest.readers.plain_csv import read_plain_csv

__all__ = [
    "CSV_SUFFIXES",
    "JSON_SUFFIXES",
    "PARQUET_SUFFIXES",
    "SUPPORTED_SUFFIXES",
    "read_file",
]

CSV_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt")
JSON_SUFFIXES: tuple[str, ...] = (".json", ".jsonl", ".ndjson")
PARQUET_SUFFIXES: tuple[str, ...] = (".parquet",)
SUPPORTED_SUFFIXES: tuple[str, ...] = CSV_SUFFIXES + JSON_SUFFIXES + PARQUET_SUFFIXES

_PYTHON_CODECS = {"utf-8": "utf-8-sig", "latin-1": "latin-1", "windows-1252": "cp1252"}


def _decode(data: bytes, encoding: str, source_system: str) -> str:
    codec = _PYTHON_CODECS.get(encoding)
    if codec is None:
        raise SourceError(
            f"source '{source_system}': unsupported encoding '{encoding}'; "
            f"expected one of {sorted(_PYTHON_CODECS)}"
        )
    return data.decode(codec, errors="surrogateescape")


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
