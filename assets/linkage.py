"""Linkage assets: train the model, score pairs, cluster records into customers."""

import json
from datetime import datetime, timezone
from typing import Literal

import dagster as dg
from dagster import AssetExecutionContext
from pydantic import Field

from assets.labels import load_project_labels
from assets.metadata import table_metadata
from assets.resources import MlflowResource, WarehouseResource
from linkage.audit.change_log import record_merge_evidence
from linkage.charts import cluster_sizes_png, markdown_image, match_weights_png
from linkage.cluster.clustering import customer_graph_metrics
from linkage.cluster.overrides import OverrideError, cluster_with_overrides
from linkage.cluster.stable_ids import CUSTOMER_ID_TABLES, assign_stable_ids
from linkage.config.project import ProjectConfig
from linkage.model.comparison_limit import ComparisonLimitError
from linkage.model.scoring import predict_pairs
from linkage.model.store import (
    StoredModel,
    latest_model,
    record_model,
    record_scoring_model,
    scoring_model,
)
from linkage.tables import (
    BLOCKING_ANALYSIS,
    CLERICAL_LABEL_MATCHES,
    CUSTOMER_CLUSTERS,
    CUSTOMER_RECORDS,
    LINKAGE_MODEL,
    PAIRWISE_MATCHES,
)
from training.promotion import CHAMPION, champion_model
from training.tracking import (
    log_scoring_artifacts,
    log_training_run,
    match_weight_histogram_png,
    scoring_artifacts_logged,
)
from training.train import TrainingOptions, train_linkage_model

LINKAGE_GROUP = "linkage"
PROVISIONAL_CLUSTERS = "__meld_provisional_clusters"


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
    model_config = project.model
    artifacts = project.artifacts

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
        labels = project.labels
        estimate_m_from_labels = labels is not None and labels.estimate_m
        options = TrainingOptions(
            deterministic_recall=model_config.deterministic_recall,
            u_max_pairs=config.u_max_pairs or model_config.u_max_pairs,
            seed=model_config.seed if config.seed is None else config.seed,
            em_max_iterations=model_config.em_max_iterations,
            model=project.model_spec(),
            labels_table=CLERICAL_LABEL_MATCHES if estimate_m_from_labels else None,
        )
        threshold = config.match_threshold or model_config.match_threshold
        run_dir = artifacts / "models" / context.run_id
        with warehouse.connect() as con:
            if labels is not None and estimate_m_from_labels:
                loaded = load_project_labels(con, project, labels)
                context.log.info(
                    "estimating m from %d labelled pairs (%d matches)",
                    loaded.pairs,
                    loaded.matches,
                )
            context.log.info("training on customer_records (seed %d)", options.seed)
            result = train_linkage_model(con, CUSTOMER_RECORDS, options, run_dir)
            model_path = run_dir / "model.json"
            model_path.write_text(json.dumps(result.model, indent=2), encoding="utf-8")
            tracked = log_training_run(
                mlflow.target(),
                result,
                options,
                model_path,
                tf_paths=result.term_frequencies,
                threshold=threshold,
                floor=model_config.prediction_floor,
                tags={"dagster_run_id": context.run_id, "config_hash": project.fingerprint()},
            )
            record_model(
                con,
                StoredModel(
                    model=result.model,
                    trained_at=datetime.now(timezone.utc).replace(tzinfo=None),
                    match_threshold=threshold,
                    prediction_floor=model_config.prediction_floor,
                    mlflow_run_id=tracked.run_id,
                    model_name=tracked.model_name,
                    model_version=tracked.model_version,
                    dagster_run_id=context.run_id,
                ),
            )
            metadata = table_metadata(con, LINKAGE_MODEL)
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
                "match_threshold": threshold,
                "training_seconds": round(result.seconds, 2),
                "m_from_clerical_labels": estimate_m_from_labels,
                "match_weights_chart": dg.MetadataValue.path(str(result.charts["match_weights"])),
                "model_json": dg.MetadataValue.path(str(model_path)),
                "match_weights": dg.MetadataValue.md(
                    markdown_image(match_weights_png(result.model), "match weights")
                ),
            }
        )

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
        with warehouse.connect() as con:
            if config.model == CHAMPION:
                try:
                    stored = champion_model(con, target)
                except LookupError as exc:
                    raise dg.Failure(description=str(exc)) from exc
            else:
                stored = latest_model(con)
            context.log.info(
                "scoring with %s version %s (%s)",
                stored.model_name,
                stored.model_version,
                config.model,
            )
            try:
                pairs = predict_pairs(
                    con,
                    records_table=CUSTOMER_RECORDS,
                    model=stored.model,
                    floor=stored.prediction_floor,
                    out_table=PAIRWISE_MATCHES,
                    max_comparisons=model_config.max_comparisons,
                )
            except ComparisonLimitError as exc:
                raise dg.Failure(
                    description=f"{project.config_path}: model.max_comparisons: {exc}"
                ) from exc
            record_scoring_model(con, stored)
            above = con.execute(
                f"SELECT count(*) FROM {PAIRWISE_MATCHES} WHERE match_probability >= ?",
                [stored.match_threshold],
            ).fetchall()[0][0]
            histogram = match_weight_histogram_png(
                con, PAIRWISE_MATCHES, threshold=stored.match_threshold
            )
            if not scoring_artifacts_logged(target, stored.mlflow_run_id):
                log_scoring_artifacts(
                    target,
                    stored.mlflow_run_id,
                    con,
                    pairs_table=PAIRWISE_MATCHES,
                    records_table=CUSTOMER_RECORDS,
                    model=stored.model,
                    threshold=stored.match_threshold,
                    out_dir=artifacts / "scoring" / context.run_id,
                    seed=model_config.seed,
                )
            metadata = table_metadata(con, PAIRWISE_MATCHES)
        context.log.info("kept %d pairs, %d at or above the match threshold", pairs, above)
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "pairs_above_threshold": int(above),
                "model_selection": config.model,
                "model_name": stored.model_name,
                "model_version": stored.model_version,
                "mlflow_run_id": stored.mlflow_run_id,
                "prediction_floor": stored.prediction_floor,
                "match_weight_histogram": dg.MetadataValue.md(
                    markdown_image(histogram, "match weights of scored pairs")
                ),
            }
        )

    overrides_csv = project.resolve(project.overrides.path) if project.overrides.path else None

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
        with warehouse.connect() as con:
            stored = scoring_model(con)
            try:
                clustered = cluster_with_overrides(
                    con,
                    records_table=CUSTOMER_RECORDS,
                    pairs_table=PAIRWISE_MATCHES,
                    threshold=stored.match_threshold,
                    out_table=PROVISIONAL_CLUSTERS,
                    csv_path=overrides_csv,
                    published_clusters=CUSTOMER_CLUSTERS,
                    method=project.clustering.method,
                )
            except OverrideError as exc:
                raise dg.Failure(
                    description=f"{project.config_path}: overrides.path: {exc}"
                ) from exc
            assignment = assign_stable_ids(
                con,
                groups_table=PROVISIONAL_CLUSTERS,
                member_column="unique_id",
                group_column="customer_id",
                out_table="__meld_customer_ids",
                tables=CUSTOMER_ID_TABLES,
                run_id=context.run_id,
            )
            con.execute(
                f"CREATE OR REPLACE TABLE {CUSTOMER_CLUSTERS} AS "
                "SELECT p.source_system, p.source_record_id, p.unique_id, s.customer_id, "
                "count(*) OVER (PARTITION BY s.customer_id) AS customer_record_count "
                f"FROM {PROVISIONAL_CLUSTERS} AS p JOIN __meld_customer_ids AS s "
                "USING (unique_id) ORDER BY s.customer_id, p.unique_id"
            )
            for table in (PROVISIONAL_CLUSTERS, "__meld_customer_ids"):
                con.execute(f"DROP TABLE IF EXISTS {table}")
            evidence = record_merge_evidence(
                con,
                run_id=context.run_id,
                pairs_table=PAIRWISE_MATCHES,
                threshold=stored.match_threshold,
            )
            graph = customer_graph_metrics(
                con,
                clusters_table=CUSTOMER_CLUSTERS,
                pairs_table=PAIRWISE_MATCHES,
                threshold=stored.match_threshold,
                warn_cluster_size=project.clustering.warn_cluster_size,
            )
            sizes = con.execute(
                "SELECT customer_record_count, count(DISTINCT customer_id) "
                f"FROM {CUSTOMER_CLUSTERS} GROUP BY 1 ORDER BY 1"
            ).fetchall()
            metadata = table_metadata(con, CUSTOMER_CLUSTERS)
        summary = clustered.summary
        for warning in clustered.overrides.warnings:
            context.log.warning("steward override: %s", warning)
        for customer_id, records in graph.oversized:
            context.log.warning(
                "customer %s has %d records, more than clustering.warn_cluster_size %d: "
                "check its links in customer_graph_metrics",
                customer_id,
                records,
                graph.warn_cluster_size,
            )
        context.log.info(
            "%d customers: %d new, %d kept, %d merged, %d split, %d retired ids",
            summary.customers,
            assignment.new,
            assignment.kept,
            assignment.merged,
            assignment.split,
            assignment.retired,
        )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "customers": summary.customers,
                "largest_customer_records": summary.largest_customer,
                "singleton_customers": summary.singletons,
                "match_threshold": stored.match_threshold,
                "model_version": stored.model_version,
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
                "merge_evidence_links": evidence,
                "overrides_in_force": len(clustered.overrides.in_force_ids),
                "links_refused_by_overrides": summary.links_refused,
                "must_links_applied": summary.must_links_applied,
                "customers_by_record_count": {str(size): int(n) for size, n in sizes},
                "customer_sizes": dg.MetadataValue.md(
                    markdown_image(cluster_sizes_png(sizes), "customer sizes")
                ),
            }
        )

    return [linkage_model, pairwise_matches, customer_clusters]
