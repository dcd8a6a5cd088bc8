"""The model steps of a run, one call each: train and register a model version
(``linkage_model``), and score every blocked pair with it or with the champion
(``pairwise_matches``).

Examples:
    ```py
    trained = train_and_register(con, project, target, run_id="r1")
    scored = score_blocked_pairs(con, project, target, model="champion", run_id="r2")
    ```
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

import duckdb

from linkage.atomic import transaction
from linkage.config import ProjectConfig
from linkage.errors import MeldError, at_config_key
from linkage.model.rule_selection import clear_rule_choice, write_rule_choice
from linkage.model.scoring import predict_pairs
from linkage.model.store import (
    StoredModel,
    latest_model,
    record_model,
    record_scoring_model,
)
from linkage.model.training_options import TrainingOptions
from linkage.tables import (
    CUSTOMER_RECORDS,
    MODELS_FOLDER,
    PAIRWISE_MATCHES,
    SCORING_FOLDER,
)
from training.labels import LabelsSummary
from training.mlflow_store import MlflowTarget
from training.project_inputs import load_project_labels
from training.promotion import CHAMPION, champion_model
from training.scoring_artifacts import (
    log_scoring_artifacts,
    match_weight_histogram_png,
    scoring_artifacts_logged,
)
from training.tracking import TrackedModel, log_training_run
from training.train import TrainingResult, train_linkage_model

ModelChoice = Literal["latest", "champion"]


class NoChampionError(MeldError, LookupError):
    """Scoring with the champion was asked for, and the registry has none."""


@dataclass(frozen=True)
class TrainedModel:
    """What :func:`train_and_register` trained, where it is logged and kept."""

    options: TrainingOptions
    result: TrainingResult
    tracked: TrackedModel
    threshold: float
    model_path: Path
    labels: LabelsSummary | None
    """The clerical labels m was also estimated from, if any."""


def train_and_register(
    con: duckdb.DuckDBPyConnection,
    project: ProjectConfig,
    target: MlflowTarget,
    *,
    run_id: str,
    options: TrainingOptions | None = None,
    threshold: float | None = None,
) -> TrainedModel:
    """Train a model on ``customer_records``, log it to MLflow as a new registered
    version and keep it in ``linkage_model``.

    Args:
        con: Warehouse connection.
        project: The project config.
        target: The MLflow store.
        run_id: The pipeline run (the model's folder under ``artifacts/models``).
        options: Training options; default the project's
            (:meth:`~linkage.config.ProjectConfig.training_options`).
        threshold: Match threshold; default ``model.match_threshold``.

    Raises:
        LabelsError: ``labels.estimate_m`` is set and the labels file cannot be used.
    """
    options = options or project.training_options()
    threshold = threshold or project.model.match_threshold
    floor = project.model.prediction_floor
    labels = load_project_labels(con, project) if options.labels_table else None
    run_dir = project.artifacts / MODELS_FOLDER / run_id
    result = train_linkage_model(con, CUSTOMER_RECORDS, options, run_dir)
    model_path = run_dir / "model.json"
    model_path.write_text(json.dumps(result.model, indent=2), encoding="utf-8")
    tracked = log_training_run(
        target,
        result,
        options,
        model_path,
        tf_paths=result.term_frequencies,
        threshold=threshold,
        floor=floor,
        tags={"dagster_run_id": run_id, "config_hash": project.fingerprint()},
    )
    stored = StoredModel(
        model=result.model,
        trained_at=datetime.now(timezone.utc).replace(tzinfo=None),
        match_threshold=threshold,
        prediction_floor=floor,
        mlflow_run_id=tracked.run_id,
        model_name=tracked.model_name,
        model_version=tracked.model_version,
        dagster_run_id=run_id,
    )
    with transaction(con):  # the rules chosen and the model trained with them, together
        if result.rule_choice is not None:
            write_rule_choice(con, result.rule_choice)
        else:
            clear_rule_choice(con)
        record_model(con, stored)
    return TrainedModel(options, result, tracked, threshold, model_path, labels)


def scoring_model_choice(
    con: duckdb.DuckDBPyConnection, target: MlflowTarget, model: ModelChoice
) -> StoredModel:
    """The latest model trained in this warehouse, or the registry's champion.

    Raises:
        NoChampionError: ``model`` is champion and the registry has none.
    """
    if model != CHAMPION:
        return latest_model(con)
    try:
        return champion_model(con, target)
    except LookupError as exc:
        raise NoChampionError(str(exc)) from exc


@dataclass(frozen=True)
class ScoredPairs:
    """What :func:`score_blocked_pairs` kept, and with which model."""

    model: StoredModel
    pairs: int
    above_threshold: int
    histogram_png: bytes


def score_blocked_pairs(
    con: duckdb.DuckDBPyConnection,
    project: ProjectConfig,
    target: MlflowTarget,
    *,
    stored: StoredModel,
    run_id: str,
) -> ScoredPairs:
    """Score every blocked pair of ``customer_records`` with ``stored`` into
    ``pairwise_matches`` and make it the scoring model. The first scoring by a model
    version adds its scoring charts and comparison viewer to the version's MLflow run.

    Raises:
        ComparisonLimitError: The blocking rules generate more than
            ``model.max_comparisons`` pairs ("model.max_comparisons: ...").
    """
    with at_config_key("model.max_comparisons"):
        pairs = predict_pairs(
            con,
            records_table=CUSTOMER_RECORDS,
            model=stored.model,
            floor=stored.prediction_floor,
            out_table=PAIRWISE_MATCHES,
            max_comparisons=project.model.max_comparisons,
            vetoes=project.clustering.link_vetoes,
            commit_with=lambda con: record_scoring_model(con, stored),
        )
    above = con.execute(
        f"SELECT count(*) FROM {PAIRWISE_MATCHES} WHERE match_probability >= ?",
        [stored.match_threshold],
    ).fetchall()[0][0]
    histogram = match_weight_histogram_png(con, PAIRWISE_MATCHES, threshold=stored.match_threshold)
    if not scoring_artifacts_logged(target, stored.mlflow_run_id):
        log_scoring_artifacts(
            target,
            stored.mlflow_run_id,
            con,
            pairs_table=PAIRWISE_MATCHES,
            records_table=CUSTOMER_RECORDS,
            model=stored.model,
            threshold=stored.match_threshold,
            out_dir=project.artifacts / SCORING_FOLDER / run_id,
            seed=project.model.seed,
            record_level=project.mlflow.record_level_artifacts,
        )
    return ScoredPairs(stored, int(pairs), int(above), histogram)
