"""Training on real staged records: reproducible, complete, and honest about its data."""

from __future__ import annotations

import math
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from orchestration.build import build_assets, build_resources
from orchestration.project import ProjectConfig
from training.train import TrainingOptions, train_linkage_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def staged_warehouse(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> ProjectConfig:
    """A warehouse with customer_records of the small demo, nothing trained yet."""
    from tests.projects import demo_project_file

    project = demo_project_file(
        tmp_path_factory.mktemp("training"),
        small_demo,
        mlflow_uri=mlflow_uri,
        experiment="test-training",
    )
    result = dg.materialize(
        build_assets(project),
        resources=build_resources(project),
        selection=dg.AssetSelection.groups("ingestion"),
    )
    assert result.success
    return project


def _parameters(model: dict) -> dict:
    """Lambda and every m and u probability of a Splink model, by level."""
    values = {"lambda": model["probability_two_random_records_match"]}
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            for key in ("m_probability", "u_probability"):
                if key in level:
                    values[(comparison["output_column_name"], level["sql_condition"], key)] = level[
                        key
                    ]
    return values


def _same_parameters(a: dict, b: dict) -> bool:
    # DuckDB sums in parallel, so the last bits of a float can differ between runs.
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=1e-9) for k in a)


def test_same_records_and_seed_give_the_same_model(staged_warehouse, tmp_path: Path) -> None:
    # A u sample smaller than all pairs, so that the seed matters.
    def options(seed: int) -> TrainingOptions:
        return TrainingOptions(seed=seed, u_max_pairs=2e4)

    con = duckdb.connect(str(staged_warehouse.warehouse))
    try:
        first = train_linkage_model(con, "customer_records", options(3), tmp_path / "a")
        second = train_linkage_model(con, "customer_records", options(3), tmp_path / "b")
        other = train_linkage_model(con, "customer_records", options(4), tmp_path / "c")
    finally:
        con.close()
    assert _same_parameters(_parameters(first.model), _parameters(second.model))
    assert not _same_parameters(_parameters(first.model), _parameters(other.model))


def test_training_reports_what_it_did(staged_warehouse, tmp_path: Path) -> None:
    con = duckdb.connect(str(staged_warehouse.warehouse))
    try:
        result = train_linkage_model(con, "customer_records", TrainingOptions(), tmp_path)
        leftovers = con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_name LIKE '__splink__%'"
        ).fetchall()[0][0]
    finally:
        con.close()
    assert leftovers == 0
    assert {
        "first_name",
        "last_name",
        "date_of_birth",
        "email",
        "phone",
        "address",
        "loyalty_card",
        "customer_number",
        "device_id",
    } == set(result.comparisons)
    assert len(result.em_sessions) >= 2 and all(s.iterations >= 1 for s in result.em_sessions)
    assert 0 < result.probability_two_random_records_match < 0.01
    assert result.comparisons_to_score > result.records
    assert (result.charts["match_weights"]).read_text().startswith("<!DOCTYPE html>")
    levels = {
        level.get("label_for_charts")
        for comparison in result.model["comparisons"]
        for level in comparison["comparison_levels"]
    }
    assert "Day and month swapped" in levels and "Matches the other record's last_name" in levels


def test_too_little_to_link_is_a_clear_error(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    con.execute("CREATE TABLE customer_records (unique_id VARCHAR, first_name VARCHAR)")
    con.execute("INSERT INTO customer_records VALUES ('a:1', 'anna')")
    with pytest.raises(ValueError, match="need at least 2"):
        train_linkage_model(con, "customer_records", TrainingOptions(), tmp_path)
    con.close()
