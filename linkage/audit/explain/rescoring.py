"""Score two records now, as the run would have, in a private Splink session.

A pair the run did not score (not blocked together, or below the prediction floor) is
scored with the same model and Splink's ``linker.inference.score_pair``, term
frequencies taken from the whole records table, and the link vetoes applied; Splink
runs on a private in-memory DuckDB holding the two records. The same session draws the
pair's waterfall chart.

Examples:
    ```py
    records = with_term_frequencies(con, records, tf_columns(stored.model))
    with splink_session(records, stored.model) as (linker, api, mem):
        row = score_now(linker, api, mem, records)
        write_waterfall_chart(linker, row, Path("pair.html"), mask=False)
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker

from linkage.audit.explain.reads import fetch_dicts
from linkage.model.vetoes import apply_link_vetoes
from linkage.tables import CUSTOMER_RECORDS
from linkage.warehouse import quote

logger = logging.getLogger(__name__)

_SCORED = "__meld_explain_scored"


def tf_columns(model: dict[str, Any]) -> list[str]:
    """Columns the model adjusts for term frequency, in order of first use."""
    columns: list[str] = []
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            column = level.get("tf_adjustment_column")
            if column and column not in columns:
                columns.append(column)
    return columns


def with_term_frequencies(
    con: duckdb.DuckDBPyConnection, records: pa.Table, columns: Sequence[str]
) -> pa.Table:
    """Add ``tf_<column>`` to the records: the share of the records table's non-null
    values of ``column`` equal to the record's value, as Splink computes it."""
    for column in columns:
        values = records.column(column).to_pylist()
        frequencies: list[float | None] = []
        for value in values:
            if value is None:
                frequencies.append(None)
                continue
            share = con.execute(
                f"SELECT CAST(count(*) FILTER (WHERE {quote(column)} = ?) AS DOUBLE) "
                f"/ count({quote(column)}) FROM {quote(CUSTOMER_RECORDS)}",
                [value],
            ).fetchall()[0][0]
            frequencies.append(share)
        records = records.append_column(f"tf_{column}", pa.array(frequencies, pa.float64()))
    return records


@contextmanager
def splink_session(
    records: pa.Table, model: dict[str, Any]
) -> Iterator[tuple[Linker, DuckDBAPI, duckdb.DuckDBPyConnection]]:
    """A Splink linker over the two records in a private in-memory DuckDB."""
    mem = duckdb.connect()
    try:
        api = DuckDBAPI(connection=mem)
        linker = Linker(api.register(records), model, log_level=logging.WARNING)
        yield linker, api, mem
    finally:
        mem.close()


def score_now(
    linker: Linker, api: DuckDBAPI, mem: duckdb.DuckDBPyConnection, records: pa.Table
) -> dict[str, Any]:
    """Score the two records (left first) as the run would have, vetoes included."""
    left = api.register(records.slice(0, 1))
    right = api.register(records.slice(1, 1))
    scored = linker.inference.score_pair(left, right, include_found_by_blocking_rules=True)
    mem.execute(f"CREATE TABLE {_SCORED} AS SELECT * FROM {scored.physical_name}")
    apply_link_vetoes(mem, _SCORED)
    rows = fetch_dicts(mem, f"SELECT * FROM {_SCORED}", [])
    return rows[0]


def write_waterfall_chart(
    linker: Linker, row: dict[str, Any], chart_path: Path, *, mask: bool
) -> None:
    """Splink's waterfall chart of the scored row as an offline HTML page (without
    compared values when ``mask``)."""
    chart_path.parent.mkdir(parents=True, exist_ok=True)
    chart = linker.visualisations.waterfall_chart(
        [row], filter_nulls=True, remove_sensitive_data=mask
    )
    chart.save_offline_chart(str(chart_path), overwrite=True, print_msg=False)
