"""Record training runs and models in MLflow.

Only model facts go to MLflow parameters, metrics and tags: parameter names, rule
descriptions, counts, scores, decisions. Never a record value: the Splink model JSON
holds m and u probabilities and SQL over column names, no data. Charts that show record
values (term frequencies, the comparison viewer) are artifacts only.

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
- first scoring of the version (:func:`log_scoring_artifacts`): ``scored_pairs_kept``,
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
adjustments, names and places only), ``dashboards/comparison_viewer.html`` (a sample of
scored pairs, shows record values), ``evaluation/...`` (precision-recall chart, threshold
curves, waterfall charts), and the pyfunc model ``linkage_model`` registered as a new
version with alias ``challenger`` (and ``champion`` when it is the first).

Examples:
    ```py
    tracked = log_training_run(target, result, options, model_path, tags={"dagster_run_id": rid})
    log_scoring_artifacts(target, tracked.run_id, con, pairs_table="pairwise_matches", ...)
    log_evaluation(target, tracked.run_id, {"cluster_f1": 0.93})
    ```
"""

from __future__ import annotations

import io
import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import matplotlib
import mlflow
from mlflow.tracking import MlflowClient

from linkage.tables import LINKAGE_MODEL
from linkage.warehouse import drop_splink_tables, quote
from training.mlflow_store import MlflowTarget, ensure_experiment
from training.promotion import MODEL_ARTIFACT_DIR, register_new_version
from training.pyfunc import MODEL_ARTIFACT, TF_ARTIFACT_PREFIX, SplinkPairScorer
from training.train import PRIVATE_TF_COLUMNS, TrainingOptions, TrainingResult

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

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
        log_em_convergence(result)
        mlflow.log_artifact(str(model_path), artifact_path=MODEL_ARTIFACT_DIR)
        for chart in result.charts.values():
            mlflow.log_artifact(str(chart), artifact_path="charts")
        artifacts = {MODEL_ARTIFACT: str(model_path)}
        artifacts.update({f"{TF_ARTIFACT_PREFIX}{c}": str(p) for c, p in tf_paths.items()})
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


HISTOGRAM_ARTIFACT = "charts/match_weight_histogram.png"
"""Present once a version's first scoring has been logged (:func:`scoring_artifacts_logged`)."""

DASHBOARD_SAMPLE = 300
"""Scored pairs sampled for the comparison viewer: it shows their record values."""

MAX_DASHBOARD_SAMPLE = 1000


@dataclass(frozen=True)
class ScoringArtifacts:
    """Files written from a model's scored pairs, and how many pairs the dashboard shows."""

    histogram: Path
    term_frequency_charts: dict[str, Path]
    comparison_viewer: Path | None
    sampled_pairs: int


def scoring_artifacts_logged(target: MlflowTarget, run_id: str) -> bool:
    """Whether the run already has the artifacts of :func:`log_scoring_artifacts`.

    Examples:
        ```py
        if not scoring_artifacts_logged(target, stored.mlflow_run_id):
            log_scoring_artifacts(target, stored.mlflow_run_id, con, ...)
        ```
    """
    client = MlflowClient(target.tracking_uri)
    folder = HISTOGRAM_ARTIFACT.rsplit("/", 1)[0]
    return any(item.path == HISTOGRAM_ARTIFACT for item in client.list_artifacts(run_id, folder))


def match_weight_histogram_png(
    con: duckdb.DuckDBPyConnection, pairs_table: str, *, threshold: float
) -> bytes:
    """Bars: scored pairs (log scale) per unit of match weight, with the match threshold.

    Counted in SQL, so any number of pairs makes a small chart.

    Examples:
        ```py
        png = match_weight_histogram_png(con, "pairwise_matches", threshold=0.95)
        ```
    """
    bins = con.execute(
        f"SELECT floor(match_weight) AS bin, count(*) FROM {quote(pairs_table)} "
        "WHERE match_weight IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.bar([float(b) + 0.5 for b, _ in bins], [n for _, n in bins], width=1.0, color="#264653")
    if bins:
        axis.set_yscale("log")
    threshold_weight = math.log2(threshold / (1 - threshold))
    axis.axvline(threshold_weight, color="#e76f51", linewidth=1.2, label="match threshold")
    axis.legend(loc="upper left", fontsize=8)
    axis.set_xlabel("match weight (log2 Bayes factor)")
    axis.set_ylabel("scored pairs")
    axis.set_title("Match weights of scored pairs")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def log_scoring_artifacts(
    target: MlflowTarget,
    run_id: str,
    con: duckdb.DuckDBPyConnection,
    *,
    pairs_table: str,
    records_table: str,
    model: dict[str, Any],
    threshold: float,
    out_dir: Path,
    sample: int = DASHBOARD_SAMPLE,
    seed: int = 42,
) -> ScoringArtifacts:
    """Chart a model's scored pairs and attach the charts to its training run.

    Writes into ``out_dir`` and logs: the match-weight histogram (PNG, counts only), one
    term-frequency adjustment chart per comparison adjusted on names or places (the ten
    most frequent values; e-mail, phone and identifiers are never charted), and Splink's
    comparison viewer dashboard over a seeded sample of at most ``sample`` scored pairs.
    The term-frequency charts and the dashboard show record values: they are artifacts
    beside the warehouse, never parameters, tags or metrics. Also logs the metrics
    ``scored_pairs_kept`` and ``scored_pairs_above_threshold``.

    Args:
        target: The MLflow store.
        run_id: The training run of the model that scored the pairs.
        con: Warehouse connection.
        pairs_table: Scored pairs (``pairwise_matches``).
        records_table: The records that were scored (``customer_records``), for the
            term frequencies.
        model: The Splink model JSON that scored the pairs.
        threshold: The model's match threshold (probability), marked on the histogram.
        out_dir: Folder for the files.
        sample: Most pairs in the comparison viewer, 1 to 1000.
        seed: Seed of the sample.

    Returns:
        The files written.

    Raises:
        ValueError: ``sample`` is outside 1 to 1000.

    Examples:
        ```py
        log_scoring_artifacts(
            target, stored.mlflow_run_id, con, pairs_table="pairwise_matches",
            records_table="customer_records", model=stored.model,
            threshold=stored.match_threshold, out_dir=Path("artifacts/scoring"),
        )
        ```
    """
    if not 1 <= sample <= MAX_DASHBOARD_SAMPLE:
        raise ValueError(f"sample must be 1 to {MAX_DASHBOARD_SAMPLE} pairs, got {sample}")
    out_dir.mkdir(parents=True, exist_ok=True)
    histogram = out_dir / Path(HISTOGRAM_ARTIFACT).name
    histogram.write_bytes(match_weight_histogram_png(con, pairs_table, threshold=threshold))
    kept, above = con.execute(
        f"SELECT count(*), count(*) FILTER (match_probability >= ?) FROM {quote(pairs_table)}",
        [threshold],
    ).fetchall()[0]
    tf_charts, viewer, sampled = _splink_scoring_charts(
        con,
        pairs_table=pairs_table,
        records_table=records_table,
        model=model,
        out_dir=out_dir,
        sample=sample,
        seed=seed,
    )
    client = MlflowClient(target.tracking_uri)
    for path in [histogram, *tf_charts.values()]:
        client.log_artifact(run_id, str(path), artifact_path="charts")
    if viewer is not None:
        client.log_artifact(run_id, str(viewer), artifact_path="dashboards")
    client.log_metric(run_id, "scored_pairs_kept", float(kept))
    client.log_metric(run_id, "scored_pairs_above_threshold", float(above))
    logger.info(
        "logged scoring charts to run %s (%d term-frequency charts, %d pairs in the viewer)",
        run_id,
        len(tf_charts),
        sampled,
    )
    return ScoringArtifacts(
        histogram=histogram,
        term_frequency_charts=tf_charts,
        comparison_viewer=viewer,
        sampled_pairs=sampled,
    )


def charted_tf_comparisons(model: dict[str, Any]) -> list[str]:
    """Comparisons with term-frequency adjustments on no private column (names, places).

    Examples:
        >>> level = {"tf_adjustment_column": "first_name"}
        >>> charted_tf_comparisons(
        ...     {"comparisons": [
        ...         {"output_column_name": "first_name", "comparison_levels": [level]},
        ...         {"output_column_name": "email",
        ...          "comparison_levels": [{"tf_adjustment_column": "email"}]},
        ...     ]}
        ... )
        ['first_name']
    """
    names = []
    for comparison in model["comparisons"]:
        columns = {
            level["tf_adjustment_column"]
            for level in comparison["comparison_levels"]
            if level.get("tf_adjustment_column")
        }
        if columns and not columns & PRIVATE_TF_COLUMNS:
            names.append(comparison["output_column_name"])
    return names


def _splink_scoring_charts(
    con: duckdb.DuckDBPyConnection,
    *,
    pairs_table: str,
    records_table: str,
    model: dict[str, Any],
    out_dir: Path,
    sample: int,
    seed: int,
) -> tuple[dict[str, Path], Path | None, int]:
    """Term-frequency charts and the comparison viewer (None when no pair was scored)."""
    from splink import DuckDBAPI, Linker

    sample_table = "__meld_comparison_viewer_sample"
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(records_table), model, log_level=logging.WARNING)
    charts: dict[str, Path] = {}
    viewer = None
    try:
        for name in charted_tf_comparisons(model):
            path = out_dir / f"tf_{name}.html"
            chart = linker.visualisations.tf_adjustment_chart(name, n_most_freq=10, n_least_freq=0)
            chart.save_offline_chart(str(path), overwrite=True, print_msg=False)
            charts[name] = path
        # Sizes and seeds are ints: SAMPLE takes no parameters.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote(sample_table)} AS "
            f"SELECT * FROM {quote(pairs_table)} "
            f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})"
        )
        sampled = int(con.execute(f"SELECT count(*) FROM {quote(sample_table)}").fetchall()[0][0])
        if sampled:
            viewer = out_dir / "comparison_viewer.html"
            # Splink's dashboard SQL reads the predictions under this name.
            predictions = db_api.register(sample_table, table_name="__splink__df_predict")
            linker.visualisations.comparison_viewer_dashboard(
                predictions, str(viewer), overwrite=True, num_example_rows=2
            )
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)
        con.execute(f"DROP TABLE IF EXISTS {quote(sample_table)}")
    return charts, viewer, sampled
