"""Load known entities (ground truth) and score a clustering against them."""

from __future__ import annotations

from pathlib import Path

import duckdb

from linkage.sources import SourceError, find_source_files
from linkage.warehouse import quote
from training.evaluate import ClusterScores, evaluate_clusters

TRUTH_TABLE = "ground_truth"


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
    for key, column in {
        "truth.source_column": source_column,
        "truth.id_column": id_column,
        "truth.entity_column": entity_column,
    }.items():
        if column not in columns:
            raise SourceError(
                f"truth file '{files[0]}': column '{column}' (config key {key}) not found; "
                f"the file has columns {columns}"
            )
    con.execute(
        f"CREATE OR REPLACE TABLE {TRUTH_TABLE} AS SELECT DISTINCT "
        f"CAST({quote(source_column)} AS VARCHAR) || ':' || CAST({quote(id_column)} AS VARCHAR) "
        f"AS unique_id, CAST({quote(entity_column)} AS VARCHAR) AS entity_id "
        f"FROM {reader} WHERE {quote(id_column)} IS NOT NULL",
        [str(files[0])],
    )
    return int(con.execute(f"SELECT count(*) FROM {TRUTH_TABLE}").fetchall()[0][0])


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
        f"JOIN {TRUTH_TABLE} AS t USING (unique_id) ORDER BY c.unique_id"
    ).fetchall()
    unknown = con.execute(
        f"SELECT count(*) FROM {quote(clusters_table)} "
        f"WHERE unique_id NOT IN (SELECT unique_id FROM {TRUTH_TABLE})"
    ).fetchall()[0][0]
    if not rows:
        raise ValueError("no clustered record appears in the ground truth")
    scores = evaluate_clusters([r[0] for r in rows], [r[1] for r in rows])
    return scores, int(unknown)
