"""Score record pairs with a trained Splink model."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import Any

import duckdb
from splink import DuckDBAPI, Linker

from linkage.atomic import scratch_table, swap_tables, transaction
from linkage.model.comparison_limit import check_comparison_limit
from linkage.model.vetoes import (
    DEFAULT_LINK_VETOES,
    apply_link_vetoes,
    record_vetoes_in_force,
)
from linkage.warehouse import drop_splink_tables, quote, row_count

logger = logging.getLogger(__name__)


def predict_pairs(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    model: dict[str, Any],
    floor: float,
    out_table: str,
    max_comparisons: float | None = None,
    vetoes: Sequence[str] | None = None,
    commit_with: Callable[[duckdb.DuckDBPyConnection], None] | None = None,
) -> int:
    """Score every blocked pair of ``records_table`` and keep those at or above ``floor``.

    The output keeps each pair's compared values (``<column>_l``/``_r``), comparison
    levels (``gamma_*``), partial match weights (``mw_*``) and term-frequency
    adjustments (``mw_tf_adj_*``), so each link can be explained later, and
    ``link_veto`` names the veto that forbids the link, if any. The pairs are built in
    a scratch table and swapped in at the end (:mod:`linkage.atomic`), so a run killed
    while scoring leaves the previous ``out_table``.

    Args:
        con: Warehouse connection.
        records_table: Standardised records with ``unique_id``.
        model: Trained Splink model (settings JSON with m and u probabilities).
        floor: Smallest match probability kept.
        out_table: Table to (re)create with the scored pairs.
        max_comparisons: When given, the blocked pairs are counted first (cheaply, see
            :func:`linkage.comparison_limit.check_comparison_limit`) and scoring does not
            start when there are more, instead of running out of memory part-way.

    Returns:
        Number of pairs kept.

    Raises:
        ComparisonLimitError: The model's blocking rules generate more than
            ``max_comparisons`` pairs; the message names the rule contributing most and
            the config key ``model.max_comparisons``.
        vetoes: Link vetoes to apply (``clustering.link_vetoes``); default
            :data:`~linkage.model.vetoes.DEFAULT_LINK_VETOES`.
        commit_with: Further writes that must commit with the new pairs (which model
            scored them); run inside the transaction that swaps them in.
    """
    if max_comparisons is not None:
        check_comparison_limit(
            con,
            records_table,
            model.get("blocking_rules_to_generate_predictions", []),
            max_comparisons,
        )
    db_api = DuckDBAPI(connection=con)
    records = db_api.register(records_table)
    linker = Linker(records, model, log_level=logging.WARNING)
    scratch = scratch_table(out_table)
    try:
        predictions = linker.inference.predict(threshold_match_probability=floor)
        con.execute(
            f"CREATE OR REPLACE TABLE {quote(scratch)} AS "
            f"SELECT * FROM {quote(predictions.physical_name)} "
            "ORDER BY match_weight DESC, unique_id_l, unique_id_r"
        )
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)
    applied = DEFAULT_LINK_VETOES if vetoes is None else tuple(vetoes)
    apply_link_vetoes(con, scratch, applied)
    with transaction(con):  # the pairs, the vetoes applied and the caller's writes
        swap_tables(con, {out_table: scratch})
        record_vetoes_in_force(con, applied)
        if commit_with is not None:
            commit_with(con)
    pairs = row_count(con, out_table)
    logger.info("scored pairs: kept %d at match probability >= %s", pairs, floor)
    return pairs
