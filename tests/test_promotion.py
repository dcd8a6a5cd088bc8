"""Champion and challenger: the promotion rule, aliases and recorded decisions, and
scoring customers with the champion without retraining."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path

import duckdb
import mlflow
import pytest
from mlflow.tracking import MlflowClient

from linkage.config import ProjectConfig
from linkage.model.store import StoredModel, record_model, record_scoring_model, scoring_model
from orchestration.build import build_definitions, build_resources
from training.mlflow_store import MlflowTarget, ensure_experiment
from training.promotion import (
    CHALLENGER,
    CHAMPION,
    champion_model,
    decide_promotion,
    model_aliases,
    promote,
    register_new_version,
)

TOLERANCE = 0.005


@pytest.mark.parametrize(
    ("challenger", "champion", "tolerance", "promoted"),
    [
        pytest.param(0.80, None, TOLERANCE, True, id="first-version-has-no-champion-score"),
        pytest.param(0.93, 0.90, TOLERANCE, True, id="better"),
        pytest.param(0.90, 0.90, TOLERANCE, True, id="equal"),
        pytest.param(0.898, 0.90, TOLERANCE, True, id="worse-within-tolerance"),
        pytest.param(0.895, 0.90, TOLERANCE, True, id="worse-by-exactly-the-tolerance"),
        pytest.param(0.894, 0.90, TOLERANCE, False, id="worse-beyond-tolerance"),
        pytest.param(0.8999, 0.90, 0.0, False, id="any-loss-with-zero-tolerance"),
    ],
)
def test_promotion_rule(
    challenger: float, champion: float | None, tolerance: float, promoted: bool
) -> None:
    decision = decide_promotion(challenger, champion, tolerance)
    assert decision.promoted is promoted
    assert (decision.challenger_score, decision.champion_score) == (challenger, champion)
    assert decision.tolerance == tolerance
    assert ("not promoted" in decision.reason) is (not promoted)


@pytest.mark.parametrize(
    ("challenger", "champion", "tolerance"),
    [(math.nan, 0.9, 0.01), (0.9, math.inf, 0.01), (0.9, 0.9, -0.01)],
)
def test_promotion_rule_refuses_meaningless_scores(
    challenger: float, champion: float | None, tolerance: float
) -> None:
    with pytest.raises(ValueError, match="must be"):
        decide_promotion(challenger, champion, tolerance)


def _fake_model(threshold: float) -> dict:
    return {"link_type": "dedupe_only", "comparisons": [], "threshold_marker": threshold}


@pytest.fixture
def target(mlflow_uri: str, experiment_name: str, tmp_path: Path) -> MlflowTarget:
    target = MlflowTarget(
        tracking_uri=mlflow_uri,
        experiment=experiment_name,
        artifact_location=str(tmp_path / "mlartifacts"),
        registered_model=f"meld-{experiment_name}",
    )
    ensure_experiment(target)
    return target


def _register_fake_version(target: MlflowTarget, tmp_path: Path, threshold: float) -> str:
    """A training run with the params and model JSON a real one has, registered as a new
    version the way log_training_run does (a second or so, no Splink training)."""
    client = MlflowClient(target.tracking_uri)
    experiment_id = ensure_experiment(target)
    model_path = tmp_path / f"model-{threshold}.json"
    model_path.write_text(json.dumps(_fake_model(threshold)), encoding="utf-8")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_params({"match_threshold": threshold, "prediction_floor": 0.2})
        mlflow.set_tag("dagster_run_id", f"dagster-{threshold}")
        mlflow.log_artifact(str(model_path), artifact_path="model")
    if not client.search_registered_models(f"name = '{target.registered_model}'"):
        client.create_registered_model(target.registered_model)
    version = client.create_model_version(
        target.registered_model, source=f"runs:/{run.info.run_id}/model", run_id=run.info.run_id
    )
    register_new_version(target, target.registered_model, str(version.version))
    return str(version.version)


def test_promote_moves_champion_only_for_good_enough_challengers(
    target: MlflowTarget, tmp_path: Path
) -> None:
    name = target.registered_model
    client = MlflowClient(target.tracking_uri)
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))

    first = _register_fake_version(target, tmp_path, 0.91)
    assert model_aliases(target, name) == {CHAMPION: first, CHALLENGER: first}
    kept = promote(target, name, first, "cluster_f1", 0.90, TOLERANCE, con)
    assert kept.promoted and kept.champion_version_before == first

    better = _register_fake_version(target, tmp_path, 0.92)
    assert model_aliases(target, name) == {CHAMPION: first, CHALLENGER: better}
    won = promote(target, name, better, "cluster_f1", 0.93, TOLERANCE, con)
    assert won.promoted and won.champion_score == 0.90
    assert model_aliases(target, name) == {CHAMPION: better, CHALLENGER: better}

    worse = _register_fake_version(target, tmp_path, 0.93)
    lost = promote(target, name, worse, "cluster_f1", 0.90, TOLERANCE, con)
    assert not lost.promoted
    assert model_aliases(target, name) == {CHAMPION: better, CHALLENGER: worse}

    rows = con.execute(
        "SELECT model_name, challenger_version, champion_version_before, metric, "
        "challenger_score, champion_score, tolerance, promoted, reason "
        "FROM model_promotions ORDER BY decided_at"
    ).fetchall()
    assert [row[:8] for row in rows] == [
        (name, first, first, "cluster_f1", 0.90, None, TOLERANCE, True),
        (name, better, first, "cluster_f1", 0.93, 0.90, TOLERANCE, True),
        (name, worse, better, "cluster_f1", 0.90, 0.93, TOLERANCE, False),
    ]
    assert all(row[8] for row in rows)
    assert (
        con.execute("SELECT typeof(decided_at) FROM model_promotions LIMIT 1").fetchall()[0][0]
        == "TIMESTAMP"
    )

    run = client.get_run(client.get_model_version(name, worse).run_id)
    assert run.data.tags["promotion.decision"] == "rejected"
    assert run.data.tags["promotion.champion_version_before"] == better
    assert run.data.tags["promotion.metric"] == "cluster_f1"
    assert run.data.metrics["promotion_challenger_score"] == 0.90
    assert run.data.metrics["promotion_champion_score"] == 0.93
    con.close()


def test_champion_model_comes_from_the_warehouse_or_else_from_mlflow(
    target: MlflowTarget, tmp_path: Path
) -> None:
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    with pytest.raises(LookupError, match="no 'champion' version"):
        champion_model(con, target)
    version = _register_fake_version(target, tmp_path, 0.97)

    from_mlflow = champion_model(con, target)
    assert from_mlflow.model == _fake_model(0.97)
    assert (from_mlflow.model_version, from_mlflow.match_threshold) == (version, 0.97)
    assert from_mlflow.prediction_floor == 0.2
    assert from_mlflow.dagster_run_id == "dagster-0.97"

    record_model(
        con,
        StoredModel(
            model=_fake_model(0.5),
            trained_at=datetime(2026, 1, 1),
            match_threshold=0.5,
            prediction_floor=0.1,
            mlflow_run_id=from_mlflow.mlflow_run_id,
            model_name=target.registered_model,
            model_version=version,
            dagster_run_id="local",
        ),
    )
    assert champion_model(con, target).match_threshold == 0.5
    con.close()


def test_a_champion_from_mlflow_that_scores_is_kept_in_the_warehouse(
    target: MlflowTarget, tmp_path: Path
) -> None:
    """Clustering and reproduce look the scoring model up in linkage_model."""
    con = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    _register_fake_version(target, tmp_path, 0.93)
    champion = champion_model(con, target)
    record_scoring_model(con, champion)
    assert scoring_model(con) == champion
    record_scoring_model(con, champion)
    assert con.execute("SELECT count(*) FROM linkage_model").fetchall() == [(1,)]
    con.close()


def _rows(project: ProjectConfig, sql: str) -> list[tuple]:
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


@pytest.mark.slow
def test_score_customers_reuses_the_champion_without_retraining(
    demo_project: ProjectConfig,
) -> None:
    defs = build_definitions(demo_project.config_path)
    assert defs.resolve_job_def("meld_pipeline").execute_in_process().success
    client = MlflowClient(demo_project.mlflow.tracking_uri)
    name = demo_project.mlflow.registered_model
    versions = client.search_model_versions(f"name = '{name}'")
    assert [str(v.version) for v in versions] == ["1"]
    champion = model_aliases(build_resources(demo_project)["mlflow"].target(), name)[CHAMPION]
    clusters_sql = (
        "SELECT source_system, source_record_id, customer_id FROM customer_clusters ORDER BY 1, 2"
    )
    clusters = _rows(demo_project, clusters_sql)
    trained = _rows(demo_project, "SELECT count(*) FROM linkage_model")[0][0]

    result = defs.resolve_job_def("score_customers").execute_in_process()

    assert result.success
    executed = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert "linkage_model" not in executed and "pairwise_matches" in executed
    assert len(client.search_model_versions(f"name = '{name}'")) == 1
    assert _rows(demo_project, "SELECT count(*) FROM linkage_model")[0][0] == trained
    assert _rows(demo_project, clusters_sql) == clusters
    scored = result.asset_materializations_for_node("pairwise_matches")[0].metadata
    assert scored["model_selection"].value == "champion"
    assert scored["model_version"].value == champion


def test_jobs_train_and_score_select_the_right_assets(demo_project: ProjectConfig) -> None:
    defs = build_definitions(demo_project.config_path)

    def selected(job: str) -> set[str]:
        graph = defs.resolve_job_def(job).asset_layer
        return {key.to_user_string() for key in graph.selected_asset_keys}

    train, score = selected("train_model"), selected("score_customers")
    assert {"linkage_model", "pairwise_matches", "customer_clusters"} <= train
    assert {"linkage_evaluation", "model_promotion"} <= train
    assert "golden_customers" not in train
    assert {"pairwise_matches", "customer_clusters", "golden_customers"} <= score
    assert not score & {"linkage_model", "linkage_evaluation", "model_promotion"}
    config = defs.resolve_job_def("score_customers").run_config
    assert config["ops"]["pairwise_matches"]["config"] == {"model": "champion"}
