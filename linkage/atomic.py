"""Warehouse writes a kill cannot leave half done: one transaction per group of tables.

DuckDB runs each statement in a transaction of its own, so a single
``CREATE OR REPLACE TABLE t AS SELECT ...`` is atomic: after a kill, ``t`` is the old
table or the new one. A write of several statements is not: create-then-insert leaves
an empty table, and tables that must agree (customers and their id registry, a source's
staged, quarantined and quality-issue rows) disagree when a kill falls between them.

Every such write in Meld runs inside :func:`transaction`. DuckDB's DDL is
transactional (``CREATE OR REPLACE``, ``DROP``, ``ALTER TABLE ... RENAME`` and ``INSERT``
inside ``BEGIN .. COMMIT`` commit together), and nothing of a transaction reaches the
write-ahead log before ``COMMIT``: a process killed inside one leaves the warehouse as
it was, and the next open replays only committed work. A large result computed outside
a transaction (Splink's scored pairs) goes to a scratch table first
(:func:`scratch_table`) and is renamed over its target by :func:`swap_tables`, a
metadata change that costs nothing however big the table.

Examples:
    ```py
    with transaction(con):
        con.execute("CREATE OR REPLACE TABLE golden_customers AS SELECT ...")
        con.execute("CREATE OR REPLACE TABLE golden_customers_rules (field VARCHAR, ...)")
        con.executemany("INSERT INTO golden_customers_rules VALUES (?, ?, ?)", rows)

    con.execute(f"CREATE OR REPLACE TABLE {scratch_table('pairwise_matches')} AS ...")
    with transaction(con):
        swap_tables(con, {"pairwise_matches": scratch_table("pairwise_matches")})
        con.execute("CREATE OR REPLACE TABLE scoring_model AS SELECT ...")
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import duckdb

from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

SCRATCH_PREFIX = "__meld_next_"
"""Prefix of the scratch table a result is built in before :func:`swap_tables`."""

_ABORTED = "Current transaction is aborted"


def scratch_table(table: str) -> str:
    """The scratch table a new version of ``table`` is built in, before the swap.

    Examples:
        >>> scratch_table("pairwise_matches")
        '__meld_next_pairwise_matches'
    """
    return SCRATCH_PREFIX + table


def in_transaction(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether ``con`` is inside an explicit transaction (``BEGIN`` without its end).

    Outside one, DuckDB gives every statement a transaction of its own, so two
    statements see two transaction ids; inside one they see the same.

    Examples:
        >>> con = duckdb.connect()
        >>> in_transaction(con)
        False
        >>> with transaction(con):
        ...     in_transaction(con)
        True
    """
    first = con.execute("SELECT txid_current()").fetchall()[0][0]
    return con.execute("SELECT txid_current()").fetchall()[0][0] == first


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """Run the block's writes as one transaction: all are committed, or none.

    Inside an open transaction the block joins it, and the outermost block commits. On
    an exception the transaction is rolled back and the exception raised again; when
    that exception is only DuckDB refusing a statement after an earlier error ("Current
    transaction is aborted", say from a clean-up in a ``finally``), the earlier error is
    raised instead, since it is the one that says what went wrong.

    Args:
        con: Warehouse connection.

    Yields:
        ``con``, for convenience.

    Examples:
        >>> con = duckdb.connect()
        >>> _ = con.execute("CREATE TABLE t AS SELECT 1 AS v")
        >>> try:
        ...     with transaction(con):
        ...         _ = con.execute("CREATE OR REPLACE TABLE t AS SELECT 2 AS v")
        ...         raise RuntimeError("killed here")
        ... except RuntimeError:
        ...     pass
        >>> con.execute("SELECT v FROM t").fetchall()
        [(1,)]
    """
    if in_transaction(con):
        yield con
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield con
    except BaseException as exc:
        _rollback(con)
        cause = _first_error(exc)
        if cause is exc:
            raise
        raise cause from None
    con.execute("COMMIT")


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error as exc:  # the connection is gone: nothing was committed anyway
        logger.warning(
            "rollback failed (%s); the transaction was not committed", type(exc).__name__
        )


def _first_error(exc: BaseException) -> BaseException:
    """The error that aborted the transaction, behind DuckDB's refusals that followed it."""
    found = exc
    while (
        isinstance(found, duckdb.TransactionException)
        and _ABORTED in str(found)
        and found.__context__ is not None
    ):
        found = found.__context__
    return found


def swap_tables(con: duckdb.DuckDBPyConnection, tables: Mapping[str, str]) -> None:
    """Put each scratch table in place of its target, all in one transaction.

    Each target is dropped and its scratch table renamed to it; a missing target is
    simply created. Joins an open transaction, so other writes can commit with the swap.

    Args:
        con: Warehouse connection.
        tables: Target table name to the scratch table holding its new version
            (usually :func:`scratch_table` of the target).

    Raises:
        LookupError: A scratch table does not exist (nothing is swapped).

    Examples:
        >>> con = duckdb.connect()
        >>> _ = con.execute("CREATE TABLE pairs AS SELECT 1 AS v")
        >>> _ = con.execute(f"CREATE TABLE {scratch_table('pairs')} AS SELECT 2 AS v")
        >>> swap_tables(con, {"pairs": scratch_table("pairs")})
        >>> con.execute("SELECT v FROM pairs").fetchall()
        [(2,)]
        >>> table_exists(con, scratch_table("pairs"))
        False
    """
    missing = [scratch for scratch in tables.values() if not table_exists(con, scratch)]
    if missing:
        raise LookupError(f"cannot swap in {missing}: no such scratch table in the warehouse")
    with transaction(con):
        for target, scratch in tables.items():
            con.execute(f"DROP TABLE IF EXISTS {quote(target)}")
            con.execute(f"ALTER TABLE {quote(scratch)} RENAME TO {quote(target)}")
