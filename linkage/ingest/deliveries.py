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

This module finds and reads the new deliveries and checks them;
:mod:`linkage.ingest.raw_tables` writes them, with the lineage columns it lists.

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

import hashlib
import io
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from linkage.atomic import transaction
from linkage.errors import missing_columns_text
from linkage.ingest.landing import matching_files
from linkage.ingest.raw_tables import (
    LINEAGE_COLUMNS,
    PendingDelivery,
    SourceFile,
    ensure_tables,
    next_delivery_seq,
    refresh_current,
    write_delivery,
)
from linkage.ingest.readers.column_types import check_column_types
from linkage.ingest.readers.database import DatabaseSpec, read_database
from linkage.ingest.readers.delivery import SourceError
from linkage.ingest.readers.files import SUPPORTED_SUFFIXES, read_file
from linkage.privacy.deny_list import record_refusals, refuse_erased_rows
from linkage.tables import SOURCE_DELIVERIES, raw_history_table, raw_table
from linkage.warehouse import quote, row_count, table_columns, table_exists

__all__ = [
    "RawLoadResult",
    "file_sha256",
    "find_source_files",
    "load_raw_source",
]

logger = logging.getLogger(__name__)


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
    refused_by_erasure: int = 0
    """Rows of the new deliveries refused because an erasure denies them."""


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
    files = matching_files(pattern)
    if not files:
        raise SourceError(f"source '{source_system}': no file matches path '{pattern}'")
    for path in files:
        if path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise SourceError(
                f"source '{source_system}', file '{path}': unsupported file type "
                f"'{path.suffix}'; expected one of {list(SUPPORTED_SUFFIXES)}"
            )
    return files


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
    # The columns found are counted, never listed: without its header row, a file has
    # its first record where the names should be.
    missing = missing_columns_text(
        {"id_column": id_column, **mapped_columns}, columns, what="the delivery"
    )
    if missing:
        raise SourceError(f"source '{source_system}', {where}: {missing}")


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
) -> tuple[list[PendingDelivery], list[SourceFile]]:
    """Read every new delivery; list the ones already loaded as skipped."""
    pending: list[PendingDelivery] = []
    skipped: list[SourceFile] = []
    if database is not None:
        delivery = read_database(database, source_system=source_system)
        digest = _table_sha256(delivery.table)
        location = Path(database.describe())
        if digest in known:
            skipped.append(SourceFile(location, 0, digest, delivery.table.num_rows, True))
        else:
            pending.append(PendingDelivery(location, 0, digest, None, delivery))
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
        pending.append(PendingDelivery(path, stat.st_size, digest, modified, delivery))
    return pending, skipped


def _check_pending(
    pending: list[PendingDelivery],
    source_system: str,
    id_column: str,
    mapped_columns: dict[str, str],
    column_transforms: dict[str, Callable[[str], str]] | None,
) -> None:
    """Check each new delivery's columns and rows; hash its sensitive columns."""
    for item in pending:
        where = f"file '{item.path}'"
        _check_columns(
            source_system, where, item.delivery.table.column_names, id_column, mapped_columns
        )
        if item.delivery.table.num_rows == 0:
            raise SourceError(f"source '{source_system}', {where}: no data rows")
        check_column_types(
            item.delivery.source_types,
            {"id_column": id_column, **mapped_columns},
            where=f"source '{source_system}', {where}",
        )
        if column_transforms:
            item.delivery = replace(
                item.delivery, table=_hash_columns(item.delivery.table, column_transforms)
            )


def _write_pending(
    con: duckdb.DuckDBPyConnection,
    pending: list[PendingDelivery],
    *,
    source_system: str,
    id_column: str,
    run_id: str | None,
) -> list[SourceFile]:
    """Write the new deliveries, oldest first, in one transaction: all or nothing."""
    table = raw_table(source_system)
    history = raw_history_table(source_system)
    loaded: list[SourceFile] = []
    loaded_at = datetime.now()
    con.execute("BEGIN TRANSACTION")
    try:
        for item in pending:
            ensure_tables(con, history, item.delivery.table.column_names)
            seq = next_delivery_seq(con, source_system)
            loaded.append(
                write_delivery(
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
            refresh_current(con, source_system, history)
        con.execute("DROP TABLE IF EXISTS __meld_delivery")
        con.execute("DROP TABLE IF EXISTS __meld_current")
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return loaded


def _forget_source(con: duckdb.DuckDBPyConnection, source_system: str) -> None:
    """Without a history table nothing was kept: start the source afresh."""
    with transaction(con):
        con.execute(f"DROP TABLE IF EXISTS {quote(raw_table(source_system))}")
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
    table = raw_table(source_system)
    history = raw_history_table(source_system)
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
    _check_pending(pending, source_system, id_column, mapped_columns, column_transforms)
    refusals = refuse_erased_rows(
        con,
        pending,
        source_system=source_system,
        id_column=id_column,
        mapped_columns=mapped_columns,
    )
    loaded = _write_pending(
        con, pending, source_system=source_system, id_column=id_column, run_id=run_id
    )
    refused = record_refusals(con, source_system, refusals, run_id=run_id)
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
        refused_by_erasure=refused,
    )
