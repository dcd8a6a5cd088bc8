"""Linkage assets: train the model, score pairs, cluster records into customers."""

from typing import Literal

import dagster as dg
from dagster import AssetExecutionContext
from pydantic import Field

from assets.failures import failure_at
from assets.metadata import blocking_choice_metadata, floor_metadata, table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.charts import cluster_sizes_png, markdown_image, match_weights_png
from linkage.cluster.steps import CustomerClusters, build_customer_clusters
from linkage.config import ProjectConfig
from linkage.tables import (
    BLOCKING_ANALYSIS,
    CUSTOMER_CLUSTERS,
    CUSTOMER_RECORDS,
    LINKAGE_MODEL,
    PAIRWISE_MATCHES,
)
from training.steps.model import (
    score_blocked_pairs,
    scoring_model_choice,
    train_and_register,
)

LINKAGE_GROUP = "linkage"


class TrainingConfig(dg.Config):
    """Overrides for one training run; empty fields take the project config's values."""

    match_threshold: float | None = Field(
        default=None, gt=0.0, lt=1.0, description="Match probability that links two records."
    )
    seed: int | None = Field(default=None, description="Seed for u sampling.")
    u_max_pairs: float | None = Field(
        default=None, gt=0, description="Record pairs sampled to estimate u."
    )


class ScoringConfig(dg.Config):
    """Which model scores the pairs."""

    model: Literal["latest", "champion"] = Field(
        default="latest",
        description="latest: the model trained most recently in this warehouse "
        "(linkage_model); champion: the version the MLflow registry's alias 'champion' "
        "points at, scored without retraining (job score_customers).",
    )


def build_linkage_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """The model, its scored pairs and the customer clusters."""
    linkage_model = _model_asset(project)
    pairwise_matches = _pairs_asset(project, linkage_model)
    return [linkage_model, pairwise_matches, _clusters_asset(project, pairwise_matches)]


def _model_asset(project: ProjectConfig) -> dg.AssetsDefinition:
    @dg.asset(group_name=LINKAGE_GROUP, kinds={"splink", "mlflow"}, deps=[CUSTOMER_RECORDS])
    def linkage_model(
        context: AssetExecutionContext,
        config: TrainingConfig,
        warehouse: WarehouseResource,
        mlflow: MlflowResource,
    ) -> dg.MaterializeResult:
        """A Fellegi-Sunter model trained with Splink on customer_records: lambda from
        deterministic rules, u by random sampling, m by EM over several blocking rules,
        term-frequency adjustments on names; with labels.estimate_m, m also from the
        clerical labels. Logged to MLflow with its charts and
        registered as a new model version."""
        options = project.training_options(seed=config.seed, u_max_pairs=config.u_max_pairs)
        context.log.info("training on customer_records (seed %d)", options.seed)
        with warehouse.connect() as con, failure_at(project.config_path):
            trained = train_and_register(
                con,
                project,
                mlflow.target(),
                run_id=context.run_id,
                options=options,
                threshold=config.match_threshold,
            )
            metadata = table_metadata(con, LINKAGE_MODEL)
        if trained.labels is not None:
            context.log.info(
                "estimated m from %d labelled pairs (%d matches)",
                trained.labels.pairs,
                trained.labels.matches,
            )
        result, tracked = trained.result, trained.tracked
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "mlflow_run_id": tracked.run_id,
                "mlflow_ui": dg.MetadataValue.text(mlflow.ui_command()),
                "model_uri": tracked.model_uri,
                "model_version": tracked.model_version,
                "probability_two_random_records_match": result.probability_two_random_records_match,
                "em_iterations_total": sum(s.iterations for s in result.em_sessions),
                "comparisons_to_score": result.comparisons_to_score,
                "comparisons": ", ".join(result.comparisons),
                "prediction_rules": " | ".join(result.prediction_rules),
                "match_threshold": trained.threshold,
                "training_seconds": round(result.seconds, 2),
                "m_from_clerical_labels": options.labels_table is not None,
                **floor_metadata(result.floor_report),
                **blocking_choice_metadata(result.rule_choice),
                "match_weights_chart": dg.MetadataValue.path(str(result.charts["match_weights"])),
                "model_json": dg.MetadataValue.path(str(trained.model_path)),
                "match_weights": dg.MetadataValue.md(
                    markdown_image(match_weights_png(result.model), "match weights")
                ),
            }
        )

    return linkage_model


def _pairs_asset(project: ProjectConfig, linkage_model: dg.AssetsDefinition) -> dg.AssetsDefinition:
    @dg.asset(
        group_name=LINKAGE_GROUP,
        kinds={"splink", "duckdb"},
        deps=[linkage_model, BLOCKING_ANALYSIS],
    )
    def pairwise_matches(
        context: AssetExecutionContext,
        config: ScoringConfig,
        warehouse: WarehouseResource,
        mlflow: MlflowResource,
    ) -> dg.MaterializeResult:
        """Record pairs found by the blocking rules and scored by the latest linkage_model
        (or, with config model: champion, by the registry's champion version), kept when
        their match probability reaches the prediction floor. Each pair keeps its
        comparison levels, partial match weights and term-frequency adjustments, and
        link_veto names a veto that forbids the link (see the README). The first scoring
        by a model version adds its match-weight histogram, term-frequency charts and a
        comparison viewer on a sample of pairs to the version's MLflow run."""
        target = mlflow.target()
        with warehouse.connect() as con, failure_at(project.config_path):
            stored = scoring_model_choice(con, target, config.model)
            context.log.info(
                "scoring with %s version %s (%s)",
                stored.model_name,
                stored.model_version,
                config.model,
            )
            scored = score_blocked_pairs(con, project, target, stored=stored, run_id=context.run_id)
            metadata = table_metadata(con, PAIRWISE_MATCHES)
        context.log.info(
            "kept %d pairs, %d at or above the match threshold",
            scored.pairs,
            scored.above_threshold,
        )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "pairs_above_threshold": scored.above_threshold,
                "model_selection": config.model,
                "model_name": stored.model_name,
                "model_version": stored.model_version,
                "mlflow_run_id": stored.mlflow_run_id,
                "prediction_floor": stored.prediction_floor,
                "match_weight_histogram": dg.MetadataValue.md(
                    markdown_image(scored.histogram_png, "match weights of scored pairs")
                ),
            }
        )

    return pairwise_matches


def _clusters_asset(
    project: ProjectConfig, pairwise_matches: dg.AssetsDefinition
) -> dg.AssetsDefinition:
    spec = project.clustering_spec()

    @dg.asset(
        group_name=LINKAGE_GROUP,
        kinds={"duckdb"},
        deps=[pairwise_matches, CUSTOMER_RECORDS],
    )
    def customer_clusters(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        """One row per record with the customer it belongs to. Records linked by pairs at
        or above the threshold of the model that scored them form one customer, strongest
        links first; with clustering.method best_links (the default) a link that would
        chain two well-knit groups through a weak bridge is refused (refused_links,
        reason weak_bridge). Steward decisions (must-link, cannot-link, unmerge) are
        applied, and links they refuse are listed in refused_links too. Customer ids are
        stable across runs: a customer keeps its id while its records stay together;
        merges keep the id with the most (then the oldest) records, splits give the
        smaller parts new ids, and every new, merged, split and retired id is in
        customer_id_history (records that changed customer in customer_record_moves), and
        the strongest links behind each merge are in merge_evidence.
        customer_graph_metrics describes each customer's links (density, bridges, weakest
        link) and flags customers larger than clustering.warn_cluster_size."""
        with (
            warehouse.connect() as con,
            failure_at(f"{project.config_path}: overrides.path"),
        ):
            outcome = build_customer_clusters(con, spec, run_id=context.run_id)
            metadata = table_metadata(con, CUSTOMER_CLUSTERS)
        _log_clustering(context, outcome)
        summary, assignment, graph = (
            outcome.clustered.summary,
            outcome.assignment,
            outcome.graph,
        )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "customers": summary.customers,
                "largest_customer_records": summary.largest_customer,
                "singleton_customers": summary.singletons,
                "match_threshold": outcome.model.match_threshold,
                "model_version": outcome.model.model_version,
                "clustering_method": summary.method,
                "links_refused_as_weak_bridges": summary.links_refused_as_weak,
                "oversized_customers": len(graph.oversized),
                "customers_with_bridges": graph.customers_with_bridges,
                "new_customer_ids": assignment.new,
                "kept_customer_ids": assignment.kept,
                "merged_customer_ids": assignment.merged,
                "split_customer_ids": assignment.split,
                "retired_customer_ids": assignment.retired,
                "records_moved": assignment.moved_members,
                "merge_evidence_links": outcome.merge_evidence_links,
                "overrides_in_force": len(outcome.clustered.overrides.in_force_ids),
                "links_refused_by_overrides": summary.links_refused,
                "must_links_applied": summary.must_links_applied,
                "customers_by_record_count": {str(size): n for size, n in outcome.sizes},
                "customer_sizes": dg.MetadataValue.md(
                    markdown_image(cluster_sizes_png(outcome.sizes), "customer sizes")
                ),
            }
        )

    return customer_clusters


def _log_clustering(context: AssetExecutionContext, outcome: CustomerClusters) -> None:
    for warning in outcome.clustered.overrides.warnings:
        context.log.warning("steward override: %s", warning)
    for customer_id, records in outcome.graph.oversized:
        context.log.warning(
            "customer %s has %d records, more than clustering.warn_cluster_size %d: "
            "check its links in customer_graph_metrics",
            customer_id,
            records,
            outcome.graph.warn_cluster_size,
        )
    assignment = outcome.assignment
    context.log.info(
        "%d customers: %d new, %d kept, %d merged, %d split, %d retired ids",
        outcome.clustered.summary.customers,
        assignment.new,
        assignment.kept,
        assignment.merged,
        assignment.split,
        assignment.retired,
    )
