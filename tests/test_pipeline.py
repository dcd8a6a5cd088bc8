"""End to end: materialize every real asset over generated data, then inspect the results."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import mlflow
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from assets.checks import build_checks
from linkage.config import ProjectConfig
from orchestration.build import build_assets, build_resources
from tests.projects import demo_project_file

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def materialized(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[ProjectConfig, dg.ExecuteInProcessResult]:
    """The whole pipeline materialized once for this module's tests."""
    project = demo_project_file(
        tmp_path_factory.mktemp("pipeline"),
        small_demo,
        mlflow_uri=mlflow_uri,
        experiment="test-pipeline",
    )
    result = dg.materialize(
        [*build_assets(project), *build_checks(project)],
        resources=build_resources(project),
    )
    assert result.success
    return project, result


def _rows(project: ProjectConfig, sql: str) -> list[tuple]:
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_input_record_is_a_customer_or_quarantined(materialized) -> None:
    project, _ = materialized
    raw_keys: set[tuple[str, int]] = set()
    for source in project.sources:
        raw_keys |= {
            (source, row[0])
            for row in _rows(project, f'SELECT source_row_number FROM "raw_{source}"')
        }
    clustered = {
        tuple(r)
        for r in _rows(
            project,
            "SELECT r.source_system, r.source_row_number FROM customer_clusters c "
            "JOIN customer_records r USING (unique_id)",
        )
    }
    quarantined = {
        tuple(r)
        for r in _rows(project, "SELECT source_system, source_row_number FROM quarantined_records")
    }
    assert clustered.isdisjoint(quarantined)
    assert clustered | quarantined == raw_keys
    assert quarantined, "the demo data carries unusable rows that must be quarantined"
    reasons = {r[0] for r in _rows(project, "SELECT DISTINCT reason FROM quarantined_records")}
    assert reasons <= {"missing_id", "duplicate_id", "no_identifying_fields"}


def test_checks_pass_and_metadata_names_tables(materialized) -> None:
    _, result = materialized
    evaluations = result.get_asset_check_evaluations()
    assert {e.check_name for e in evaluations} == {
        "customer_clusters_conserve_records",
        "golden_customers_one_row_per_customer",
    }
    assert all(e.passed for e in evaluations)
    materializations = {
        m.asset_key.to_user_string(): m for m in result.get_asset_materialization_events()
    }
    golden = materializations["golden_customers"].materialization.metadata
    assert golden["dagster/table_name"].value == "warehouse.main.golden_customers"
    assert golden["dagster/row_count"].value == golden["customers"].value > 0


def test_golden_customers_one_per_customer_with_display_values(materialized) -> None:
    project, _ = materialized
    customers = _rows(project, "SELECT count(DISTINCT customer_id) FROM customer_clusters")[0][0]
    golden = pd.DataFrame(
        _rows(
            project, "SELECT customer_id, first_name, record_count, sources FROM golden_customers"
        ),
        columns=["customer_id", "first_name", "record_count", "sources"],
    )
    assert len(golden) == customers == golden["customer_id"].nunique()
    records = _rows(project, "SELECT count(*) FROM customer_records")[0][0]
    assert golden["record_count"].sum() == records
    # Display values keep their case: names start upper-case, unlike the matching form.
    named = golden["first_name"].dropna()
    assert (named.str[0] == named.str[0].str.upper()).mean() > 0.95


def test_training_is_tracked_and_registered_in_mlflow(materialized) -> None:
    project, result = materialized
    client = MlflowClient(project.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(project.mlflow.experiment)
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.tags["dagster_run_id"] == result.run_id
    assert "blocking_rule_1" in run.data.params
    assert float(run.data.params["match_threshold"]) == project.model.match_threshold
    assert run.data.metrics["em_iterations_total"] >= 2
    assert run.data.metrics["comparisons_to_score"] > 0
    assert 0.0 < run.data.metrics["cluster_f1"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "charts")}
    assert "charts/match_weights.html" in artifacts
    versions = client.search_model_versions(f"name='{project.mlflow.registered_model}'")
    assert [str(v.version) for v in versions] == ["1"]
    assert versions[0].run_id == run.info.run_id


def test_registered_model_scores_pairs(materialized) -> None:
    project, _ = materialized
    mlflow.set_tracking_uri(project.mlflow.tracking_uri)
    model = mlflow.pyfunc.load_model(f"models:/{project.mlflow.registered_model}/1")
    record = {
        "first_name": "anna",
        "last_name": "lindqvist",
        "date_of_birth": "1984-03-02",
        "email": "anna.lindqvist@example.se",
        "phone": "+46701234567",
        "street": "storgatan 12",
        "postcode": "11122",
        "city": "stockholm",
    }
    other = {
        "first_name": "piotr",
        "last_name": "nowak",
        "date_of_birth": "1950-11-20",
        "email": "p.nowak@example.pl",
        "phone": "+48601234567",
        "street": "kwiatowa 3",
        "postcode": "00-001",
        "city": "warszawa",
    }
    rows = []
    for left, right in [(record, record), (record, other)]:
        row = {f"{k}_l": v for k, v in left.items()}
        row.update({f"{k}_r": v for k, v in right.items()})
        rows.append(row)
    scores = model.predict(pd.DataFrame(rows))
    assert scores.loc[0, "match_probability"] > 0.99
    assert scores.loc[1, "match_probability"] < 0.01
    assert scores.loc[0, "match_weight"] > scores.loc[1, "match_weight"]
    # Compared columns the caller lacks (identifiers here) or leaves empty count as missing.
    unknown_dob = dict(rows[0], date_of_birth_r=None)
    partial = model.predict(pd.DataFrame([unknown_dob]))
    assert 0 < partial.loc[0, "match_weight"] < scores.loc[0, "match_weight"]
    with pytest.raises(ValueError, match="none of the compared columns"):
        model.predict(pd.DataFrame([{"shoe_size_l": 42, "shoe_size_r": 42}]))


def test_evaluation_is_recorded(materialized) -> None:
    project, _ = materialized
    metrics = dict(_rows(project, "SELECT metric, value FROM linkage_evaluation"))
    for name in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "cluster_f1"):
        assert 0.0 <= metrics[name] <= 1.0
    # The demo data is linkable: a working pipeline finds most true pairs.
    assert metrics["pairwise_f1"] > 0.7


def test_model_ships_no_contact_values(materialized) -> None:
    """Frequency lookups travel with the model only for names and places, never contacts,
    and only for values many records share."""
    project, result = materialized
    folder = project.artifacts / "models" / result.run_id / "term_frequencies"
    shipped = {path.stem for path in folder.glob("*.parquet")}
    assert {"first_name", "last_name"} <= shipped
    assert not shipped & {"email", "phone"}
    records = _rows(project, "SELECT count(first_name) FROM customer_records")[0][0]
    lookup = pd.read_parquet(folder / "first_name.parquet")
    assert (lookup["tf_first_name"] * records >= 4.5).all()
    rare = _rows(
        project,
        "SELECT count(*) FROM (SELECT first_name FROM customer_records "
        "WHERE first_name IS NOT NULL GROUP BY 1 HAVING count(*) < 5)",
    )[0][0]
    assert (
        rare > 0
        and len(lookup)
        < _rows(project, "SELECT count(DISTINCT first_name) FROM customer_records")[0][0]
    )


def test_meld_summary_reports_counts_scores_and_where_to_look(materialized, capsys) -> None:
    from orchestration.cli import main

    project, _ = materialized
    assert main(["summary", "--config", str(project.config_path)]) == 0
    out = capsys.readouterr().out
    raw = sum(
        _rows(project, f'SELECT count(*) FROM "raw_{source}"')[0][0] for source in project.sources
    )
    customers = _rows(project, "SELECT count(DISTINCT customer_id) FROM customer_clusters")[0][0]
    for source in project.sources:
        assert source in out
    assert f"{raw:,} ->" in out
    assert f"Customers: {customers:,}" in out
    assert "cluster P" in out and "pairwise P" in out
    assert str(project.warehouse) in out and project.mlflow.tracking_uri in out
    assert "make ui" in out and "mlflow ui" in out


def _pair_frame(left: dict, right: dict) -> pd.DataFrame:
    row = {f"{k}_l": v for k, v in left.items()}
    row.update({f"{k}_r": v for k, v in right.items()})
    return pd.DataFrame([row])


def test_champion_alias_loads_the_pyfunc_and_scores_a_pair(materialized) -> None:
    """The first version is champion (and challenger); its promotion is recorded."""
    project, _ = materialized
    name = project.mlflow.registered_model
    mlflow.set_tracking_uri(project.mlflow.tracking_uri)
    client = MlflowClient(project.mlflow.tracking_uri)
    assert str(client.get_model_version_by_alias(name, "champion").version) == "1"
    assert str(client.get_model_version_by_alias(name, "challenger").version) == "1"
    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    person = {"first_name": "maria", "last_name": "berg", "date_of_birth": "1990-05-17"}
    scores = model.predict(_pair_frame(person, dict(person, first_name="marie")))
    assert list(scores.columns) == ["match_weight", "match_probability"]
    assert 0.0 < scores.loc[0, "match_probability"] < 1.0
    assert scores.loc[0, "match_weight"] > 0
    decisions = _rows(
        project,
        "SELECT challenger_version, metric, challenger_score, promoted FROM model_promotions",
    )
    cluster_f1 = dict(_rows(project, "SELECT metric, value FROM linkage_evaluation"))["cluster_f1"]
    assert decisions == [("1", "cluster_f1", cluster_f1, True)]


def test_training_run_has_every_chart_and_dashboard(materialized) -> None:
    project, _ = materialized
    client = MlflowClient(project.mlflow.tracking_uri)
    experiment = client.get_experiment_by_name(project.mlflow.experiment)
    run = client.search_runs([experiment.experiment_id])[0]
    run_id = run.info.run_id
    artifacts = {
        item.path
        for folder in ("model", "charts", "dashboards", "evaluation")
        for item in client.list_artifacts(run_id, folder)
    }
    assert {
        "model/model.json",
        "charts/match_weights.html",
        "charts/m_u_parameters.html",
        "charts/parameter_estimate_comparisons.html",
        "charts/match_weight_histogram.png",
        "charts/tf_first_name.html",
        "charts/tf_last_name.html",
        "dashboards/comparison_viewer.html",
        "evaluation/precision_recall.png",
    } <= artifacts
    # Term-frequency charts of contacts would list people's e-mails and phones.
    assert not {"charts/tf_email.html", "charts/tf_phone.html"} & artifacts
    pairs = _rows(project, "SELECT count(*) FROM pairwise_matches")[0][0]
    assert run.data.metrics["scored_pairs_kept"] == pairs
    assert run.data.metrics["promotion_challenger_score"] == run.data.metrics["cluster_f1"]
    assert run.data.tags["promotion.decision"] == "promoted"
    # EM convergence: one max-change value per iteration, settling below the tolerance.
    sessions = int(sum(1 for name in run.data.metrics if name.startswith("em_iterations_session_")))
    assert sessions >= 2
    for index in range(1, sessions + 1):
        history = client.get_metric_history(run_id, f"em_max_change_session_{index}")
        iterations = run.data.metrics[f"em_iterations_session_{index}"]
        assert [m.step for m in sorted(history, key=lambda m: m.step)] == list(
            range(1, int(iterations) + 1)
        )
        final = sorted(history, key=lambda m: m.step)[-1].value
        assert run.data.metrics[f"em_final_max_change_session_{index}"] == final
        assert run.data.metrics[f"em_converged_session_{index}"] == float(final < 1e-4)


def test_customers_are_clustered_by_best_links_with_graph_metrics(materialized) -> None:
    project, result = materialized
    metadata = result.asset_materializations_for_node("customer_clusters")[0].metadata
    assert metadata["clustering_method"].value == project.clustering.method == "best_links"
    scored_by = _rows(project, "SELECT model_version FROM scoring_model")
    assert scored_by == [(metadata["model_version"].value,)]
    customers = _rows(project, "SELECT count(DISTINCT customer_id) FROM customer_clusters")[0][0]
    metrics = _rows(
        project,
        "SELECT count(*), count(DISTINCT customer_id), sum(records), "
        "count(*) FILTER (WHERE records > 1 AND links = 0) FROM customer_graph_metrics",
    )[0]
    records = _rows(project, "SELECT count(*) FROM customer_records")[0][0]
    assert metrics[:3] == (customers, customers, records)
    assert metrics[3] == 0  # without must-links every multi-record customer has links
    assert metadata["oversized_customers"].value == 0
