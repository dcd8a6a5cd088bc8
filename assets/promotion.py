"""Promotion asset: the evaluated model version becomes champion when it is good enough."""

import dagster as dg
from dagster import AssetExecutionContext

from assets.evaluation import EVALUATION_GROUP
from assets.metadata import table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.config.project import ProjectConfig
from linkage.tables import LINKAGE_EVALUATION, MODEL_PROMOTIONS
from linkage.warehouse import quote
from training.promotion import CHALLENGER, CHAMPION, model_aliases, promote

PROMOTION_ASSET = "model_promotion"


def build_promotion_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """``model_promotion`` when the config names a truth file or clerical labels, else
    nothing: without an evaluation, the first version is champion from registration and
    later versions stay challengers until one is promoted by hand in the MLflow registry."""
    if project.truth is None and project.labels is None:
        return []
    metric = project.promotion.metric
    tolerance = project.promotion.tolerance

    @dg.asset(
        name=PROMOTION_ASSET,
        group_name=EVALUATION_GROUP,
        kinds={"duckdb", "mlflow"},
        deps=[LINKAGE_EVALUATION],
    )
    def model_promotion(
        context: AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
    ) -> dg.MaterializeResult:
        """Champion and challenger: the model version of the latest linkage_evaluation
        (the challenger) becomes the registry's champion when its promotion.metric is no
        worse than the champion's recorded score by more than promotion.tolerance (with
        only clerical labels, the metric's label_ variant is compared); a
        champion without a recorded score always yields. Each decision, with both scores
        and the reason, is appended to the model_promotions table and tagged on the
        challenger's MLflow run. The job score_customers scores with the champion."""
        target = mlflow.target()
        with warehouse.connect() as con:
            rows = con.execute(
                f"SELECT model_version, metric, value FROM {quote(LINKAGE_EVALUATION)} "
                f"WHERE evaluated_at = (SELECT max(evaluated_at) FROM {quote(LINKAGE_EVALUATION)})"
            ).fetchall()
            if not rows:
                raise dg.Failure(
                    description=f"{LINKAGE_EVALUATION} is empty: materialize it before "
                    f"{PROMOTION_ASSET}"
                )
            version = rows[0][0]
            scores = {name: value for _, name, value in rows}
            compared = metric
            if compared not in scores and f"label_{compared}" in scores:
                compared = f"label_{compared}"  # evaluated against clerical labels only
            if compared not in scores:
                raise dg.Failure(
                    description=f"{project.config_path}: promotion.metric: '{metric}' is not "
                    f"among the metrics of the latest evaluation of version {version}: "
                    f"{sorted(scores)}"
                )
            decision = promote(
                target,
                target.registered_model,
                version,
                compared,
                float(scores[compared]),
                tolerance,
                con,
            )
            metadata = table_metadata(con, MODEL_PROMOTIONS)
        aliases = model_aliases(target, target.registered_model)
        context.log.info(
            "version %s %s: %s",
            version,
            "promoted" if decision.promoted else "not promoted",
            decision.reason,
        )
        extra = {}
        if decision.champion_score is not None:
            extra["champion_score"] = decision.champion_score
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "promoted": decision.promoted,
                "reason": decision.reason,
                "metric": compared,
                "tolerance": tolerance,
                "challenger_version": version,
                "challenger_score": decision.challenger_score,
                **extra,
                "champion_version_before": decision.champion_version_before or "none",
                "champion_version": aliases.get(CHAMPION, "none"),
                "challenger_alias_version": aliases.get(CHALLENGER, "none"),
                "mlflow_ui": dg.MetadataValue.text(mlflow.ui_command()),
            }
        )

    return [model_promotion]
