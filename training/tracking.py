"""Record training runs and models in MLflow.

Only model facts go to MLflow: parameter names, rule descriptions, counts, scores,
charts and the model itself. Never a record value: the Splink model JSON holds
m and u probabilities and SQL over column names, no data.

Examples:
    ```py
    tracked = log_training_run(target, result, options, model_path, tags={"dagster_run_id": rid})
    log_evaluation(target, tracked.run_id, {"cluster_f1": 0.93})
    ```
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
from mlflow.tracking import MlflowClient

from training.pyfunc import MODEL_ARTIFACT, TF_ARTIFACT_PREFIX, SplinkPairScorer
from training.train import TrainingOptions, TrainingResult

logger = logging.getLogger(__name__)

PIP_REQUIREMENTS = ["splink==5.0.0", "duckdb==2.0.0", "pandas", "mlflow"]


@dataclass(frozen=True)
class MlflowTarget:
    """Where to track: store, experiment, artifact folder and registered model name."""

    tracking_uri: str
    experiment: str
    artifact_location: str
    registered_model: str


@dataclass(frozen=True)
class TrackedModel:
    """A training run and the model version it registered."""

    run_id: str
    experiment_id: str
    model_name: str
    model_version: str
    model_uri: str


def ensure_experiment(target: MlflowTarget) -> str:
    """Point MLflow at the target and return the experiment id, creating it if needed."""
    mlflow.set_tracking_uri(target.tracking_uri)
    client = MlflowClient(target.tracking_uri)
    experiment = client.get_experiment_by_name(target.experiment)
    if experiment is not None:
        return experiment.experiment_id
    return client.create_experiment(target.experiment, artifact_location=target.artifact_location)


def training_params(
    result: TrainingResult, options: TrainingOptions, *, threshold: float, floor: float
) -> dict[str, Any]:
    """The run's parameters: settings summary, blocking rules, thresholds, sampling."""
    params: dict[str, Any] = {
        "link_type": "dedupe_only",
        "comparisons": ", ".join(result.comparisons),
        "deterministic_rules": " | ".join(result.deterministic_rules),
        "deterministic_recall": options.deterministic_recall,
        "training_rules": " | ".join(result.training_rules),
        "u_max_pairs": int(options.u_max_pairs),
        "seed": options.seed,
        "em_max_iterations": options.em_max_iterations,
        "match_threshold": threshold,
        "prediction_floor": floor,
    }
    for index, rule in enumerate(result.prediction_rules, start=1):
        params[f"blocking_rule_{index}"] = rule
    for comparison in result.model["comparisons"]:
        name = comparison["output_column_name"]
        levels = [level.get("label_for_charts", "") for level in comparison["comparison_levels"]]
        params[f"comparison.{name}"] = " / ".join(levels)[:500]
    return params


def training_metrics(result: TrainingResult) -> dict[str, float]:
    """The run's numeric facts, named stably so runs compare side by side."""
    metrics = {
        "records": float(result.records),
        "comparisons_to_score": float(result.comparisons_to_score),
        "probability_two_random_records_match": result.probability_two_random_records_match,
        "training_seconds": result.seconds,
        "em_iterations_total": float(sum(s.iterations for s in result.em_sessions)),
    }
    for index, session in enumerate(result.em_sessions, start=1):
        metrics[f"em_iterations_session_{index}"] = float(session.iterations)
    return metrics


def log_training_run(
    target: MlflowTarget,
    result: TrainingResult,
    options: TrainingOptions,
    model_path: Path,
    *,
    tf_paths: dict[str, Path],
    threshold: float,
    floor: float,
    tags: dict[str, str],
) -> TrackedModel:
    """Log one training run and register its model as a new version.

    Args:
        target: MLflow store, experiment and registered model name.
        result: The trained model and its training facts.
        options: Options the model was trained with.
        model_path: The Splink model JSON on disk.
        tf_paths: Term-frequency lookup (parquet) per column, shipped with the model.
        threshold: Match probability used for clustering.
        floor: Smallest match probability kept among scored pairs.
        tags: Run tags, e.g. the Dagster run id.

    Returns:
        The run id and the registered model version.
    """
    experiment_id = ensure_experiment(target)
    with mlflow.start_run(experiment_id=experiment_id, run_name="train-linkage-model") as run:
        mlflow.set_tags(tags)
        mlflow.log_params(training_params(result, options, threshold=threshold, floor=floor))
        mlflow.log_metrics(training_metrics(result))
        mlflow.log_artifact(str(model_path), artifact_path="model")
        for chart in result.charts.values():
            mlflow.log_artifact(str(chart), artifact_path="charts")
        artifacts = {MODEL_ARTIFACT: str(model_path)}
        artifacts.update({f"{TF_ARTIFACT_PREFIX}{c}": str(p) for c, p in tf_paths.items()})
        info = mlflow.pyfunc.log_model(
            name="linkage_model",
            python_model=SplinkPairScorer(),
            artifacts=artifacts,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=target.registered_model,
        )
        version = str(info.registered_model_version)
        run_id = run.info.run_id
    logger.info("MLflow run %s registered %s version %s", run_id, target.registered_model, version)
    return TrackedModel(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=target.registered_model,
        model_version=version,
        model_uri=f"models:/{target.registered_model}/{version}",
    )


def log_evaluation(target: MlflowTarget, run_id: str, metrics: dict[str, float]) -> None:
    """Add evaluation metrics to an existing training run."""
    mlflow.set_tracking_uri(target.tracking_uri)
    client = MlflowClient(target.tracking_uri)
    for name, value in metrics.items():
        client.log_metric(run_id, name, value)


def log_evaluation_artifacts(
    target: MlflowTarget, run_id: str, paths: Sequence[Path], *, artifact_path: str = "evaluation"
) -> None:
    """Attach evaluation files (charts, curves) to an existing training run.

    Waterfall charts show the compared values of the pairs they explain: they go only
    to artifacts, which sit beside the warehouse, never to parameters, tags or metrics.
    """
    client = MlflowClient(target.tracking_uri)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path=artifact_path)
