"""Metadata every table asset shows in the Dagster UI."""

from __future__ import annotations

from typing import Any

import dagster as dg
import duckdb

from linkage.model.rule_selection import RuleChoice
from linkage.warehouse import column_schema, row_count
from training.probability_floor import WEIGHT_BOUND, FloorReport

_TYPE_NAMES = {"VARCHAR": "string", "BIGINT": "int", "INTEGER": "int", "DOUBLE": "float"}


def table_metadata(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    """Row count, table name and column schema of a warehouse table."""
    columns = [
        dg.TableColumn(name, _TYPE_NAMES.get(kind, kind.lower()))
        for name, kind in column_schema(con, table)
    ]
    return {
        "dagster/row_count": row_count(con, table),
        "dagster/table_name": f"warehouse.main.{table}",
        "dagster/column_schema": dg.TableSchema(columns=columns),
    }


def floor_metadata(report: FloorReport | None) -> dict[str, Any]:
    """The probability floor of a trained model and the levels it warns about."""
    if report is None:
        return {}
    warning = ""
    if report.unobserved or report.extreme:
        warning = (
            f"{len(report.unobserved)} level(s) never observed in training (neutral weight); "
            f"{len(report.extreme)} level(s) with a weight beyond +/-{WEIGHT_BOUND:.0f} bits"
        )
    return {
        "probability_floor": report.floor,
        "levels_raised_to_floor": len(report.raised),
        "levels_unobserved": dg.MetadataValue.text("; ".join(report.unobserved) or "none"),
        "levels_extreme_weight": dg.MetadataValue.text(
            "; ".join(f"{name} ({weight:+.1f})" for name, weight in report.extreme.items())
            or "none"
        ),
        "training_warning": dg.MetadataValue.text(warning or "none"),
    }


def blocking_choice_metadata(choice: RuleChoice | None) -> dict[str, Any]:
    """How automatic blocking chose the prediction rules, and what it leaves out."""
    if choice is None:
        return {"blocking_choice": dg.MetadataValue.text("rules fixed or given in the config")}
    return {
        "blocking_choice": dg.MetadataValue.text(choice.summary()),
        "blocking_estimated_reach": round(choice.reach_of_chosen, 4),
        "blocking_estimated_left_out": round(1 - choice.reach_of_chosen, 4),
        "blocking_budget": choice.budget,
    }
