"""Promotion asset: the evaluated model version becomes champion when it is good enough."""

import dagster as dg
from dagster import AssetExecutionContext

from assets.evaluation import EVALUATION_GROUP
from assets.failures import failure_at
from assets.metadata import table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.config import ProjectConfig
from linkage.tables import LINKAGE_EVALUATION, MODEL_PROMOTIONS
from training.promotion import CHALLENGER, CHAMPION
from training.steps.promotion import PROMOTION_ASSET, promote_evaluated_version


def build_promotion_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """``model_promotion`` when the config names a truth file or clerical labels, else
    nothing: without an evaluation, the first version is champion from registration and
    later versions stay challengers until one is promoted by hand in the MLflow registry."""
    if project.truth is None and project.labels is None:
        return []
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
        with warehouse.connect() as con, failure_at(project.config_path):
            promotion = promote_evaluated_version(con, project, mlflow.target())
            metadata = table_metadata(con, MODEL_PROMOTIONS)
        decision, aliases = promotion.decision, promotion.aliases
        context.log.info(
            "version %s %s: %s",
            promotion.version,
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
                "metric": promotion.metric,
                "tolerance": tolerance,
                "challenger_version": promotion.version,
                "challenger_score": decision.challenger_score,
                **extra,
                "champion_version_before": decision.champion_version_before or "none",
                "champion_version": aliases.get(CHAMPION, "none"),
                "challenger_alias_version": aliases.get(CHALLENGER, "none"),
                "mlflow_ui": dg.MetadataValue.text(mlflow.ui_command()),
            }
        )

    return [model_promotion]
