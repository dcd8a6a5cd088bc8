"""Load source deliveries into the warehouse, incrementally and idempotently.

Each source has three tables:

- ``source_deliveries`` (shared): one row per delivery ever loaded: the file (or
  database table), its size, SHA-256 and row counts. A file whose content was loaded
  before is skipped, so loading the same file twice adds nothing.
- ``raw_history_<source>``: every version of every record ever delivered, as text,
  with its lineage (file, row, line, delivery). A record re-delivered unchanged adds
  no version.
- ``raw_<source>``: the current version of each record: the one from its newest
  delivery (newest wins). Rows with no id and rows that could not be read are kept
  too, so staging can quarantine them.

Lineage columns on every row: ``source_system``, ``source_record_id``,
``source_row_number`` (row in its delivery), ``source_line`` (line in a text file),
``source_file``, ``file_fingerprint``, ``delivery_seq``, ``loaded_at``,
``record_hash``, ``raw_row_id`` (unique per source), ``load_problem``,
``load_problem_field``, ``load_problem_detail``.

Examples:
    ```py
    result = load_raw_source(
        con,
        source_system="crm_contacts",
        pattern=Path("landing/crm_*.csv"),
        id_column="contact_id",
        mapped_columns={"fields.email": "email_address"},
    )
    result.rows, result.new_files, result.skipped_files
    ```
"""

from __future__ import annotations

import glob
import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from linkage.ingest.readers import (
    SUPPORTED_SUFFIXES,
    DatabaseSpec,
    Delivery,
    SourceError,
    read_database,
    read_file,
)
from linkage.tables import SOURCE_DELIVERIES
from linkage.warehouse import quote, row_count, table_columns, table_exists

__all__ = [
    "LINEAGE_COLUMNS",
    "DatabaseSpec",
    "RawLoadResult",
    "SourceError",
    "SourceFile",
    "find_source_files",
    "load_raw_source",
]

logger = logging.getLogger(__name__)

LINEAGE_COLUMNS: dict[str, str] = {
    "source_system": "VARCHAR",
    "source_record_id": "VARCHAR",
    "source_row_number": "BIGINT",
    "source_line": "BIGINT",
    "source_file": "VARCHAR",
    "file_fingerprint": "VARCHAR",
    "delivery_seq": "BIGINT",
    "loaded_at": "TIMESTAMP",
    "record_hash": "VARCHAR",
    "raw_row_id": "BIGINT",
    "load_problem": "VARCHAR",
    "load_problem_field": "VARCHAR",
    "load_problem_detail": "VARCHAR",
}
"""Columns the loader adds to every raw row."""

DELIVERY_COLUMNS: dict[str, str] = {
    "source_system": "VARCHAR",
    "delivery_seq": "BIGINT",
    "source_file": "VARCHAR",
    "size_bytes": "BIGINT",
    "sha256": "VARCHAR",
    "modified_at": "TIMESTAMP",
    "rows": "BIGINT",
    "problem_rows": "BIGINT",
    "new_records": "BIGINT",
    "changed_records": "BIGINT",
    "unchanged_records": "BIGINT",
    "loaded_at": "TIMESTAMP",
    "run_id": "VARCHAR",
}
ROW_ID_STRIDE = 10**10
"""raw_row_id = delivery_seq * ROW_ID_STRIDE + row number: unique and ordered."""


@dataclass(frozen=True)
class SourceFile:
    """One delivery and what loading it did.

    Attributes:
        path: The file, or a description of the database table or query.
        skipped: True when the same content was loaded before: nothing was added.
    """

    path: Path
    size_bytes: int
    sha256: str
    rows: int
    skipped: bool = False
    problem_rows: int = 0
    new_records: int = 0
    changed_records: int = 0
    unchanged_records: int = 0


@dataclass(frozen=True)
class RawLoadResult:
    """What :func:`load_raw_source` did."""

    table: str
    rows: int
    files: tuple[SourceFile, ...]
    columns: tuple[str, ...]
    history_rows: int = 0
    new_files: tuple[SourceFile, ...] = field(default=())
    skipped_files: tuple[SourceFile, ...] = field(default=())


def file_sha256(path: Path, chunk_size: int = 1 << 20) -> str:
    """SHA-256 of a file's bytes, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


def find_source_files(source_system: str, pattern: Path) -> list[Path]:
    """Files matching a source's path or glob, oldest first (modification time, name).

    Raises:
        SourceError: Nothing matches, or a file has an unsupported extension.
    """
    matches = [Path(p) for p in glob.glob(str(pattern), recursive=True)]
    files = [path for path in matches if path.is_file()]
    if not files:
        raise SourceError(f"source '{source_system}': no file matches path '{pattern}'")
    for path in files:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise SourceError(
                f"source '{source_system}', file '{path}': unsupported file type "
                f"'{path.suffix}'; expected one of {list(SUPPORTED_SUFFIXES)}"
            )
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, str(p)))


@dataclass
class _Pending:
    """A delivery read and checked, waiting to be written."""

    path: Path
    size_bytes: int
    sha256: str
    modified_at: datetime | None
    delivery: Delivery


def _table_sha256(table: pa.Table) -> str:
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return hashlib.sha256(sink.getvalue()).hexdigest()


def _loaded_fingerprints(con: duckdb.DuckDBPyConnection, source_system: str) -> set[str]:
    if not table_exists(con, SOURCE_DELIVERIES):
        return set()
    rows = con.execute(
        f"SELECT sha256 FROM {quote(SOURCE_DELIVERIES)} WHERE source_system = ?",
        [source_system],
    ).fetchall()
    return {row[0] for row in rows}


def _check_columns(
    source_system: str,
    where: str,
    columns: list[str],
    id_column: str,
    mapped_columns: dict[str, str],
) -> None:
    clashes = sorted(set(columns) & set(LINEAGE_COLUMNS))
    if clashes:
        raise SourceError(
            f"source '{source_system}', {where}: column(s) {clashes} clash with "
            "Meld's lineage columns; rename them in the source"
        )
    wanted = {"id_column": id_column, **mapped_columns}
    for key, column in wanted.items():
        if column not in columns:
            raise SourceError(
                f"source '{source_system}', {where}: column '{column}' "
                f"(config key {key}) not found; the source has columns {columns}"
            )


def _hash_columns(table: pa.Table, transforms: dict[str, Callable[[str], str]]) -> pa.Table:
    """Replace sensitive columns (national ids) before anything is written."""
    for column, transform in transforms.items():
        if column not in table.column_names:
            continue
        values = table.column(column).to_pylist()
        cache = {value: transform(value) for value in set(values) if value is not None}
        hashed = [None if value is None else cache[value] for value in values]
        index = table.column_names.index(column)
        table = table.set_column(index, column, pa.array(hashed, type=pa.string()))
    return table


def _read_pending(
    source_system: str,
    *,
    pattern: Path | None,
    database: DatabaseSpec | None,
    delimiter: str | None,
    encoding: str,
    known: set[str],
) -> tuple[list[_Pending], list[SourceFile]]:
    """Read every new delivery; list the ones already loaded as skipped."""
    pending: list[_Pending] = []
    skipped: list[SourceFile] = []
    if database is not None:
        delivery = read_database(database, source_system=source_system)
        digest = _table_sha256(delivery.table)
        location = Path(database.describe())
        if digest in known:
            skipped.append(SourceFile(location, 0, digest, delivery.table.num_rows, True))
        else:
            pending.append(_Pending(location, 0, digest, None, delivery))
        return pending, skipped
    if pattern is None:
        raise SourceError(f"source '{source_system}': neither a path nor a database is given")
    seen: set[str] = set()
    for path in find_source_files(source_system, pattern):
        digest = file_sha256(path)
        stat = path.stat()
        if digest in known or digest in seen:
            skipped.append(SourceFile(path, stat.st_size, digest, 0, True))
            continue
        seen.add(digest)
        delivery = read_file(
            path, source_system=source_system, delimiter=delimiter, encoding=encoding
        )
        modified = datetime.fromtimestamp(stat.st_mtime)
        pending.append(_Pending(path, stat.st_size, digest, modified, delivery))
    return pending, skipped


def _ensure_tables(con: duckdb.DuckDBPyConnection, history: str, data_columns: list[str]) -> None:
    if not table_exists(con, SOURCE_DELIVERIES):
        typed = ", ".join(f"{quote(c)} {t}" for c, t in DELIVERY_COLUMNS.items())
        con.execute(f"CREATE TABLE {quote(SOURCE_DELIVERIES)} ({typed})")
    if not table_exists(con, history):
        typed = ", ".join(
            [f"{quote(c)} VARCHAR" for c in data_columns]
            + [f"{quote(c)} {t}" for c, t in LINEAGE_COLUMNS.items()]
        )
        con.execute(f"CREATE TABLE {quote(history)} ({typed})")
        return
    present = set(table_columns(con, history))
    for column in data_columns:
        if column not in present:
            con.execute(f"ALTER TABLE {quote(history)} ADD COLUMN {quote(column)} VARCHAR")


def _next_delivery_seq(con: duckdb.DuckDBPyConnection, source_system: str) -> int:
    value = con.execute(
        f"SELECT coalesce(max(delivery_seq), 0) FROM {quote(SOURCE_DELIVERIES)} "
        "WHERE source_system = ?",
        [source_system],
    ).fetchall()[0][0]
    return int(value) + 1


def _write_delivery(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    history: str,
    id_column: str,
    item: _Pending,
    seq: int,
    loaded_at: datetime,
    run_id: str | None,
) -> SourceFile:
    """Append one delivery's new and changed records to the history table."""
    delivery = item.delivery
    data_columns = delivery.table.column_names
    lineage = pa.table(
        {
            "__row": pa.array(delivery.row_numbers, type=pa.int64()),
            "__line": pa.array(delivery.lines, type=pa.int64()),
            "__problem": pa.array(delivery.problems, type=pa.string()),
            "__field": pa.array(delivery.problem_fields, type=pa.string()),
            "__detail": pa.array(delivery.problem_details, type=pa.string()),
        }
    )
    combined = delivery.table
    for name in lineage.column_names:
        combined = combined.append_column(name, lineage.column(name))
    hashed = ", ".join(quote(c) for c in sorted(data_columns))
    con.register("__meld_delivery_arrow", combined)
    try:
        con.execute(
            "CREATE OR REPLACE TEMP TABLE __meld_delivery AS SELECT "
            + ", ".join(f"d.{quote(c)}" for c in data_columns)
            + ", $source_system::VARCHAR AS source_system, "
            f"CASE WHEN d.__problem = 'malformed_row' THEN NULL "
            f"ELSE nullif(trim(d.{quote(id_column)}), '') END AS source_record_id, "
            "d.__row AS source_row_number, d.__line AS source_line, "
            "$file::VARCHAR AS source_file, $sha::VARCHAR AS file_fingerprint, "
            "$seq::BIGINT AS delivery_seq, $loaded_at::TIMESTAMP AS loaded_at, "
            f"md5(to_json(list_value({hashed}))) AS record_hash, "
            "$seq::BIGINT * $stride + d.__row AS raw_row_id, "
            "d.__problem AS load_problem, d.__field AS load_problem_field, "
            "d.__detail AS load_problem_detail "
            "FROM __meld_delivery_arrow AS d",
            {
                "source_system": source_system,
                "file": str(item.path),
                "sha": item.sha256,
                "seq": seq,
                "loaded_at": loaded_at,
                "stride": ROW_ID_STRIDE,
            },
        )
    finally:
        con.unregister("__meld_delivery_arrow")
    # Current single version of each id already known, to tell new, changed, unchanged.
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __meld_current AS "
        "SELECT source_record_id, any_value(record_hash) AS record_hash "
        f"FROM {quote('raw_' + source_system)} WHERE source_record_id IS NOT NULL "
        "GROUP BY source_record_id HAVING count(*) = 1"
        if table_exists(con, "raw_" + source_system)
        else "CREATE OR REPLACE TEMP TABLE __meld_current "
        "(source_record_id VARCHAR, record_hash VARCHAR)"
    )
    counts = con.execute(
        "WITH d AS (SELECT *, count(*) OVER (PARTITION BY source_record_id) AS copies "
        "FROM __meld_delivery) "
        "SELECT "
        "count(*) FILTER (WHERE d.source_record_id IS NOT NULL AND c.source_record_id IS NULL), "
        "count(*) FILTER (WHERE c.record_hash IS DISTINCT FROM d.record_hash "
        "AND c.source_record_id IS NOT NULL), "
        "count(*) FILTER (WHERE c.record_hash = d.record_hash AND d.copies = 1) "
        "FROM d LEFT JOIN __meld_current AS c ON c.source_record_id = d.source_record_id"
    ).fetchall()[0]
    con.execute(
        f"INSERT INTO {quote(history)} BY NAME "
        "WITH d AS (SELECT *, count(*) OVER (PARTITION BY source_record_id) AS copies "
        "FROM __meld_delivery) "
        "SELECT d.* EXCLUDE (copies) FROM d LEFT JOIN __meld_current AS c "
        "ON c.source_record_id = d.source_record_id "
        "WHERE d.source_record_id IS NULL OR d.copies > 1 "
        "OR c.record_hash IS DISTINCT FROM d.record_hash"
    )
    result = SourceFile(
        path=item.path,
        size_bytes=item.size_bytes,
        sha256=item.sha256,
        rows=delivery.table.num_rows,
        problem_rows=delivery.problem_count,
        new_records=int(counts[0]),
        changed_records=int(counts[1]),
        unchanged_records=int(counts[2]),
    )
    con.execute(
        f"INSERT INTO {quote(SOURCE_DELIVERIES)} BY NAME SELECT "
        "$source_system AS source_system, $seq AS delivery_seq, $file AS source_file, "
        "$size AS size_bytes, $sha AS sha256, $modified::TIMESTAMP AS modified_at, "
        "$rows AS rows, $problems AS problem_rows, $new AS new_records, "
        "$changed AS changed_records, $unchanged AS unchanged_records, "
        "$loaded_at::TIMESTAMP AS loaded_at, $run_id AS run_id",
        {
            "source_system": source_system,
            "seq": seq,
            "file": str(item.path),
            "size": item.size_bytes,
            "sha": item.sha256,
            "modified": item.modified_at,
            "rows": result.rows,
            "problems": result.problem_rows,
            "new": result.new_records,
            "changed": result.changed_records,
            "unchanged": result.unchanged_records,
            "loaded_at": loaded_at,
            "run_id": run_id,
        },
    )
    _refresh_current(con, source_system, history)
    logger.info(
        "source %s: delivery %d (%s): %d rows, %d new, %d changed, %d unchanged, %d unreadable",
        source_system,
        seq,
        item.path.name,
        result.rows,
        result.new_records,
        result.changed_records,
        result.unchanged_records,
        result.problem_rows,
    )
    return result


def _refresh_current(con: duckdb.DuckDBPyConnection, source_system: str, history: str) -> None:
    """``raw_<source>``: each id's rows from its newest delivery, plus rows with no id."""
    con.execute(
        f"CREATE OR REPLACE TABLE {quote('raw_' + source_system)} AS "
        f"SELECT * FROM {quote(history)} "
        "QUALIFY source_record_id IS NULL "
        "OR delivery_seq = max(delivery_seq) OVER (PARTITION BY source_record_id) "
        "ORDER BY raw_row_id"
    )


def _forget_source(con: duckdb.DuckDBPyConnection, source_system: str) -> None:
    """Without a history table nothing was kept: start the source afresh."""
    con.execute(f"DROP TABLE IF EXISTS {quote('raw_' + source_system)}")
    if table_exists(con, SOURCE_DELIVERIES):
        con.execute(
            f"DELETE FROM {quote(SOURCE_DELIVERIES)} WHERE source_system = ?", [source_system]
        )


def load_raw_source(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    id_column: str,
    mapped_columns: dict[str, str],
    pattern: Path | None = None,
    database: DatabaseSpec | None = None,
    delimiter: str | None = None,
    encoding: str = "utf-8",
    column_transforms: dict[str, Callable[[str], str]] | None = None,
    run_id: str | None = None,
) -> RawLoadResult:
    """Load a source's new deliveries into ``raw_history_<source>`` and ``raw_<source>``.

    Files whose content was loaded before are skipped. New files are read oldest
    first; each becomes a delivery whose new and changed records are appended to the
    history; ``raw_<source>`` then holds each record's newest version.

    Args:
        con: Warehouse connection.
        source_system: The source's name from the config.
        id_column: Column holding the record's id in its source.
        mapped_columns: Config key (for messages) to source column, for every mapped
            field; each must exist in every delivery.
        pattern: File or glob, already resolved (or give ``database``).
        database: A table or query in another database.
        delimiter: CSV delimiter; sniffed when None.
        encoding: Text encoding of CSV and JSON Lines files.
        column_transforms: Source column to a function applied to each value before
            anything is written (national ids become keyed hashes).
        run_id: The orchestrator's run id, kept with each delivery.

    Returns:
        Current row count, the deliveries loaded and skipped, and the columns.

    Raises:
        SourceError: No file, an empty or unreadable file, or a mapped column missing.
            Nothing is written when any new delivery fails.
    """
    table = f"raw_{source_system}"
    history = f"raw_history_{source_system}"
    if not table_exists(con, history):
        _forget_source(con, source_system)
    pending, skipped = _read_pending(
        source_system,
        pattern=pattern,
        database=database,
        delimiter=delimiter,
        encoding=encoding,
        known=_loaded_fingerprints(con, source_system),
    )
    for item in pending:
        where = f"file '{item.path}'"
        _check_columns(
            source_system, where, item.delivery.table.column_names, id_column, mapped_columns
        )
        if item.delivery.table.num_rows == 0:
            raise SourceError(f"source '{source_system}', {where}: no data rows")
        if column_transforms:
            item.delivery = replace(
                item.delivery, table=_hash_columns(item.delivery.table, column_transforms)
            )
    loaded: list[SourceFile] = []
    loaded_at = datetime.now()
    con.execute("BEGIN TRANSACTION")
    try:
        for item in pending:
            _ensure_tables(con, history, item.delivery.table.column_names)
            seq = _next_delivery_seq(con, source_system)
            loaded.append(
                _write_delivery(
                    con,
                    source_system=source_system,
                    history=history,
                    id_column=id_column,
                    item=item,
                    seq=seq,
                    loaded_at=loaded_at,
                    run_id=run_id,
                )
            )
        if not table_exists(con, table):
            if not table_exists(con, history):
                raise SourceError(f"source '{source_system}': nothing has been delivered yet")
            _refresh_current(con, source_system, history)
        con.execute("DROP TABLE IF EXISTS __meld_delivery")
        con.execute("DROP TABLE IF EXISTS __meld_current")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    if skipped:
        logger.info(
            "source %s: %d delivery(ies) already loaded, skipped", source_system, len(skipped)
        )
    return RawLoadResult(
        table=table,
        rows=row_count(con, table),
        files=tuple(loaded) + tuple(skipped),
        columns=tuple(table_columns(con, table)),
        history_rows=row_count(con, history),
        new_files=tuple(loaded),
        skipped_files=tuple(skipped),
    )
