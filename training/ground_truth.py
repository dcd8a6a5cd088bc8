"""Load known entities (ground truth) and score a clustering and scored pairs against them.

Examples:
    ```py
    load_truth(con, path=Path("truth.csv"), source_column="source", id_column="record_id",
               entity_column="person_id")
    scores, unknown = evaluate_against_truth(con, "customer_clusters")
    judged = truth_judged_pairs_sql("pairwise_matches", "customer_clusters")
    curve = curve_from_judged_pairs(
        con, judged, true_pairs=count_true_pairs(con, "customer_clusters"), beta=1.0
    )
    ```
"""

from __future__ import annotations

import logging
from pathlib import Path

import duckdb

from linkage.errors import missing_columns_text
from linkage.ingest.deliveries import find_source_files
from linkage.ingest.readers.delivery import SourceError
from linkage.tables import GROUND_TRUTH
from linkage.warehouse import quote
from training.evaluate import ClusterScores, evaluate_clusters

logger = logging.getLogger(__name__)


def load_truth(
    con: duckdb.DuckDBPyConnection,
    *,
    path: Path,
    source_column: str,
    id_column: str,
    entity_column: str,
) -> int:
    """Load a truth file into ``ground_truth(unique_id, entity_id)``.

    Raises:
        SourceError: The file is missing or lacks one of the named columns.
    """
    files = find_source_files("truth", path)
    reader = "read_parquet(?)" if path.suffix == ".parquet" else "read_csv(?, all_varchar = true)"
    columns = [
        row[0]
        for row in con.execute(f"DESCRIBE SELECT * FROM {reader}", [str(files[0])]).fetchall()
    ]
    wanted = {
        "truth.source_column": source_column,
        "truth.id_column": id_column,
        "truth.entity_column": entity_column,
    }
    missing = missing_columns_text(wanted, columns)  # counts the file's columns, lists none
    if missing:
        raise SourceError(f"truth file '{files[0]}': {missing}")
    con.execute(
        f"CREATE OR REPLACE TABLE {GROUND_TRUTH} AS SELECT DISTINCT "
        f"CAST({quote(source_column)} AS VARCHAR) || ':' || CAST({quote(id_column)} AS VARCHAR) "
        f"AS unique_id, CAST({quote(entity_column)} AS VARCHAR) AS entity_id "
        f"FROM {reader} WHERE {quote(id_column)} IS NOT NULL",
        [str(files[0])],
    )
    return int(con.execute(f"SELECT count(*) FROM {GROUND_TRUTH}").fetchall()[0][0])


def evaluate_against_truth(
    con: duckdb.DuckDBPyConnection, clusters_table: str
) -> tuple[ClusterScores, int]:
    """Score ``clusters_table`` on the records that have a known entity.

    Returns:
        The scores and the number of clustered records without a known entity.

    Raises:
        ValueError: No clustered record has a known entity.
    """
    rows = con.execute(
        f"SELECT c.customer_id, t.entity_id FROM {quote(clusters_table)} AS c "
        f"JOIN {GROUND_TRUTH} AS t USING (unique_id) ORDER BY c.unique_id"
    ).fetchall()
    unknown = con.execute(
        f"SELECT count(*) FROM {quote(clusters_table)} "
        f"WHERE unique_id NOT IN (SELECT unique_id FROM {GROUND_TRUTH})"
    ).fetchall()[0][0]
    if not rows:
        raise ValueError("no clustered record appears in the ground truth")
    scores = evaluate_clusters([r[0] for r in rows], [r[1] for r in rows])
    return scores, int(unknown)


def count_true_pairs(con: duckdb.DuckDBPyConnection, clusters_table: str) -> int:
    """Record pairs of the same true entity among the clustered records the truth knows.

    This is the recall denominator of the threshold curve: it counts true pairs the
    blocking rules never generated, too.
    """
    rows = con.execute(
        "SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM ("
        f"SELECT t.entity_id, count(*) AS n FROM {GROUND_TRUTH} AS t "
        f"JOIN {quote(clusters_table)} AS c USING (unique_id) GROUP BY t.entity_id)"
    ).fetchall()
    return int(rows[0][0])


def truth_judged_pairs_sql(pairs_table: str, clusters_table: str) -> str:
    """SELECT of the scored pairs whose two records the truth knows, judged by it.

    Columns are :data:`training.threshold_curve.JUDGED_PAIR_COLUMNS`; ``is_match`` is
    whether both records belong to the same true entity.
    """
    return (
        "SELECT p.unique_id_l, p.unique_id_r, p.match_weight, p.match_probability, "
        "p.link_veto IS NULL AS linkable, cl.customer_id = cr.customer_id AS same_customer, "
        "tl.entity_id = tr.entity_id AS is_match "
        f"FROM {quote(pairs_table)} AS p "
        f"JOIN {GROUND_TRUTH} AS tl ON tl.unique_id = p.unique_id_l "
        f"JOIN {GROUND_TRUTH} AS tr ON tr.unique_id = p.unique_id_r "
        f"JOIN {quote(clusters_table)} AS cl ON cl.unique_id = p.unique_id_l "
        f"JOIN {quote(clusters_table)} AS cr ON cr.unique_id = p.unique_id_r"
    )
