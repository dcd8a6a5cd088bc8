"""The evaluation step of a run (``linkage_evaluation`` and ``evaluation_worst_pairs``):
how well the customers agree with the truth file or the clerical labels, the
precision-recall curve over thresholds, and waterfall charts of the worst mistakes; all
logged to the MLflow run of the model that scored the pairs.

Examples:
    ```py
    evaluation = evaluate_run(con, project, target, run_id="r1")
    evaluation.metrics["cluster_f1"], evaluation.evidence
    ```
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from linkage.atomic import transaction
from linkage.config import ProjectConfig
from linkage.model.store import StoredModel, scoring_model
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_RECORDS,
    EVALUATION_FOLDER,
    EVALUATION_WORST_PAIRS,
    LINKAGE_EVALUATION,
    PAIRWISE_MATCHES,
)
from training.evaluation_charts import (
    WorstPair,
    precision_recall_png,
    worst_pairs,
    write_waterfall_charts,
)
from training.ground_truth import count_true_pairs, evaluate_against_truth, truth_judged_pairs_sql
from training.label_evaluation import evaluate_against_labels, labels_judged_pairs_sql
from training.mlflow_store import MlflowTarget
from training.project_inputs import load_project_labels, load_project_truth
from training.threshold_curve import ThresholdCurve, curve_from_judged_pairs
from training.tracking import log_evaluation, log_evaluation_artifacts


@dataclass
class Evaluation:
    """What :func:`evaluate_run` measured and wrote."""

    model: StoredModel
    run_dir: Path
    beta: float = 1.0
    """The F-beta the best threshold maximises."""
    metrics: dict[str, float] = field(default_factory=dict)
    curves: dict[str, ThresholdCurve] = field(default_factory=dict)
    judged_sql: dict[str, str] = field(default_factory=dict)
    extra: dict[str, object] = field(default_factory=dict)
    """Facts that are not metrics: records without truth, how label ids were mapped."""
    evidence: str = "truth"
    """What judged the worst pairs: ``truth`` when there is a truth file, else ``labels``."""
    worst: list[WorstPair] = field(default_factory=list)
    precision_recall_png: bytes = b""

    @property
    def chart_path(self) -> Path:
        return self.run_dir / "precision_recall.png"

    @property
    def waterfalls_dir(self) -> Path:
        return self.run_dir / "waterfalls"


def _against_truth(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, evaluation: Evaluation
) -> None:
    scores, unknown = evaluate_against_truth(con, CUSTOMER_CLUSTERS)
    evaluation.metrics.update(scores.as_metrics())
    evaluation.extra["records_without_truth"] = unknown
    judged = evaluation.judged_sql["truth"] = truth_judged_pairs_sql(
        PAIRWISE_MATCHES, CUSTOMER_CLUSTERS
    )
    curve = evaluation.curves["truth"] = curve_from_judged_pairs(
        con,
        judged,
        true_pairs=count_true_pairs(con, CUSTOMER_CLUSTERS),
        beta=project.evaluation.beta,
    )
    evaluation.metrics.update(curve.metrics())


def _against_labels(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, evaluation: Evaluation
) -> None:
    summary = load_project_labels(con, project)
    label_scores = evaluate_against_labels(
        con,
        clusters_table=CUSTOMER_CLUSTERS,
        pairs_table=PAIRWISE_MATCHES,
        threshold=evaluation.model.match_threshold,
    )
    evaluation.metrics.update(label_scores.as_metrics())
    if summary is not None:
        evaluation.extra["labels_id_mapping"] = summary.id_mapping
    judged = evaluation.judged_sql["labels"] = labels_judged_pairs_sql(
        PAIRWISE_MATCHES, CUSTOMER_CLUSTERS
    )
    curve = evaluation.curves["labels"] = curve_from_judged_pairs(
        con, judged, true_pairs=label_scores.matches, beta=project.evaluation.beta
    )
    evaluation.metrics.update(curve.metrics("label_"))


def evaluate_run(
    con: duckdb.DuckDBPyConnection, project: ProjectConfig, target: MlflowTarget, *, run_id: str
) -> Evaluation:
    """Evaluate ``customer_clusters`` and ``pairwise_matches`` against the truth file and
    the clerical labels the project names; append the metrics to ``linkage_evaluation``,
    replace ``evaluation_worst_pairs``, and log metrics, curves and charts to MLflow.

    Raises:
        SourceError: The truth file cannot be read ("truth: ...").
        LabelsError: The labels file cannot be used ("labels: ...").
    """
    evaluation = Evaluation(
        model=scoring_model(con),
        run_dir=project.artifacts / EVALUATION_FOLDER / run_id,
        beta=project.evaluation.beta,
    )
    if load_project_truth(con, project):
        _against_truth(con, project, evaluation)
    if project.labels is not None:
        _against_labels(con, project, evaluation)
    evaluation.evidence = "truth" if "truth" in evaluation.judged_sql else "labels"
    evaluation.worst = write_waterfall_charts(
        con,
        records_table=CUSTOMER_RECORDS,
        pairs_table=PAIRWISE_MATCHES,
        model=evaluation.model.model,
        pairs=worst_pairs(
            con,
            evaluation.judged_sql[evaluation.evidence],
            limit=project.evaluation.worst_examples,
        ),
        out_dir=evaluation.waterfalls_dir,
        masked_dir=evaluation.waterfalls_dir / "masked"
        if project.mlflow.record_level_artifacts == "masked"
        else None,
    )
    evaluated_at = datetime.now(timezone.utc).replace(tzinfo=None)
    with transaction(con):  # the metrics and the worst pairs of one evaluation
        _append_metrics(con, evaluated_at, run_id, evaluation.model, evaluation.metrics)
        _write_worst_pairs(con, evaluated_at, run_id, evaluation)
    _log_to_mlflow(target, evaluation)
    return evaluation


def _log_to_mlflow(target: MlflowTarget, evaluation: Evaluation) -> None:
    """The precision-recall chart and threshold curves as files, then to the model's run."""
    stored = evaluation.model
    evaluation.precision_recall_png = precision_recall_png(
        evaluation.curves, current_threshold=stored.match_threshold
    )
    evaluation.run_dir.mkdir(parents=True, exist_ok=True)
    evaluation.chart_path.write_bytes(evaluation.precision_recall_png)
    files = [evaluation.chart_path] + [
        curve.write_csv(evaluation.run_dir / f"threshold_curve_{name}.csv")
        for name, curve in evaluation.curves.items()
    ]
    log_evaluation(target, stored.mlflow_run_id, evaluation.metrics)
    log_evaluation_artifacts(target, stored.mlflow_run_id, files)
    # Only the masked copies leave the warehouse (none under record_level_artifacts: none).
    charts = [p.masked_chart_path for p in evaluation.worst if p.masked_chart_path is not None]
    log_evaluation_artifacts(
        target, stored.mlflow_run_id, charts, artifact_path="evaluation/waterfalls"
    )


def _append_metrics(
    con: duckdb.DuckDBPyConnection,
    evaluated_at: datetime,
    run_id: str,
    stored: StoredModel,
    metrics: dict[str, float],
) -> None:
    """Append one ``linkage_evaluation`` row per metric."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {LINKAGE_EVALUATION} ("
        "evaluated_at TIMESTAMP, dagster_run_id VARCHAR, mlflow_run_id VARCHAR, "
        "model_version VARCHAR, metric VARCHAR, value DOUBLE)"
    )
    con.executemany(
        f"INSERT INTO {LINKAGE_EVALUATION} VALUES (?, ?, ?, ?, ?, ?)",
        [
            [evaluated_at, run_id, stored.mlflow_run_id, stored.model_version, name, value]
            for name, value in metrics.items()
        ],
    )


def _write_worst_pairs(
    con: duckdb.DuckDBPyConnection, evaluated_at: datetime, run_id: str, evaluation: Evaluation
) -> None:
    """Replace ``evaluation_worst_pairs`` with this evaluation's worst pairs."""
    con.execute(
        f"CREATE OR REPLACE TABLE {EVALUATION_WORST_PAIRS} ("
        "evaluated_at TIMESTAMP, dagster_run_id VARCHAR, model_version VARCHAR, "
        "evidence VARCHAR, kind VARCHAR, rank INTEGER, unique_id_l VARCHAR, "
        "unique_id_r VARCHAR, match_weight DOUBLE, match_probability DOUBLE, chart_path VARCHAR)"
    )
    if not evaluation.worst:
        return
    con.executemany(
        f"INSERT INTO {EVALUATION_WORST_PAIRS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            [
                evaluated_at,
                run_id,
                evaluation.model.model_version,
                evaluation.evidence,
                pair.kind,
                pair.rank,
                pair.unique_id_l,
                pair.unique_id_r,
                pair.match_weight,
                pair.match_probability,
                str(pair.chart_path) if pair.chart_path else None,
            ]
            for pair in evaluation.worst
        ],
    )
