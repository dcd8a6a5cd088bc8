"""How ``meld`` commands open the warehouse: reads never block on a run, writes take the
run lock.

A read command opens the warehouse read-only; while a run writes it, the snapshot the
last successful run published, with one line on stderr saying which run's snapshot it
reads (stdout stays clean for ``--json``). A command that writes takes the run lock
(refused with a one-line message while a run holds it) and publishes a fresh snapshot
when it is done. See :func:`linkage.warehouse.open_warehouse`.

Examples:
    ```py
    with read_warehouse(project.warehouse) as con:
        rows = ledger_rows(con)
    with write_warehouse(project.warehouse, command="meld override") as con:
        record_decision(con, decision)
    ```
"""

from __future__ import annotations

import sys
from contextlib import AbstractContextManager
from pathlib import Path

import duckdb

from linkage.warehouse import WarehouseBusyError, open_warehouse


def say(line: str) -> None:
    """One line for the person at the terminal, on stderr."""
    print(line, file=sys.stderr)


def read_warehouse(
    path: Path, *, error: type[Exception] = WarehouseBusyError
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The warehouse (or, while a run writes, its published snapshot) for reading."""
    return open_warehouse(path, read_only=True, error=error, notice=say)


def write_warehouse(
    path: Path,
    *,
    command: str,
    error: type[Exception] = WarehouseBusyError,
    compact: bool = False,
) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
    """The warehouse for writing, under the run lock, named ``command`` for others;
    ``compact`` rewrites the file afterwards so deleted rows leave no bytes behind."""
    return open_warehouse(path, read_only=False, error=error, job=command, compact=compact)
