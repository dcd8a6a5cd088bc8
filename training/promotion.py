"""Champion and challenger: which registered model version scores customers.

Every newly registered version gets the MLflow alias ``challenger``; the first version
of a registered model also becomes ``champion`` at once, so there is always a model to
score with. After an evaluation, :func:`promote` compares the challenger's score on the
configured metric with the champion's recorded score and moves ``champion`` to the
challenger when it is no worse by more than the tolerance. Every decision, with both
scores, is appended to the ``model_promotions`` table of the warehouse and recorded as
tags and metrics on the challenger's MLflow run.

The metric is read as "higher is better" (F1, precision, recall, adjusted Rand index).

Examples:
    ```py
    decision = promote(target, "meld-linkage", "3", "cluster_f1", 0.941, 0.005, con)
    decision.promoted, decision.reason
    model = mlflow.pyfunc.load_model("models:/meld-linkage@champion")
    ```
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

import duckdb
from mlflow.tracking import MlflowClient

from linkage.model.store import StoredModel, model_by_version
from linkage.tables import MODEL_PROMOTIONS
from linkage.warehouse import quote, table_exists
from training.mlflow_store import MlflowTarget, tracking_client

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT_DIR = "model"
"""Run artifact folder holding the Splink model JSON (see ``log_training_run``)."""

_SCORE_EPSILON = 1e-12
"""Slack for float rounding, so "worse by exactly the tolerance" counts as within it."""


@dataclass(frozen=True)
class PromotionDecision:
    """Whether a challenger became champion, why, and the scores compared.

    ``metric``, ``model_name`` and the versions are filled in by :func:`promote`; the
    pure rule :func:`decide_promotion` knows only the scores.
    """

    promoted: bool
    reason: str
    challenger_score: float
    champion_score: float | None
    tolerance: float
    metric: str | None = None
    model_name: str | None = None
    challenger_version: str | None = None
    champion_version_before: str | None = None


def decide_promotion(
    challenger_score: float, champion_score: float | None, tolerance: float
) -> PromotionDecision:
    """The promotion rule: promote unless the challenger is worse by more than ``tolerance``.

    Args:
        challenger_score: The challenger's evaluation score (higher is better).
        champion_score: The champion's recorded score, or None when there is no champion
            or it has no recorded score on this metric: the challenger then wins.
        tolerance: How much worse than the champion the challenger may score and still win.

    Returns:
        The decision with a one-sentence reason.

    Raises:
        ValueError: A score is not a finite number, or the tolerance is negative.

    Examples:
        >>> decide_promotion(0.90, None, 0.005).promoted
        True
        >>> decide_promotion(0.93, 0.90, 0.005).promoted
        True
        >>> decide_promotion(0.898, 0.90, 0.005).promoted
        True
        >>> decide_promotion(0.80, 0.90, 0.005).promoted
        False
    """
    if not math.isfinite(challenger_score):
        raise ValueError(f"challenger score must be a finite number, got {challenger_score}")
    if champion_score is not None and not math.isfinite(champion_score):
        raise ValueError(f"champion score must be a finite number, got {champion_score}")
    if tolerance < 0 or not math.isfinite(tolerance):
        raise ValueError(f"tolerance must be a number >= 0, got {tolerance}")
    if champion_score is None:
        return PromotionDecision(
            promoted=True,
            reason="no champion score to compare with: the challenger becomes champion",
            challenger_score=challenger_score,
            champion_score=None,
            tolerance=tolerance,
        )
    shortfall = champion_score - challenger_score
    promoted = shortfall <= tolerance + _SCORE_EPSILON
    if shortfall <= 0:
        comparison = f"{challenger_score:.4f}, at least the champion's {champion_score:.4f}"
    else:
        comparison = (
            f"{challenger_score:.4f}, {shortfall:.4f} below the champion's {champion_score:.4f}"
        )
    verdict = (
        f"within the tolerance {tolerance:.4f}: promoted"
        if promoted
        else f"more than the tolerance {tolerance:.4f}: not promoted"
    )
    return PromotionDecision(
        promoted=promoted,
        reason=f"challenger scores {comparison}; {verdict}",
        challenger_score=challenger_score,
        champion_score=champion_score,
        tolerance=tolerance,
    )


def model_aliases(target: MlflowTarget, model_name: str) -> dict[str, str]:
    """Alias -> version of a registered model (empty when the model is not registered).

    Examples:
        ```py
        model_aliases(target, "meld-linkage")  # {"champion": "2", "challenger": "3"}
        ```
    """
    client = tracking_client(target)
    models = client.search_registered_models(filter_string=f"name = '{_quoted(model_name)}'")
    if not models:
        return {}
    return {alias: str(version) for alias, version in models[0].aliases.items()}


def champion_version(target: MlflowTarget, model_name: str | None = None) -> str | None:
    """The version the ``champion`` alias points at, or None before the first training.

    Examples:
        ```py
        champion_version(target)  # "2"
        ```
    """
    return model_aliases(target, model_name or target.registered_model).get(CHAMPION)


def register_new_version(target: MlflowTarget, model_name: str, version: str) -> bool:
    """Give a just-registered version the ``challenger`` alias, and ``champion`` when the
    registered model has no champion yet (its first version).

    Returns:
        Whether the version became champion.

    Examples:
        ```py
        register_new_version(target, "meld-linkage", "1")  # True: the first version
        register_new_version(target, "meld-linkage", "2")  # False: waits for evaluation
        ```
    """
    client = tracking_client(target)
    client.set_registered_model_alias(model_name, CHALLENGER, version)
    if CHAMPION in model_aliases(target, model_name):
        return False
    client.set_registered_model_alias(model_name, CHAMPION, version)
    logger.info("%s version %s is the first version: champion at registration", model_name, version)
    return True


def recorded_score(
    con: duckdb.DuckDBPyConnection, model_name: str, version: str, metric: str
) -> float | None:
    """The newest score recorded in ``model_promotions`` for a version on a metric.

    Examples:
        ```py
        recorded_score(con, "meld-linkage", "2", "cluster_f1")  # 0.937, or None
        ```
    """
    if not table_exists(con, MODEL_PROMOTIONS):
        return None
    rows = con.execute(
        f"SELECT challenger_score FROM {quote(MODEL_PROMOTIONS)} "
        "WHERE model_name = ? AND challenger_version = ? AND metric = ? "
        "ORDER BY decided_at DESC LIMIT 1",
        [model_name, version, metric],
    ).fetchall()
    return float(rows[0][0]) if rows else None


def promote(
    target: MlflowTarget,
    model_name: str,
    version: str,
    metric: str,
    score: float,
    tolerance: float,
    con: duckdb.DuckDBPyConnection,
) -> PromotionDecision:
    """Decide whether an evaluated version becomes champion, and record the decision.

    The champion's score is its newest row in ``model_promotions`` for ``metric``. A
    champion without one (the first version, champion since registration, or after
    ``metric`` changed) counts as having no score, so the challenger wins. Evaluating
    the champion itself keeps it champion and records its new score.

    Args:
        target: The MLflow store.
        model_name: Registered model name.
        version: The evaluated (challenger) version.
        metric: Evaluation metric compared, higher is better (``cluster_f1``).
        score: The challenger's value of ``metric``.
        tolerance: How much worse than the champion the challenger may score.
        con: Warehouse connection; ``model_promotions`` gets one row.

    Returns:
        The decision, with the metric, model name and versions filled in.

    Examples:
        ```py
        decision = promote(target, "meld-linkage", "2", "cluster_f1", 0.94, 0.005, con)
        ```
    """
    before = champion_version(target, model_name)
    champion_score = recorded_score(con, model_name, before, metric) if before else None
    decision = decide_promotion(score, champion_score, tolerance)
    if before == version:
        decision = replace(
            decision,
            promoted=True,
            reason=f"version {version} is already the champion; its score is recorded",
        )
    elif before is not None and champion_score is None:
        decision = replace(
            decision,
            reason=f"champion version {before} has no recorded {metric}: "
            "the challenger becomes champion",
        )
    decision = replace(
        decision,
        metric=metric,
        model_name=model_name,
        challenger_version=version,
        champion_version_before=before,
    )
    client = tracking_client(target)
    if decision.promoted and before != version:
        client.set_registered_model_alias(model_name, CHAMPION, version)
    _append_decision(con, decision)
    _log_decision(client, client.get_model_version(model_name, version).run_id, decision)
    logger.info(
        "%s version %s %s (%s %.4f, champion %s): %s",
        model_name,
        version,
        "promoted" if decision.promoted else "not promoted",
        metric,
        score,
        before,
        decision.reason,
    )
    return decision


def champion_model(con: duckdb.DuckDBPyConnection, target: MlflowTarget) -> StoredModel:
    """The champion version's model, from ``linkage_model`` or else from its MLflow run.

    Raises:
        LookupError: The registered model has no champion yet.

    Examples:
        ```py
        stored = champion_model(con, target)
        stored.model_version, stored.match_threshold
        ```
    """
    name = target.registered_model
    version = champion_version(target, name)
    if version is None:
        raise LookupError(
            f"registered model '{name}' has no '{CHAMPION}' version in {target.tracking_uri}: "
            "train one first (job train_model)"
        )
    try:
        return model_by_version(con, version, model_name=name)
    except LookupError:
        logger.info("%s version %s is not in this warehouse: loading it from MLflow", name, version)
        return _model_from_mlflow(target, name, version)


def _model_from_mlflow(target: MlflowTarget, name: str, version: str) -> StoredModel:
    """Rebuild a stored model from its training run: model JSON, threshold and floor."""
    client = tracking_client(target)
    run_id = client.get_model_version(name, version).run_id
    run = client.get_run(run_id)
    files = [
        item.path
        for item in client.list_artifacts(run_id, MODEL_ARTIFACT_DIR)
        if item.path.endswith(".json")
    ]
    if not files:
        raise LookupError(
            f"run {run_id} of {name} version {version} has no model JSON under "
            f"'{MODEL_ARTIFACT_DIR}/'"
        )
    with tempfile.TemporaryDirectory() as folder:
        path = Path(client.download_artifacts(run_id, files[0], folder))
        model = json.loads(path.read_text(encoding="utf-8"))
    return StoredModel(
        model=model,
        trained_at=datetime.fromtimestamp(run.info.start_time / 1000, tz=timezone.utc).replace(
            tzinfo=None
        ),
        match_threshold=float(run.data.params["match_threshold"]),
        prediction_floor=float(run.data.params["prediction_floor"]),
        mlflow_run_id=run_id,
        model_name=name,
        model_version=version,
        dagster_run_id=run.data.tags.get("dagster_run_id", ""),
    )


def _append_decision(con: duckdb.DuckDBPyConnection, decision: PromotionDecision) -> None:
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {quote(MODEL_PROMOTIONS)} ("
        "decided_at TIMESTAMP, model_name VARCHAR, challenger_version VARCHAR, "
        "champion_version_before VARCHAR, metric VARCHAR, challenger_score DOUBLE, "
        "champion_score DOUBLE, tolerance DOUBLE, promoted BOOLEAN, reason VARCHAR)"
    )
    con.execute(
        f"INSERT INTO {quote(MODEL_PROMOTIONS)} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            datetime.now(timezone.utc).replace(tzinfo=None),
            decision.model_name,
            decision.challenger_version,
            decision.champion_version_before,
            decision.metric,
            decision.challenger_score,
            decision.champion_score,
            decision.tolerance,
            decision.promoted,
            decision.reason,
        ],
    )


def _log_decision(client: MlflowClient, run_id: str, decision: PromotionDecision) -> None:
    """Tags and metrics on the challenger's run; the names are listed in training.tracking."""
    client.set_tag(run_id, "promotion.decision", "promoted" if decision.promoted else "rejected")
    client.set_tag(run_id, "promotion.reason", decision.reason)
    client.set_tag(run_id, "promotion.metric", decision.metric or "")
    client.set_tag(
        run_id, "promotion.champion_version_before", decision.champion_version_before or "none"
    )
    client.log_metric(run_id, "promotion_challenger_score", decision.challenger_score)
    client.log_metric(run_id, "promotion_tolerance", decision.tolerance)
    if decision.champion_score is not None:
        client.log_metric(run_id, "promotion_champion_score", decision.champion_score)


def _quoted(value: str) -> str:
    """A value for an MLflow filter string, single quotes escaped."""
    return value.replace("'", "\\'")
