"""The ``linkage_model`` table: every trained model version, newest last.

Scoring and clustering read the newest row, so they use exactly the model (and the
threshold) that training recorded, without retraining; scoring with the registry's
champion reads that version's row (:func:`model_by_version`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from linkage.tables import LINKAGE_MODEL, SCORING_MODEL
from linkage.warehouse import table_exists


@dataclass(frozen=True)
class StoredModel:
    """One trained model as kept in the warehouse."""

    model: dict[str, Any]
    trained_at: datetime
    match_threshold: float
    prediction_floor: float
    mlflow_run_id: str
    model_name: str
    model_version: str
    dagster_run_id: str


def record_model(con: duckdb.DuckDBPyConnection, stored: StoredModel) -> None:
    """Append a trained model to ``linkage_model``."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LINKAGE_MODEL} ("
        "trained_at TIMESTAMP, model_json VARCHAR, match_threshold DOUBLE, "
        "prediction_floor DOUBLE, mlflow_run_id VARCHAR, model_name VARCHAR, "
        "model_version VARCHAR, dagster_run_id VARCHAR)"
    )
    con.execute(
        f"INSERT INTO {LINKAGE_MODEL} VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            stored.trained_at,
            json.dumps(stored.model),
            stored.match_threshold,
            stored.prediction_floor,
            stored.mlflow_run_id,
            stored.model_name,
            stored.model_version,
            stored.dagster_run_id,
        ],
    )


_COLUMNS = (
    "model_json, trained_at, match_threshold, prediction_floor, mlflow_run_id, "
    "model_name, model_version, dagster_run_id"
)


def latest_model(con: duckdb.DuckDBPyConnection) -> StoredModel:
    """The most recently trained model.

    Raises:
        LookupError: No model has been trained in this warehouse yet.
    """
    if not table_exists(con, LINKAGE_MODEL):
        raise LookupError("no trained model in the warehouse: materialize linkage_model first")
    rows = con.execute(
        f"SELECT {_COLUMNS} FROM {LINKAGE_MODEL} ORDER BY trained_at DESC LIMIT 1"
    ).fetchall()
    if not rows:
        raise LookupError("no trained model in the warehouse: materialize linkage_model first")
    return _stored(rows[0])


def model_by_version(
    con: duckdb.DuckDBPyConnection, version: str, *, model_name: str | None = None
) -> StoredModel:
    """The model registered as ``version`` (of ``model_name``, when given).

    Raises:
        LookupError: No model with that version was trained in this warehouse.

    Examples:
        ```py
        stored = model_by_version(con, "3", model_name="meld-linkage")
        stored.match_threshold
        ```
    """
    rows = []
    if table_exists(con, LINKAGE_MODEL):
        rows = con.execute(
            f"SELECT {_COLUMNS} FROM {LINKAGE_MODEL} "
            "WHERE model_version = ? AND (CAST(? AS VARCHAR) IS NULL OR model_name = ?) "
            "ORDER BY trained_at DESC LIMIT 1",
            [str(version), model_name, model_name],
        ).fetchall()
    if not rows:
        named = f"{model_name} " if model_name else ""
        raise LookupError(f"no model {named}version {version} in the warehouse's {LINKAGE_MODEL}")
    return _stored(rows[0])


def record_scoring_model(con: duckdb.DuckDBPyConnection, stored: StoredModel) -> None:
    """Remember which model version scored ``pairwise_matches``.

    Clustering and evaluation read it back (:func:`scoring_model`), so they use the
    threshold of the model that scored the pairs, also when that is the champion
    rather than the newest model. A version trained elsewhere (a champion loaded from
    the MLflow registry) is appended to ``linkage_model`` first, so the warehouse keeps
    every model that scored its pairs (``meld reproduce`` needs them).
    """
    try:
        model_by_version(con, stored.model_version, model_name=stored.model_name)
    except LookupError:
        record_model(con, stored)
    con.execute(
        f"CREATE OR REPLACE TABLE {SCORING_MODEL} AS "
        "SELECT CAST(? AS VARCHAR) AS model_name, CAST(? AS VARCHAR) AS model_version, "
        "CAST(? AS VARCHAR) AS mlflow_run_id",
        [stored.model_name, stored.model_version, stored.mlflow_run_id],
    )


def scoring_model(con: duckdb.DuckDBPyConnection) -> StoredModel:
    """The model that scored the current ``pairwise_matches`` (else the newest model).

    Raises:
        LookupError: No model has been trained in this warehouse yet.
    """
    if table_exists(con, SCORING_MODEL):
        rows = con.execute(f"SELECT model_name, model_version FROM {SCORING_MODEL}").fetchall()
        if rows:
            name, version = rows[0]
            return model_by_version(con, version, model_name=name)
    return latest_model(con)


def _stored(row: tuple) -> StoredModel:
    return StoredModel(
        model=json.loads(row[0]),
        trained_at=row[1],
        match_threshold=float(row[2]),
        prediction_floor=float(row[3]),
        mlflow_run_id=row[4],
        model_name=row[5],
        model_version=row[6],
        dagster_run_id=row[7],
    )
