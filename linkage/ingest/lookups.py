"""Per-field lookup tables: each distinct raw value standardised once, then joined back.

A million rows hold far fewer distinct e-mails, phones and names, so staging standardises
the distinct values of a field in Python (in worker processes when there are many, see
:mod:`linkage.parallel`) and stores the results as a temporary DuckDB table keyed by the
raw value, which the working table then joins.

Examples:
    ```py
    lookups = LookupTables(con, "__base_crm", "__map_crm_")
    email_map = lookups.start("email", ["raw_email"], ["email", "email_problem"], email_parts)
    lookups.finish()
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import duckdb
import pandas as pd

from linkage.parallel import PendingMap, submit_tuples
from linkage.warehouse import quote

__all__ = ["LookupTables"]


class LookupTables:
    """Builds the per-field lookup tables from distinct raw values.

    :meth:`start` submits a field's distinct values and :meth:`finish` stores every
    submitted field's lookup table: submitting a batch of fields before finishing any
    lets large fields run in the worker processes while this process works through the
    small ones.

    Args:
        con: Warehouse connection.
        base: The working table whose columns are mapped.
        prefix: Prefix of the lookup tables' names (temporary tables).
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, base: str, prefix: str) -> None:
        self.con = con
        self.base = base
        self.prefix = prefix
        self.tables: list[str] = []
        self._pending: list[tuple[str, list[str], list[tuple], PendingMap]] = []

    def start(
        self,
        name: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        function: Callable[..., tuple[Any, ...]],
    ) -> str:
        """Submit ``function`` over each distinct tuple of ``inputs``; returns the name
        of the lookup table :meth:`finish` will create."""
        columns = ", ".join(quote(c) for c in inputs)
        distinct = self.con.execute(
            f"SELECT DISTINCT {columns} FROM {quote(self.base)} "
            f"WHERE {quote(inputs[0])} IS NOT NULL"
        ).fetchall()
        # Large inputs run in worker processes: ``function`` must be picklable.
        pending = submit_tuples(function, distinct)
        table = f"{self.prefix}{name}"
        self._pending.append((table, [*inputs, *outputs], distinct, pending))
        self.tables.append(table)
        return table

    def finish(self) -> None:
        """Create the lookup table of every submitted field: those running in this
        process first, while the workers finish theirs."""
        batch = sorted(self._pending, key=lambda entry: not entry[3].in_process)
        self._pending = []
        for table, columns, distinct, pending in batch:
            mapped = pending.result()
            results = [(*row, *out) for row, out in zip(distinct, mapped, strict=True)]
            self._store(table, columns, results)

    def map_distinct(
        self,
        name: str,
        inputs: Sequence[str],
        outputs: Sequence[str],
        function: Callable[..., tuple[Any, ...]],
    ) -> str:
        """Apply ``function`` to each distinct tuple of ``inputs``; store as a lookup table."""
        table = self.start(name, inputs, outputs, function)
        self.finish()
        return table

    def _store(self, table: str, columns: list[str], results: list[tuple]) -> None:
        frame = pd.DataFrame(results, columns=columns, dtype=object)
        self.con.register("__meld_lookup", frame)
        try:
            casts = ", ".join(
                f"{quote(c)}::{'DATE' if c.endswith('_date') else 'VARCHAR'} AS {quote(c)}"
                for c in columns
            )
            self.con.execute(
                f"CREATE OR REPLACE TEMP TABLE {quote(table)} AS SELECT {casts} FROM __meld_lookup"
            )
        finally:
            self.con.unregister("__meld_lookup")

    def drop(self) -> None:
        """Drop every lookup table this object created."""
        for table in self.tables:
            self.con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
