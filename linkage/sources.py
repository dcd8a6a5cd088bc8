"""Load source system files into ``raw_<source>`` tables of the warehouse.

Every column arrives as text, untouched, with the lineage of each row: which source
system, which file (and its SHA-256 fingerprint), which row of that file, and when.

Examples:
    ```py
    result = load_raw_source(
        con,
        source_system="crm_contacts",
        pattern=Path("landing/crm_contacts.csv"),
        id_column="contact_id",
        mapped_columns={"fields.email": "email_address"},
    )
    result.rows
    ```
"""

from __future__ import annotations

import glob
import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb

from linkage.warehouse import quote, row_count, table_columns

logger = logging.getLogger(__name__)

LINEAGE_COLUMNS: tuple[str, ...] = (
    "source_system",
    "source_record_id",
    "source_row_number",
    "source_file",
    "file_fingerprint",
    "loaded_at",
)
"""Columns the loader adds to every raw table."""

SUPPORTED_SUFFIXES: tuple[str, ...] = (".csv", ".tsv", ".txt", ".parquet", ".json", ".jsonl")


class SourceError(ValueError):
    """A source cannot be loaded; the message names the source, file and column."""


@dataclass(frozen=True)
class SourceFile:
    """One delivered file and its fingerprint."""

    path: Path
    size_bytes: int
    sha256: str
    rows: int


@dataclass(frozen=True)
class RawLoadResult:
    """What :func:`load_raw_source` loaded."""

    table: str
    rows: int
    files: tuple[SourceFile, ...]
    columns: tuple[str, ...]


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def find_source_files(source_system: str, pattern: Path) -> list[Path]:
    """Files matching a source's path or glob, sorted by name.

    Raises:
        SourceError: Nothing matches, or a file has an unsupported extension.
    """
    matches = sorted(Path(p) for p in glob.glob(str(pattern), recursive=True))
    files = [path for path in matches if path.is_file()]
    if not files:
        raise SourceError(f"source '{source_system}': no file matches path '{pattern}'")
    for path in files:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise SourceError(
                f"source '{source_system}', file '{path}': unsupported file type "
                f"'{path.suffix}'; expected one of {list(SUPPORTED_SUFFIXES)}"
            )
    return files


def _reader_sql(path: Path, delimiter: str | None, encoding: str) -> tuple[str, dict[str, object]]:
    """A SELECT over one file with every column as text, and its named parameters."""
    suffix = path.suffix.lower()
    params: dict[str, object] = {"file_path": str(path)}
    if suffix == ".parquet":
        return "SELECT COLUMNS(*)::VARCHAR FROM read_parquet($file_path)", params
    if suffix in (".json", ".jsonl"):
        return (
            "SELECT COLUMNS(*)::VARCHAR FROM read_json($file_path, "
            "format = 'newline_delimited', records = true, sample_size = -1)",
            params,
        )
    options = ["header = true", "all_varchar = true", "encoding = $encoding"]
    params["encoding"] = encoding
    if delimiter:
        options.append("delim = $delimiter")
        params["delimiter"] = delimiter
    return f"SELECT * FROM read_csv($file_path, {', '.join(options)})", params


def _file_is_empty(path: Path) -> bool:
    return path.stat().st_size == 0


def load_raw_source(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    pattern: Path,
    id_column: str,
    mapped_columns: dict[str, str],
    delimiter: str | None = None,
    encoding: str = "utf-8",
) -> RawLoadResult:
    """Load every file of one source into ``raw_<source_system>``, replacing it.

    Args:
        con: Warehouse connection.
        source_system: The source's name from the config.
        pattern: File or glob, already resolved.
        id_column: Column holding the record's id in its source.
        mapped_columns: Config key (for messages) to source column, for every mapped
            field; each must exist in every file.
        delimiter: CSV delimiter; sniffed when None.
        encoding: CSV text encoding.

    Returns:
        The table name, row count and the fingerprinted files.

    Raises:
        SourceError: A file is missing, empty, unreadable, or lacks a mapped column.
    """
    table = f"raw_{source_system}"
    staging = f"__load_{source_system}"
    files = find_source_files(source_system, pattern)
    loaded: list[SourceFile] = []
    con.execute(f"DROP TABLE IF EXISTS {quote(staging)}")
    for path in files:
        if _file_is_empty(path):
            raise SourceError(f"source '{source_system}', file '{path}': file is empty")
        sql, params = _reader_sql(path, delimiter, encoding)
        try:
            columns = [d[0] for d in con.execute(f"DESCRIBE {sql}", params).fetchall()]
        except duckdb.Error as exc:
            raise SourceError(
                f"source '{source_system}', file '{path}': cannot read: {exc}"
            ) from exc
        _check_columns(source_system, path, columns, id_column, mapped_columns)
        fingerprint = file_sha256(path)
        select = (
            "SELECT src.*, $source_system::VARCHAR AS source_system, "
            f"nullif(trim(src.{quote(id_column)}), '') AS source_record_id, "
            "row_number() OVER () AS source_row_number, "
            "$file_path::VARCHAR AS source_file, $fingerprint::VARCHAR AS file_fingerprint, "
            "now()::TIMESTAMP AS loaded_at "
            f"FROM ({sql}) AS src"
        )
        select_params = {**params, "source_system": source_system, "fingerprint": fingerprint}
        try:
            if not loaded:
                con.execute(f"CREATE TABLE {quote(staging)} AS {select}", select_params)
            else:
                con.execute(f"INSERT INTO {quote(staging)} BY NAME {select}", select_params)
        except duckdb.Error as exc:
            raise SourceError(
                f"source '{source_system}', file '{path}': cannot read: {exc}"
            ) from exc
        rows = con.execute(
            f"SELECT count(*) FROM {quote(staging)} WHERE source_file = ?", [str(path)]
        ).fetchall()[0][0]
        if rows == 0:
            raise SourceError(f"source '{source_system}', file '{path}': file has no data rows")
        loaded.append(SourceFile(path, path.stat().st_size, fingerprint, int(rows)))
        logger.info("source %s: read %d rows from %s", source_system, rows, path.name)
    con.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * FROM {quote(staging)}")
    con.execute(f"DROP TABLE {quote(staging)}")
    return RawLoadResult(
        table=table,
        rows=row_count(con, table),
        files=tuple(loaded),
        columns=tuple(table_columns(con, table)),
    )


def _check_columns(
    source_system: str,
    path: Path,
    columns: list[str],
    id_column: str,
    mapped_columns: dict[str, str],
) -> None:
    clashes = sorted(set(columns) & set(LINEAGE_COLUMNS))
    if clashes:
        raise SourceError(
            f"source '{source_system}', file '{path}': column(s) {clashes} clash with "
            "Meld's lineage columns; rename them in the file"
        )
    wanted = {"id_column": id_column, **mapped_columns}
    for key, column in wanted.items():
        if column not in columns:
            raise SourceError(
                f"source '{source_system}', file '{path}': column '{column}' "
                f"(config key {key}) not found; the file has columns {columns}"
            )
