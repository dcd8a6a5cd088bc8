"""Evaluation asset: how well the customers match the known truth, when there is one."""

from datetime import datetime, timezone

import dagster as dg
from dagster import AssetExecutionContext

from assets.metadata import table_metadata
from linkage.sources import SourceError
from orchestration.project import ProjectConfig
from orchestration.resources import MlflowResource, WarehouseResource
from training.ground_truth import evaluate_against_truth, load_truth
from training.model_store import latest_model
from training.tracking import log_evaluation

EVALUATION_TABLE = "linkage_evaluation"


def build_evaluation_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """``linkage_evaluation`` when the config names a truth file, else nothing."""
    truth = project.truth
    if truth is None:
        return []
    truth_path = project.resolve(truth.path)

    @dg.asset(group_name="evaluation", kinds={"duckdb", "mlflow"}, deps=["customer_clusters"])
    def linkage_evaluation(
        context: AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
    ) -> dg.MaterializeResult:
        """Pairwise and cluster precision, recall and F1 of customer_clusters against the
        configured truth file, on the records the truth knows. One row is appended per
        run, and the metrics are logged to the MLflow run of the model that was used."""
        with warehouse.connect() as con:
            try:
                load_truth(
                    con,
                    path=truth_path,
                    source_column=truth.source_column,
                    id_column=truth.id_column,
                    entity_column=truth.entity_column,
                )
            except SourceError as exc:
                raise dg.Failure(description=f"{project.config_path}: truth: {exc}") from exc
            scores, unknown = evaluate_against_truth(con, "customer_clusters")
            stored = latest_model(con)
            metrics = scores.as_metrics()
            con.execute(
                f"CREATE TABLE IF NOT EXISTS {EVALUATION_TABLE} ("
                "evaluated_at TIMESTAMP, dagster_run_id VARCHAR, mlflow_run_id VARCHAR, "
                "model_version VARCHAR, metric VARCHAR, value DOUBLE)"
            )
            evaluated_at = datetime.now(timezone.utc).replace(tzinfo=None)
            con.executemany(
                f"INSERT INTO {EVALUATION_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                [
                    [evaluated_at, context.run_id, stored.mlflow_run_id, stored.model_version, k, v]
                    for k, v in metrics.items()
                ],
            )
            metadata = table_metadata(con, EVALUATION_TABLE)
        log_evaluation(mlflow.target(), stored.mlflow_run_id, metrics)
        context.log.info("cluster F1 %.4f, pairwise F1 %.4f", scores.cluster_f1, scores.pairwise_f1)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                **{name: float(value) for name, value in metrics.items()},
                "records_without_truth": unknown,
                "model_version": stored.model_version,
                "mlflow_run_id": stored.mlflow_run_id,
            }
        )

    return [linkage_evaluation]
