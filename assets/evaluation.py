"""Evaluation assets: how well the customers match the known truth or clerical labels,
and the labelling tool that lets stewards label more pairs."""

from collections.abc import Iterator
from datetime import datetime, timezone

import dagster as dg
import duckdb
from dagster import AssetExecutionContext
from pydantic import Field

from assets.labels import load_project_labels
from assets.metadata import table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.charts import markdown_image
from linkage.config.project import ProjectConfig
from linkage.ingest.deliveries import SourceError
from linkage.model.store import StoredModel, scoring_model
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_RECORDS,
    EVALUATION_WORST_PAIRS,
    LABELLING_TOOL,
    LINKAGE_EVALUATION,
    PAIRWISE_MATCHES,
)
from training.evaluation_charts import (
    WorstPair,
    precision_recall_png,
    worst_pairs,
    write_waterfall_charts,
)
from training.ground_truth import (
    count_true_pairs,
    evaluate_against_truth,
    load_truth,
    truth_judged_pairs_sql,
)
from training.labels import evaluate_against_labels, labels_judged_pairs_sql, write_labelling_tool
from training.threshold_curve import ThresholdCurve, curve_from_judged_pairs
from training.tracking import log_evaluation, log_evaluation_artifacts

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
                "unique_id_l": pair.unique_id_l,
                "unique_id_r": pair.unique_id_r,
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
    settings = project.evaluation
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
        run_dir = project.artifacts / "evaluation" / context.run_id
        metrics: dict[str, float] = {}
        curves: dict[str, ThresholdCurve] = {}
        judged: dict[str, str] = {}
        extra: dict[str, object] = {}
        with warehouse.connect() as con:
            stored = scoring_model(con)
            if truth is not None:
                try:
                    load_truth(
                        con,
                        path=project.resolve(truth.path),
                        source_column=truth.source_column,
                        id_column=truth.id_column,
                        entity_column=truth.entity_column,
                    )
                except SourceError as exc:
                    raise dg.Failure(description=f"{project.config_path}: truth: {exc}") from exc
                scores, unknown = evaluate_against_truth(con, CUSTOMER_CLUSTERS)
                metrics.update(scores.as_metrics())
                extra["records_without_truth"] = unknown
                judged["truth"] = truth_judged_pairs_sql(PAIRWISE_MATCHES, CUSTOMER_CLUSTERS)
                curves["truth"] = curve_from_judged_pairs(
                    con,
                    judged["truth"],
                    true_pairs=count_true_pairs(con, CUSTOMER_CLUSTERS),
                    beta=settings.beta,
                )
                metrics.update(curves["truth"].metrics())
            if labels is not None:
                summary = load_project_labels(con, project, labels)
                label_scores = evaluate_against_labels(
                    con,
                    clusters_table=CUSTOMER_CLUSTERS,
                    pairs_table=PAIRWISE_MATCHES,
                    threshold=stored.match_threshold,
                )
                metrics.update(label_scores.as_metrics())
                extra["labels_id_mapping"] = summary.id_mapping
                judged["labels"] = labels_judged_pairs_sql(PAIRWISE_MATCHES, CUSTOMER_CLUSTERS)
                curves["labels"] = curve_from_judged_pairs(
                    con, judged["labels"], true_pairs=label_scores.matches, beta=settings.beta
                )
                metrics.update(curves["labels"].metrics("label_"))
            evidence = "truth" if "truth" in judged else "labels"
            worst = write_waterfall_charts(
                con,
                records_table=CUSTOMER_RECORDS,
                pairs_table=PAIRWISE_MATCHES,
                model=stored.model,
                pairs=worst_pairs(con, judged[evidence], limit=settings.worst_examples),
                out_dir=run_dir / "waterfalls",
            )
            evaluated_at = datetime.now(timezone.utc).replace(tzinfo=None)
            _append_metrics(con, evaluated_at, context.run_id, stored, metrics)
            _write_worst_pairs(con, evaluated_at, context.run_id, stored, evidence, worst)
            evaluation_metadata = table_metadata(con, LINKAGE_EVALUATION)
            worst_metadata = table_metadata(con, EVALUATION_WORST_PAIRS)

        png = precision_recall_png(curves, current_threshold=stored.match_threshold)
        run_dir.mkdir(parents=True, exist_ok=True)
        chart_path = run_dir / "precision_recall.png"
        chart_path.write_bytes(png)
        files = [chart_path] + [
            curve.write_csv(run_dir / f"threshold_curve_{name}.csv")
            for name, curve in curves.items()
        ]
        target = mlflow.target()
        log_evaluation(target, stored.mlflow_run_id, metrics)
        log_evaluation_artifacts(target, stored.mlflow_run_id, files)
        charts = [pair.chart_path for pair in worst if pair.chart_path is not None]
        log_evaluation_artifacts(
            target, stored.mlflow_run_id, charts, artifact_path="evaluation/waterfalls"
        )
        for name in ("cluster_f1", "pairwise_f1", "label_cluster_f1", "best_threshold"):
            if name in metrics:
                context.log.info("%s %.4f", name, metrics[name])

        yield dg.MaterializeResult(
            asset_key=LINKAGE_EVALUATION,
            metadata={
                **evaluation_metadata,
                **{name: float(value) for name, value in metrics.items()},
                **extra,
                "precision_recall": dg.MetadataValue.md(
                    markdown_image(png, "precision-recall curve")
                ),
                "precision_recall_chart": dg.MetadataValue.path(str(chart_path)),
                "f_beta": settings.beta,
                "match_threshold": stored.match_threshold,
                "model_version": stored.model_version,
                "mlflow_run_id": stored.mlflow_run_id,
            },
        )
        yield dg.MaterializeResult(
            asset_key=EVALUATION_WORST_PAIRS,
            metadata={
                **worst_metadata,
                "evidence": evidence,
                "false_merges": sum(1 for pair in worst if pair.kind == "false_merge"),
                "missed_links": sum(1 for pair in worst if pair.kind == "missed_link"),
                "worst_pairs": _worst_pairs_metadata(evidence, worst),
                "waterfall_charts": dg.MetadataValue.path(str(run_dir / "waterfalls")),
            },
        )

    return [linkage_evaluation]


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
    con: duckdb.DuckDBPyConnection,
    evaluated_at: datetime,
    run_id: str,
    stored: StoredModel,
    evidence: str,
    pairs: list[WorstPair],
) -> None:
    """Replace ``evaluation_worst_pairs`` with this evaluation's worst pairs."""
    con.execute(
        f"CREATE OR REPLACE TABLE {EVALUATION_WORST_PAIRS} ("
        "evaluated_at TIMESTAMP, dagster_run_id VARCHAR, model_version VARCHAR, "
        "evidence VARCHAR, kind VARCHAR, rank INTEGER, unique_id_l VARCHAR, "
        "unique_id_r VARCHAR, match_weight DOUBLE, match_probability DOUBLE, chart_path VARCHAR)"
    )
    if pairs:
        con.executemany(
            f"INSERT INTO {EVALUATION_WORST_PAIRS} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                [
                    evaluated_at,
                    run_id,
                    stored.model_version,
                    evidence,
                    pair.kind,
                    pair.rank,
                    pair.unique_id_l,
                    pair.unique_id_r,
                    pair.match_weight,
                    pair.match_probability,
                    str(pair.chart_path) if pair.chart_path else None,
                ]
                for pair in pairs
            ],
        )


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
    out_path = project.artifacts / "labelling" / "labelling_tool.html"

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
        seed = project.model.seed if config.seed is None else config.seed
        with warehouse.connect() as con:
            stored = scoring_model(con)
            pairs = write_labelling_tool(
                con,
                records_table=CUSTOMER_RECORDS,
                pairs_table=PAIRWISE_MATCHES,
                model=stored.model,
                threshold=stored.match_threshold,
                band=config.band,
                sample_size=config.pairs,
                seed=seed,
                out_path=out_path,
            )
        if pairs == 0:
            out_path.unlink(missing_ok=True)  # no one should label an earlier run's pairs
            context.log.warning(
                "no unlabelled scored pair is within %.1f match weight of the threshold %.3f",
                config.band,
                stored.match_threshold,
            )
        return dg.MaterializeResult(
            metadata={
                "pairs": pairs,
                "labelling_tool": dg.MetadataValue.path(str(out_path)),
                "match_threshold": stored.match_threshold,
                "band_match_weight": config.band,
                "seed": seed,
                "model_version": stored.model_version,
            }
        )

    return [labelling_tool]
