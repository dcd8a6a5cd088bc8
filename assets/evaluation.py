"""Evaluation assets: how well the customers match the known truth or clerical labels,
and the labelling tool that lets stewards label more pairs."""

from collections.abc import Iterator

import dagster as dg
from dagster import AssetExecutionContext
from pydantic import Field

from assets.failures import failure_at
from assets.metadata import table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.charts import markdown_image
from linkage.config import ProjectConfig
from linkage.master.customer_view import mask_reference
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    EVALUATION_WORST_PAIRS,
    LABELLING_TOOL,
    LINKAGE_EVALUATION,
    PAIRWISE_MATCHES,
)
from training.evaluation_charts import WorstPair
from training.steps.evaluation import Evaluation, evaluate_run
from training.steps.labelling import write_project_labelling_tool

EVALUATION_GROUP = "evaluation"

_WORST_PAIR_COLUMNS = [
    ("evidence", "string"),
    ("kind", "string"),
    ("rank", "int"),
    ("unique_id_l", "string"),
    ("unique_id_r", "string"),
    ("match_weight", "float"),
    ("match_probability", "float"),
    ("chart_path", "string"),
]


def _worst_pairs_metadata(evidence: str, pairs: list[WorstPair]) -> dg.MetadataValue:
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, kind) for name, kind in _WORST_PAIR_COLUMNS]
    )
    records = [
        dg.TableRecord(
            {
                "evidence": evidence,
                "kind": pair.kind,
                "rank": pair.rank,
                # Record ids can be identifiers (a card number): masked in Dagster.
                "unique_id_l": mask_reference(pair.unique_id_l),
                "unique_id_r": mask_reference(pair.unique_id_r),
                "match_weight": round(pair.match_weight, 3),
                "match_probability": round(pair.match_probability, 4),
                "chart_path": str(pair.chart_path or ""),
            }
        )
        for pair in pairs
    ]
    return dg.MetadataValue.table(records=records, schema=schema)


def build_evaluation_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """``linkage_evaluation`` and ``evaluation_worst_pairs`` when the config names a truth
    file or clerical labels, else nothing."""
    truth, labels = project.truth, project.labels
    if truth is None and labels is None:
        return []
    evidence_text = " and ".join(
        name for name, given in (("truth file", truth), ("clerical labels", labels)) if given
    )

    @dg.multi_asset(
        name=LINKAGE_EVALUATION,
        group_name=EVALUATION_GROUP,
        specs=[
            dg.AssetSpec(
                LINKAGE_EVALUATION,
                deps=[CUSTOMER_CLUSTERS, PAIRWISE_MATCHES],
                kinds={"duckdb", "mlflow"},
                description=(
                    "How well customer_clusters and pairwise_matches agree with the "
                    f"{evidence_text}: pairwise, cluster and B-cubed precision, recall and "
                    "F1 and the adjusted Rand index (truth); precision, recall and F1 of the "
                    "model's links over labelled pairs (label_*); the precision-recall curve "
                    "of scored pairs over thresholds, with the threshold that maximises "
                    "F-beta. One row per metric is appended per run; the metrics, the curve "
                    "and the waterfall charts are logged to the MLflow run of the model."
                ),
            ),
            dg.AssetSpec(
                EVALUATION_WORST_PAIRS,
                kinds={"duckdb", "splink"},
                deps=[LINKAGE_EVALUATION],
                description=(
                    "The scored pairs the model got most confidently wrong in the latest "
                    "evaluation, judged by the truth file when there is one, else by the "
                    "clerical labels: false merges (one customer, truly different people; highest "
                    "match weight first) and missed links (the same person in different "
                    "customers; lowest match weight first), each with the path of its Splink "
                    "waterfall chart (HTML, shows record values)."
                ),
            ),
        ],
    )
    def linkage_evaluation(
        context: AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource
    ) -> Iterator[dg.MaterializeResult]:
        with warehouse.connect() as con, failure_at(project.config_path):
            evaluation = evaluate_run(con, project, mlflow.target(), run_id=context.run_id)
            evaluation_metadata = table_metadata(con, LINKAGE_EVALUATION)
            worst_metadata = table_metadata(con, EVALUATION_WORST_PAIRS)
        for name in ("cluster_f1", "pairwise_f1", "label_cluster_f1", "best_threshold"):
            if name in evaluation.metrics:
                context.log.info("%s %.4f", name, evaluation.metrics[name])
        yield dg.MaterializeResult(
            asset_key=LINKAGE_EVALUATION, metadata={**evaluation_metadata, **_metrics(evaluation)}
        )
        yield dg.MaterializeResult(
            asset_key=EVALUATION_WORST_PAIRS,
            metadata={**worst_metadata, **_worst_metadata(evaluation)},
        )

    return [linkage_evaluation]


def _metrics(evaluation: Evaluation) -> dict:
    stored = evaluation.model
    return {
        **{name: float(value) for name, value in evaluation.metrics.items()},
        **evaluation.extra,
        "precision_recall": dg.MetadataValue.md(
            markdown_image(evaluation.precision_recall_png, "precision-recall curve")
        ),
        "precision_recall_chart": dg.MetadataValue.path(str(evaluation.chart_path)),
        "f_beta": evaluation.beta,
        "match_threshold": stored.match_threshold,
        "model_version": stored.model_version,
        "mlflow_run_id": stored.mlflow_run_id,
    }


def _worst_metadata(evaluation: Evaluation) -> dict:
    worst = evaluation.worst
    return {
        "evidence": evaluation.evidence,
        "false_merges": sum(1 for pair in worst if pair.kind == "false_merge"),
        "missed_links": sum(1 for pair in worst if pair.kind == "missed_link"),
        "worst_pairs": _worst_pairs_metadata(evaluation.evidence, worst),
        "waterfall_charts": dg.MetadataValue.path(str(evaluation.waterfalls_dir)),
    }


class LabellingConfig(dg.Config):
    """Which uncertain pairs go into the labelling tool."""

    pairs: int = Field(default=50, ge=1, le=1000, description="Most pairs to label.")
    band: float = Field(
        default=2.0,
        gt=0.0,
        description="Half-width of the band around the match threshold, in match weight "
        "(log2 odds): 2 takes pairs whose odds are a quarter to four times the threshold's.",
    )
    seed: int | None = Field(
        default=None, description="Seed of the sample; empty takes the project's model.seed."
    )


def build_labelling_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """``labelling_tool``: run on demand (job ``label_pairs``), not by the pipeline."""

    @dg.asset(
        name=LABELLING_TOOL, group_name=EVALUATION_GROUP, kinds={"splink"}, deps=[PAIRWISE_MATCHES]
    )
    def labelling_tool(
        context: AssetExecutionContext, config: LabellingConfig, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """Splink's clerical labelling tool (one offline HTML page) over a seeded sample of
        scored pairs near the match threshold, leaving out pairs already labelled. Stewards
        mark each pair a match or not and download the labels as CSV; add them to the file
        named by labels.path and the next evaluation (and, with labels.estimate_m, the next
        training) uses them. The page shows record values: it stays beside the warehouse."""
        with warehouse.connect() as con, failure_at():
            tool = write_project_labelling_tool(
                con, project, pairs=config.pairs, band=config.band, seed=config.seed
            )
        if tool.pairs == 0:
            context.log.warning(
                "no unlabelled scored pair is within %.1f match weight of the threshold %.3f",
                config.band,
                tool.model.match_threshold,
            )
        return dg.MaterializeResult(
            metadata={
                "pairs": tool.pairs,
                "labelling_tool": dg.MetadataValue.path(str(tool.path)),
                "match_threshold": tool.model.match_threshold,
                "band_match_weight": config.band,
                "seed": tool.seed,
                "model_version": tool.model.model_version,
            }
        )

    return [labelling_tool]
