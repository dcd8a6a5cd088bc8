"""Write one delivery into a source's raw tables and the shared delivery log.

- ``raw_history_<source>``: every version of every record ever delivered; a delivery
  appends its new and changed records (a record re-delivered unchanged adds nothing);
- ``raw_<source>``: each id's rows from its newest delivery, plus rows with no id (each
  kept once, from the delivery it first came in: a row without an id re-delivered
  unchanged adds nothing, so it is not quarantined again);
- ``source_deliveries``: one row per delivery, with its counts of new, changed and
  unchanged records.

Lineage columns on every row (:data:`LINEAGE_COLUMNS`): ``source_system``,
``source_record_id``, ``source_row_number`` (row in its delivery), ``source_line`` (line
in a text file), ``source_file``, ``file_fingerprint``, ``delivery_seq``, ``loaded_at``,
``record_hash``, ``raw_row_id`` (unique per source), ``load_problem``,
``load_problem_field``, ``load_problem_detail``.

Examples:
    ```py
    history = raw_history_table("crm")
    ensure_tables(con, history, delivery.table.column_names)
    seq = next_delivery_seq(con, "crm")
    written = write_delivery(
        con, source_system="crm", history=history, id_column="id",
        item=pending, seq=seq, loaded_at=datetime.now(), run_id=None,
    )
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from linkage.ingest.readers.delivery import Delivery
from linkage.tables import SOURCE_DELIVERIES, raw_table
from linkage.warehouse import quote, table_columns, table_exists

__all__ = [
    "DELIVERY_COLUMNS",
    "LINEAGE_COLUMNS",
    "ROW_ID_STRIDE",
    "PendingDelivery",
    "SourceFile",
    "ensure_tables",
    "next_delivery_seq",
    "no_id_content_key",
    "refresh_current",
    "write_delivery",
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


@dataclass
class PendingDelivery:
    """A delivery read and checked, waiting to be written."""

    path: Path
    size_bytes: int
    sha256: str
    modified_at: datetime | None
    delivery: Delivery


def ensure_tables(con: duckdb.DuckDBPyConnection, history: str, data_columns: list[str]) -> None:
    """Create ``source_deliveries`` and the history table if missing; add new data columns."""
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


def next_delivery_seq(con: duckdb.DuckDBPyConnection, source_system: str) -> int:
    """The sequence number of a source's next delivery (1 for the first)."""
    value = con.execute(
        f"SELECT coalesce(max(delivery_seq), 0) FROM {quote(SOURCE_DELIVERIES)} "
        "WHERE source_system = ?",
        [source_system],
    ).fetchall()[0][0]
    return int(value) + 1


def write_delivery(
    con: duckdb.DuckDBPyConnection,
    *,
    source_system: str,
    history: str,
    id_column: str,
    item: PendingDelivery,
    seq: int,
    loaded_at: datetime,
    run_id: str | None,
) -> SourceFile:
    """Append one delivery's new and changed records to the history table, log the
    delivery in ``source_deliveries`` and refresh ``raw_<source>``."""
    delivery = item.delivery
    _create_delivery_table(con, source_system, id_column, item, seq, loaded_at)
    _create_current_versions(con, source_system)
    counts = _count_changes(con)
    _append_to_history(con, history)
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
    _log_delivery(con, source_system, item, seq, result, loaded_at, run_id)
    refresh_current(con, source_system, history)
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


def _create_delivery_table(
    con: duckdb.DuckDBPyConnection,
    source_system: str,
    id_column: str,
    item: PendingDelivery,
    seq: int,
    loaded_at: datetime,
) -> None:
    """``__meld_delivery``: the delivery's rows with their lineage columns."""
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


def _create_current_versions(con: duckdb.DuckDBPyConnection, source_system: str) -> None:
    """``__meld_current``: each id already known, with how many current rows it has and
    a fingerprint of their hashes (a sum, so their order does not matter), to tell new,
    changed and unchanged records apart."""
    current = raw_table(source_system)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE __meld_current AS "
        f"SELECT source_record_id, count(*) AS copies, {_HASH_SUM} AS hash_sum "
        f"FROM {quote(current)} WHERE source_record_id IS NOT NULL "
        "GROUP BY source_record_id"
        if table_exists(con, current)
        else "CREATE OR REPLACE TEMP TABLE __meld_current "
        "(source_record_id VARCHAR, copies BIGINT, hash_sum HUGEINT)"
    )


_HASH_SUM = "sum(hash(record_hash)::HUGEINT)"
_DELIVERY_BY_ID = (
    "WITH ids AS (SELECT source_record_id, count(*) AS copies, "
    f"{_HASH_SUM} AS hash_sum FROM __meld_delivery "
    "WHERE source_record_id IS NOT NULL GROUP BY source_record_id), "
    "d AS (SELECT m.*, ids.copies AS __copies, ids.hash_sum AS __hash_sum "
    "FROM __meld_delivery AS m LEFT JOIN ids ON ids.source_record_id = m.source_record_id) "
)
"""The delivery's rows, each with its id's row count and hash fingerprint."""
_UNCHANGED = "(c.copies = d.__copies AND c.hash_sum = d.__hash_sum)"
"""A record whose rows (one, or several repeating its id) are the current ones."""


def no_id_content_key(prefix: str = "") -> str:
    """SQL for what makes a row without an id the same row in another delivery: its
    values, its load problem and the problem's detail (a malformed row's raw text)
    without the line it was on. ``prefix`` qualifies the columns (``"d."``)."""
    return (
        f"md5(concat_ws('|', {prefix}record_hash, coalesce({prefix}load_problem, ''), "
        f"coalesce(regexp_replace({prefix}load_problem_detail, '^line [^:]*: ', ''), '')))"
    )


def _count_changes(con: duckdb.DuckDBPyConnection) -> tuple[int, int, int]:
    """Rows of new, changed and unchanged records in the delivery."""
    return con.execute(
        _DELIVERY_BY_ID + "SELECT "
        "count(*) FILTER (WHERE d.source_record_id IS NOT NULL AND c.source_record_id IS NULL), "
        f"count(*) FILTER (WHERE c.source_record_id IS NOT NULL AND NOT {_UNCHANGED}), "
        f"count(*) FILTER (WHERE c.source_record_id IS NOT NULL AND {_UNCHANGED}) "
        "FROM d LEFT JOIN __meld_current AS c ON c.source_record_id = d.source_record_id"
    ).fetchall()[0]


def _append_to_history(con: duckdb.DuckDBPyConnection, history: str) -> None:
    """Append the delivery's new and changed records, and its rows without an id that
    no earlier delivery had (by :func:`no_id_content_key`): a row without an id, or a
    record that repeats its id, is kept once, from the delivery it first came in."""
    con.execute(
        f"INSERT INTO {quote(history)} BY NAME "
        + _DELIVERY_BY_ID
        + f", seen AS (SELECT DISTINCT {no_id_content_key()} AS content_key "
        f"FROM {quote(history)} WHERE source_record_id IS NULL) "
        "SELECT d.* EXCLUDE (__copies, __hash_sum) FROM d LEFT JOIN __meld_current AS c "
        "ON c.source_record_id = d.source_record_id "
        "WHERE CASE WHEN d.source_record_id IS NULL "
        f"THEN {no_id_content_key('d.')} NOT IN (SELECT content_key FROM seen) "
        f"ELSE c.source_record_id IS NULL OR NOT {_UNCHANGED} END"
    )


def _log_delivery(
    con: duckdb.DuckDBPyConnection,
    source_system: str,
    item: PendingDelivery,
    seq: int,
    result: SourceFile,
    loaded_at: datetime,
    run_id: str | None,
) -> None:
    """Append the delivery and its counts to ``source_deliveries``."""
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


def refresh_current(con: duckdb.DuckDBPyConnection, source_system: str, history: str) -> None:
    """``raw_<source>``: each id's rows from its newest delivery, plus rows with no id."""
    con.execute(
        f"CREATE OR REPLACE TABLE {quote(raw_table(source_system))} AS "
        f"SELECT * FROM {quote(history)} "
        "QUALIFY source_record_id IS NULL "
        "OR delivery_seq = max(delivery_seq) OVER (PARTITION BY source_record_id) "
        "ORDER BY raw_row_id"
    )
