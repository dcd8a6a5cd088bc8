"""Splink's labelling tool over uncertain pairs, for stewards to label offline.

The pairs are a seeded sample of the scored pairs near the match threshold; the
stewards' download is a labels file :func:`training.labels.load_labels` reads as is.

Examples:
    ```py
    written = write_labelling_tool(
        con, records_table="customer_records", pairs_table="pairwise_matches",
        model=stored.model, threshold=0.95, band=2.0, sample_size=50, seed=42,
        out_path=Path("artifacts/labelling/labelling_tool.html"),
    )
    ```
"""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path
from typing import Any

import duckdb
from splink import DuckDBAPI, Linker

from linkage.tables import CLERICAL_LABELS
from linkage.warehouse import column_schema, drop_splink_tables, quote, table_exists

logger = logging.getLogger(__name__)

_SAMPLE_TABLE = "__splink__meld_labelling_sample"


def match_weight(probability: float) -> float:
    """The match weight (log2 odds) of a match probability.

    Examples:
        >>> match_weight(0.5), round(match_weight(0.95), 3)
        (0.0, 4.248)
    """
    return math.log2(probability / (1 - probability))


def write_labelling_tool(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    model: dict[str, Any],
    threshold: float,
    band: float,
    sample_size: int,
    seed: int,
    out_path: Path,
) -> int:
    """Write Splink's labelling tool (one offline HTML page) for uncertain pairs.

    The pairs are a seeded random sample of the scored pairs whose match weight is
    within ``band`` of the threshold's match weight, leaving out pairs already in
    ``clerical_labels``. The page shows the records' values side by side, so it holds
    personal data: it stays beside the warehouse and is never sent to MLflow. Stewards
    label the pairs and download a CSV that :func:`load_labels` reads as is (its ids are
    Meld unique ids).

    Splink's public API builds the tool for one record against all others
    (``labelling_tool_for_specific_record``); this renders the same page over the
    sampled pairs with the function that API uses.

    Args:
        con: Warehouse connection.
        records_table: The records the model scored (``customer_records``).
        pairs_table: The scored pairs (``pairwise_matches``).
        model: The Splink model that scored them.
        threshold: Match probability of the decision boundary.
        band: Half-width of the sampled band, in match weight (log2 odds).
        sample_size: Most pairs to put in the tool.
        seed: Seed of the sample: same pairs table and seed, same sample.
        out_path: The HTML file to write.

    Returns:
        The number of pairs in the tool (0 writes no file).
    """
    from splink.internals.labelling_tool import render_labelling_tool_html

    centre = match_weight(threshold)
    candidates = _unlabelled_pairs_near(con, pairs_table, centre, band)
    chosen = random.Random(seed).sample(candidates, min(sample_size, len(candidates)))
    logger.info(
        "labelling tool: %d of %d pairs within %.1f of match weight %.2f",
        len(chosen),
        len(candidates),
        band,
        centre,
    )
    if not chosen:
        return 0
    # Splink's tool blanks missing values with "", which a nullable boolean column
    # (phone_valid_l) refuses: such columns go as text.
    booleans = [name for name, kind in column_schema(con, pairs_table) if kind == "BOOLEAN"]
    casts = ", ".join(f"CAST(p.{quote(c)} AS VARCHAR) AS {quote(c)}" for c in booleans)
    as_text = f" REPLACE ({casts})" if booleans else ""
    con.execute(
        f"CREATE OR REPLACE TABLE {_SAMPLE_TABLE} AS SELECT p.*{as_text} "
        f"FROM {quote(pairs_table)} AS p "
        "JOIN (SELECT unnest(?) AS l, unnest(?) AS r) AS s "
        "ON p.unique_id_l = s.l AND p.unique_id_r = s.r ORDER BY p.match_weight DESC",
        [[pair[0] for pair in chosen], [pair[1] for pair in chosen]],
    )
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(records_table), model, log_level=logging.WARNING)
    try:
        comparisons = db_api.register(_SAMPLE_TABLE)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        render_labelling_tool_html(linker, comparisons, out_path=str(out_path), overwrite=True)
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)
    return len(chosen)


def _unlabelled_pairs_near(
    con: duckdb.DuckDBPyConnection, pairs_table: str, centre: float, band: float
) -> list[tuple[Any, ...]]:
    """Scored pairs within ``band`` of match weight ``centre`` that no label names yet,
    ordered by their ids."""
    exclude = ""
    if table_exists(con, CLERICAL_LABELS):
        exclude = (
            f"AND NOT EXISTS (SELECT 1 FROM {CLERICAL_LABELS} AS l "
            "WHERE l.unique_id_l = least(p.unique_id_l, p.unique_id_r) "
            "AND l.unique_id_r = greatest(p.unique_id_l, p.unique_id_r))"
        )
    return con.execute(
        f"SELECT p.unique_id_l, p.unique_id_r FROM {quote(pairs_table)} AS p "
        f"WHERE p.match_weight BETWEEN ? AND ? {exclude} ORDER BY 1, 2",
        [centre - band, centre + band],
    ).fetchall()
