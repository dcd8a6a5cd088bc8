"""The run report's evaluation section: this run's metrics and the recent history.

``linkage_evaluation`` completes the ledger's metrics and gives the headline metrics of
the last evaluated runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import duckdb

from linkage.audit.run_report.markup import Html, html_table, missing_table, mono, note
from linkage.tables import LINKAGE_EVALUATION
from linkage.warehouse import table_exists

logger = logging.getLogger(__name__)

HEADLINE_METRICS = (
    "pairwise_f1",
    "cluster_f1",
    "bcubed_f1",
    "adjusted_rand_index",
    "label_pairwise_f1",
    "label_cluster_f1",
    "best_threshold",
)
"""Metrics shown in the evaluation history across runs (those present)."""


def run_metrics(con: duckdb.DuckDBPyConnection, entry: Mapping[str, Any]) -> dict[str, Any]:
    """The ledger's metrics, completed by ``linkage_evaluation`` rows of this run."""
    metrics = dict(entry.get("metrics") or {})
    run_id = entry.get("dagster_run_id")
    if run_id and table_exists(con, LINKAGE_EVALUATION):
        for metric, value in con.execute(
            f"SELECT metric, value FROM {LINKAGE_EVALUATION} WHERE dagster_run_id = ? "
            "ORDER BY evaluated_at",
            [run_id],
        ).fetchall():
            metrics.setdefault(metric, value)
    return metrics


def _evaluation_history(con: duckdb.DuckDBPyConnection) -> Html:
    """The headline metrics of the last ten evaluated runs, newest first."""
    rows = con.execute(
        "WITH runs AS (SELECT dagster_run_id, max(evaluated_at) AS at "
        f"FROM {LINKAGE_EVALUATION} GROUP BY 1 ORDER BY 2 DESC LIMIT 10) "
        "SELECT r.at, e.dagster_run_id, e.model_version, e.metric, e.value "
        f"FROM {LINKAGE_EVALUATION} AS e JOIN runs AS r "
        "ON e.dagster_run_id = r.dagster_run_id AND e.evaluated_at = r.at "
        "ORDER BY r.at DESC"
    ).fetchall()
    by_run: dict[tuple[Any, Any, Any], dict[str, float]] = {}
    for at, run_id, version, metric, value in rows:
        by_run.setdefault((at, run_id, version), {})[metric] = value
    shown = [m for m in HEADLINE_METRICS if any(m in values for values in by_run.values())]
    if not by_run:
        return note("linkage_evaluation is empty.")
    return html_table(
        ["evaluated at", "Dagster run", "model version", *shown],
        [
            (str(at), mono(run_id), version, *(values.get(m) for m in shown))
            for (at, run_id, version), values in by_run.items()
        ],
        table_id="evaluation-history",
    )


def evaluation_section(con: duckdb.DuckDBPyConnection, metrics: Mapping[str, Any]) -> Html:
    """This run's metrics and the recent evaluations of other runs."""
    parts = [Html("<h3>This run</h3>")]
    if metrics:
        parts.append(html_table(["metric", "value"], metrics.items(), table_id="metrics"))
    else:
        parts.append(
            note(
                "No evaluation for this run: the config names no truth file or labels, "
                "or the run stopped before the evaluation."
            )
        )
    parts.append(Html("<h3>Recent evaluations</h3>"))
    if not table_exists(con, LINKAGE_EVALUATION):
        parts.append(missing_table(LINKAGE_EVALUATION))
        return Html("".join(parts))
    parts.append(_evaluation_history(con))
    return Html("".join(parts))
