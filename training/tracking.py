"""Record training runs and models in MLflow.

Only model facts go to MLflow: parameter names, rule descriptions, counts, scores,
decisions. Never a record value or a record id: the Splink model JSON holds m and u
probabilities and SQL over column names, no data; the term-frequency lookups shipped
with the pyfunc model hold hashes of values, not values (:mod:`training.tf_lookups`).
Charts that show record values (waterfall charts, term frequencies, the comparison
viewer) stay beside the warehouse; MLflow gets masked copies of them, or nothing, as
``mlflow.record_level_artifacts`` says (:mod:`training.chart_masking`).

Every run uses the same names, so the MLflow UI's compare view lines runs up; never
rename one.

Parameters: ``link_type``, ``comparisons``, ``deterministic_rules``,
``deterministic_recall``, ``training_rules``, ``u_max_pairs``, ``seed``,
``em_max_iterations``, ``match_threshold``, ``prediction_floor``,
``blocking_rule_<n>``, ``comparison.<comparison>``,
``fixed.<comparison>.<level>.m`` / ``.u``.

Metrics:

- training: ``records``, ``comparisons_to_score`` (pairs the blocking rules generate),
  ``probability_two_random_records_match``, ``training_seconds``,
  ``em_iterations_total``, ``em_iterations_session_<n>``, ``em_converged_session_<n>``
  (1 when EM settled before the iteration cap), ``em_final_max_change_session_<n>``, and
  ``em_max_change_session_<n>`` with one value per iteration (its step): the largest
  change of any m or u, the convergence curve in the MLflow UI's metric chart;
- first scoring of the version
  (:func:`training.scoring_artifacts.log_scoring_artifacts`): ``scored_pairs_kept``,
  ``scored_pairs_above_threshold``;
- evaluation (:func:`log_evaluation`): the names of
  :class:`training.evaluate.ClusterScores` (``pairwise_f1``, ``cluster_f1``,
  ``bcubed_f1``, ``adjusted_rand_index``, ...), ``label_*`` for clerical labels, and
  ``best_threshold``, ``best_f_beta``, ... of the threshold curve;
- promotion (:func:`training.promotion.promote`): ``promotion_challenger_score``,
  ``promotion_champion_score``, ``promotion_tolerance``.

Tags: ``dagster_run_id``, ``config_hash``, ``promotion.decision`` (``promoted`` or
``rejected``), ``promotion.reason``, ``promotion.metric``,
``promotion.champion_version_before``.

Artifacts: ``model/model.json`` (the Splink model), ``charts/match_weights.html``,
``charts/m_u_parameters.html`` and any other chart training saves,
``charts/match_weight_histogram.png``, ``charts/tf_<comparison>.html`` (term-frequency
adjustments, names and places only, masked), ``dashboards/comparison_viewer.html`` (a
sample of scored pairs, masked), ``evaluation/...`` (precision-recall chart, threshold
curves, masked waterfall charts), and the pyfunc model ``linkage_model`` (model JSON and
hashed term-frequency lookups) registered as a new version with alias ``challenger``
(and ``champion`` when it is the first).

Examples:
    ```py
    tracked = log_training_run(target, result, options, model_path, tags={"dagster_run_id": rid})
    log_scoring_artifacts(target, tracked.run_id, con, pairs_table="pairwise_matches", ...)
    log_evaluation(target, tracked.run_id, {"cluster_f1": 0.93})
    ```
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow

from linkage.model.rule_selection import choice_summary
from linkage.model.training_options import TrainingOptions
from linkage.tables import LINKAGE_MODEL
from training.mlflow_store import MlflowTarget, ensure_experiment, tracking_client
from training.promotion import MODEL_ARTIFACT_DIR, register_new_version
from training.pyfunc import MODEL_ARTIFACT, TF_ARTIFACT_PREFIX, SplinkPairScorer
from training.tf_lookups import hashed_lookup_copy
from training.train import TrainingResult

logger = logging.getLogger(__name__)

PIP_REQUIREMENTS = ["splink==5.0.0", "duckdb==2.0.0", "pandas", "mlflow"]


@dataclass(frozen=True)
class TrackedModel:
    """A training run and the model version it registered."""

    run_id: str
    experiment_id: str
    model_name: str
    model_version: str
    model_uri: str


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
        "m_from_clerical_labels": options.labels_table is not None,
        "probability_floor": options.model.probability_floor,
        "robust_comparisons": options.model.robust_comparisons,
        "blocking": options.model.blocking,
    }
    for index, rule in enumerate(result.prediction_rules, start=1):
        params[f"blocking_rule_{index}"] = rule
    for comparison in result.model["comparisons"]:
        name = comparison["output_column_name"]
        levels = [level.get("label_for_charts", "") for level in comparison["comparison_levels"]]
        params[f"comparison.{name}"] = " / ".join(levels)[:500]
    params.update(fixed_level_params(result))
    return params


def fixed_level_params(result: TrainingResult) -> dict[str, float]:
    """``fixed.<comparison>.<level>.m`` / ``.u``: the m and u set by hand in the config.

    The level is its chart label made safe for MLflow keys, e.g.
    ``fixed.email.exact_match_on_email.m``.
    """
    params = {}
    for fixed in result.fixed_levels:
        level = re.sub(r"[^a-z0-9]+", "_", fixed.label.lower()).strip("_")
        for kind, value in (("m", fixed.m), ("u", fixed.u)):
            if value is not None:
                params[f"fixed.{fixed.comparison}.{level}.{kind}"] = value
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
    if result.rule_choice is not None:
        metrics["blocking_estimated_reach"] = result.rule_choice.reach_of_chosen
        metrics["blocking_candidates"] = float(len(result.rule_choice.candidates))
        metrics["blocking_rules_chosen"] = float(len(result.rule_choice.chosen))
        metrics["blocking_choice_seconds"] = result.rule_choice.seconds
    if result.floor_report is not None:
        metrics["levels_raised_to_floor"] = float(len(result.floor_report.raised))
        metrics["levels_unobserved"] = float(len(result.floor_report.unobserved))
        metrics["levels_extreme_weight"] = float(len(result.floor_report.extreme))
    for index, session in enumerate(result.em_sessions, start=1):
        metrics[f"em_iterations_session_{index}"] = float(session.iterations)
        metrics[f"em_converged_session_{index}"] = float(session.converged)
        if session.max_changes:
            metrics[f"em_final_max_change_session_{index}"] = session.max_changes[-1]
    return metrics


def log_em_convergence(result: TrainingResult) -> None:
    """``em_max_change_session_<n>`` per iteration (step) in the active run."""
    for index, session in enumerate(result.em_sessions, start=1):
        for step, change in enumerate(session.max_changes, start=1):
            mlflow.log_metric(f"em_max_change_session_{index}", change, step=step)


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

    The version gets the alias ``challenger``, and ``champion`` too when it is the
    registered model's first (see :mod:`training.promotion`).

    Args:
        target: MLflow store, experiment and registered model name.
        result: The trained model and its training facts.
        options: Options the model was trained with.
        model_path: The Splink model JSON on disk.
        tf_paths: Term-frequency lookup (parquet) per column, shipped with the model
            with its values hashed (:func:`hashed_lookups`).
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
        log_em_convergence(result)
        if result.rule_choice is not None:
            mlflow.log_dict(choice_summary(result.rule_choice), "training/blocking_choice.json")
        if result.floor_report is not None:
            report = result.floor_report.as_dict()
            mlflow.log_dict(report, "training/probability_floor.json")
            if report["unobserved"] or report["extreme_weights"]:
                mlflow.set_tag(
                    "training.warning",
                    f"{len(report['unobserved'])} level(s) never observed, "
                    f"{len(report['extreme_weights'])} beyond +/-15 bits: "
                    "see training/probability_floor.json",
                )
        mlflow.log_artifact(str(model_path), artifact_path=MODEL_ARTIFACT_DIR)
        for chart in result.charts.values():
            mlflow.log_artifact(str(chart), artifact_path="charts")
        artifacts = {MODEL_ARTIFACT: str(model_path)}
        artifacts.update(
            {f"{TF_ARTIFACT_PREFIX}{c}": str(p) for c, p in hashed_lookups(tf_paths).items()}
        )
        info = mlflow.pyfunc.log_model(
            name=LINKAGE_MODEL,
            python_model=SplinkPairScorer(),
            artifacts=artifacts,
            pip_requirements=PIP_REQUIREMENTS,
            registered_model_name=target.registered_model,
        )
        version = str(info.registered_model_version)
        run_id = run.info.run_id
        if register_new_version(target, target.registered_model, version):
            mlflow.set_tags(
                {
                    "promotion.decision": "promoted",
                    "promotion.reason": "first version of the registered model: "
                    "champion at registration",
                    "promotion.champion_version_before": "none",
                }
            )
    logger.info("MLflow run %s registered %s version %s", run_id, target.registered_model, version)
    return TrackedModel(
        run_id=run_id,
        experiment_id=experiment_id,
        model_name=target.registered_model,
        model_version=version,
        model_uri=f"models:/{target.registered_model}/{version}",
    )


def hashed_lookups(tf_paths: dict[str, Path]) -> dict[str, Path]:
    """Copies of the term-frequency lookups with every value hashed, written in a
    ``hashed`` folder beside each: what the pyfunc model ships (see
    :mod:`training.tf_lookups`)."""
    return {
        column: hashed_lookup_copy(path, column, path.parent / "hashed" / path.name)
        for column, path in tf_paths.items()
    }


def log_evaluation(target: MlflowTarget, run_id: str, metrics: dict[str, float]) -> None:
    """Add evaluation metrics to an existing training run."""
    mlflow.set_tracking_uri(target.tracking_uri)
    client = tracking_client(target)
    for name, value in metrics.items():
        client.log_metric(run_id, name, value)


def log_evaluation_artifacts(
    target: MlflowTarget, run_id: str, paths: Sequence[Path], *, artifact_path: str = "evaluation"
) -> None:
    """Attach evaluation files (charts, curves) to an existing training run.

    Only value-free files and masked copies belong here: a waterfall chart shows the
    compared values of the pair it explains, so the caller passes its masked copy
    (:attr:`training.evaluation_charts.WorstPair.masked_chart_path`), or nothing under
    ``mlflow.record_level_artifacts: none``.
    """
    client = tracking_client(target)
    for path in paths:
        client.log_artifact(run_id, str(path), artifact_path=artifact_path)
