"""Re-run a ledger run's scoring and clustering and compare the customers.

Given the run's ledger entry and its scoring input (``customer_records`` as the run
saw it, in a scratch warehouse), :func:`rescore_and_cluster` scores the pairs with the
same model version, applies the steward decisions that were recorded by the end of
the run, clusters with the run's threshold and method, and compares which records
are together with the run's ``partition_sha256`` (and, when the run's customers
snapshot is still there, counts the records whose customer differs).

Customer ids are not compared: they depend on every earlier run. The grouping of
records into customers is what a run decides.

Examples:
    ```py
    outcome = rescore_and_cluster(scratch, source=warehouse_con, entry=row.entry)
    outcome.identical, outcome.records_in_other_customers
    ```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from linkage.audit.run_entry import scoring_input_sha256
from linkage.audit.run_facts import partition_sha256
from linkage.cluster.overrides.clustering import cluster_with_overrides
from linkage.cluster.overrides.decisions import ensure_override_tables
from linkage.model.scoring import predict_pairs
from linkage.model.store import model_by_version
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_RECORDS,
    PAIRWISE_MATCHES,
    STEWARD_OVERRIDES,
    STEWARD_UNMERGE_RESOLUTIONS,
)
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

_OVERRIDE_TIME_COLUMNS = {
    STEWARD_OVERRIDES: "recorded_at",
    STEWARD_UNMERGE_RESOLUTIONS: "resolved_at",
}


@dataclass
class ReproduceOutcome:
    """What reproducing a run found.

    Attributes:
        run_id: The ledger run reproduced.
        identical: Whether the records are grouped into customers exactly as the run
            grouped them; None when the run could not be re-run (see ``problems``).
        inputs: Where the scoring input came from (``warehouse`` or ``source files``).
        problems: Why the run could not be re-run or why the result may differ.
        model_name: Model used.
        model_version: Version used.
        match_threshold: Threshold used.
        clustering_method: Method used.
        overrides_applied: Steward decisions recorded by the end of the run.
        customers_recorded: Customers the run produced.
        customers_reproduced: Customers the re-run produced.
        partition_sha256_recorded: The run's partition hash.
        partition_sha256_reproduced: The re-run's partition hash.
        records_in_other_customers: Records whose fellow records differ, when the run's
            snapshot is available.
        seconds: Time taken.
    """

    run_id: str
    identical: bool | None = None
    inputs: str | None = None
    problems: list[str] = field(default_factory=list)
    model_name: str | None = None
    model_version: str | None = None
    match_threshold: float | None = None
    clustering_method: str | None = None
    overrides_applied: int = 0
    customers_recorded: int | None = None
    customers_reproduced: int | None = None
    partition_sha256_recorded: str | None = None
    partition_sha256_reproduced: str | None = None
    records_in_other_customers: int | None = None
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return asdict(self)


def copy_table(
    source: duckdb.DuckDBPyConnection,
    target: duckdb.DuckDBPyConnection,
    table: str,
    *,
    where: str = "",
    params: Mapping[str, Any] | None = None,
) -> int:
    """Copy ``table`` (rows matching ``where``) from one warehouse into another."""
    sql = f"SELECT * FROM {quote(table)}" + (f" WHERE {where}" if where else "")
    data = source.sql(sql, params=dict(params or {})).to_arrow_table()
    target.register("__meld_copy", data)
    try:
        target.execute(f"CREATE OR REPLACE TABLE {quote(table)} AS SELECT * FROM __meld_copy")
    finally:
        target.unregister("__meld_copy")
    return data.num_rows


def current_records_match(con: duckdb.DuckDBPyConnection, entry: Mapping[str, Any]) -> bool:
    """Whether the warehouse's ``customer_records`` are the records the run scored."""
    recorded = entry.get("scoring_input_sha256")
    return recorded is not None and scoring_input_sha256(con) == recorded


def _copy_overrides(
    source: duckdb.DuckDBPyConnection, scratch: duckdb.DuckDBPyConnection, until: datetime
) -> int:
    ensure_override_tables(scratch)
    copied = 0
    for table, column in _OVERRIDE_TIME_COLUMNS.items():
        if table_exists(source, table):
            n = copy_table(
                source, scratch, table, where=f"{quote(column)} <= $until", params={"until": until}
            )
            copied += n if table == STEWARD_OVERRIDES else 0
    return copied


def _differing_records(scratch: duckdb.DuckDBPyConnection, snapshot: Path) -> int:
    recorded = scratch.read_parquet(str(snapshot)).to_arrow_table()
    scratch.register("__meld_recorded", recorded)
    try:
        rows = scratch.execute(
            "WITH rec AS ("
            "  SELECT unique_id, string_agg(unique_id, ',' ORDER BY unique_id) "
            "  OVER (PARTITION BY customer_id) AS grp FROM __meld_recorded"
            "), rep AS ("
            "  SELECT unique_id, string_agg(unique_id, ',' ORDER BY unique_id) "
            f"  OVER (PARTITION BY customer_id) AS grp FROM {quote(CUSTOMER_CLUSTERS)}"
            ") SELECT count(*) FROM rec FULL JOIN rep USING (unique_id) "
            "WHERE rec.grp IS DISTINCT FROM rep.grp"
        ).fetchall()
    finally:
        scratch.unregister("__meld_recorded")
    return int(rows[0][0])


def rescore_and_cluster(
    scratch: duckdb.DuckDBPyConnection,
    *,
    source: duckdb.DuckDBPyConnection,
    entry: Mapping[str, Any],
    inputs: str,
) -> ReproduceOutcome:
    """Score and cluster ``scratch``'s ``customer_records`` as the run did, and compare.

    Args:
        scratch: A scratch warehouse holding the run's ``customer_records``.
        source: The real warehouse (read-only is enough): the model and the steward
            decisions are read from it.
        entry: The run's ledger entry.
        inputs: Where the records came from, for the report.

    Returns:
        The comparison; ``identical`` is None when the model is not available.
    """
    started = time.perf_counter()
    run_id = str(entry.get("dagster_run_id"))
    thresholds = entry.get("thresholds") or {}
    clustering = (entry.get("config") or {}).get("clustering") or {}
    outcome = ReproduceOutcome(
        run_id=run_id,
        inputs=inputs,
        model_name=entry.get("model_name"),
        model_version=entry.get("model_version"),
        match_threshold=thresholds.get("match_threshold"),
        clustering_method=clustering.get("method", "best_links"),
        customers_recorded=(entry.get("counts") or {}).get("customers"),
        partition_sha256_recorded=entry.get("partition_sha256"),
    )
    try:
        stored = model_by_version(source, str(outcome.model_version), model_name=outcome.model_name)
    except LookupError as exc:
        outcome.problems.append(str(exc))
        return outcome
    if scoring_input_sha256(scratch) != entry.get("scoring_input_sha256"):
        outcome.problems.append(
            "the records rebuilt from the source files differ from the records the run "
            "scored (the code or the standardisation changed since)"
        )
    ended = datetime.fromisoformat(str(entry["ended_at"]))
    outcome.overrides_applied = _copy_overrides(source, scratch, ended)
    predict_pairs(
        scratch,
        records_table=CUSTOMER_RECORDS,
        model=stored.model,
        floor=float(thresholds.get("prediction_floor", stored.prediction_floor)),
        out_table=PAIRWISE_MATCHES,
        vetoes=thresholds.get("link_vetoes"),
    )
    cluster_with_overrides(
        scratch,
        records_table=CUSTOMER_RECORDS,
        pairs_table=PAIRWISE_MATCHES,
        threshold=float(outcome.match_threshold or stored.match_threshold),
        out_table=CUSTOMER_CLUSTERS,
        method=str(outcome.clustering_method),
    )
    outcome.partition_sha256_reproduced = partition_sha256(scratch, CUSTOMER_CLUSTERS)
    outcome.customers_reproduced = int(
        scratch.execute(
            f"SELECT count(DISTINCT customer_id) FROM {quote(CUSTOMER_CLUSTERS)}"
        ).fetchall()[0][0]
    )
    outcome.identical = outcome.partition_sha256_reproduced == outcome.partition_sha256_recorded
    snapshot = entry.get("customers_snapshot")
    if snapshot and Path(snapshot).is_file():
        outcome.records_in_other_customers = _differing_records(scratch, Path(snapshot))
    outcome.seconds = round(time.perf_counter() - started, 2)
    logger.info("reproduced run %s: %s", run_id, "identical" if outcome.identical else "different")
    return outcome
