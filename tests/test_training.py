"""Training on real staged records: reproducible, complete, and honest about its data."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest

from linkage.config import ProjectConfig
from linkage.model.settings import ModelSpec
from linkage.model.training_options import TrainingOptions
from tests.projects import ingested_demo_project
from training.tracking import fixed_level_params, training_params
from training.train import train_linkage_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def staged_warehouse(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> ProjectConfig:
    """A warehouse with customer_records of the small demo, nothing trained yet."""
    return ingested_demo_project(
        tmp_path_factory.mktemp("training"),
        small_demo,
        mlflow_uri=mlflow_uri,
        experiment="test-training",
    )


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


WORKBENCH_MODEL = {
    "comparisons": {
        "email": {"function": "EmailComparison"},
        "city": {
            "function": "JaroWinklerAtThresholds",
            "args": {"score_threshold_or_thresholds": [0.9, 0.8]},
            "term_frequency_adjustments": True,
        },
        "phone": {"off": True},
    },
    "prediction_rules": [["email"], ["first_name", "last_name"], ["date_of_birth", "city"]],
    "training_rules": [["first_name", "last_name"], ["date_of_birth"]],
    "fixed": {
        "email": {"Exact match on email": {"m": 0.93, "u": 0.00021}},
        "first_name": {1: {"m": 0.0123}},
        "last_name": {"Exact match on last_name": {"u": 0.0042}},
    },
}
"""A model section that changes comparisons, rules and fixes m and u by hand."""


def test_same_records_config_and_seed_give_the_same_model(staged_warehouse, tmp_path: Path) -> None:
    spec = ModelSpec.from_config(WORKBENCH_MODEL)
    spec.check()

    def options(seed: int) -> TrainingOptions:
        return TrainingOptions(seed=seed, u_max_pairs=2e4, model=spec)

    con = duckdb.connect(str(staged_warehouse.warehouse))
    try:
        first = train_linkage_model(con, "customer_records", options(3), tmp_path / "a")
        second = train_linkage_model(con, "customer_records", options(3), tmp_path / "b")
        other = train_linkage_model(con, "customer_records", options(4), tmp_path / "c")
    finally:
        con.close()
    assert "phone" not in first.comparisons and "city" in first.comparisons
    assert first.training_rules == ["first_name & last_name", "date_of_birth"]
    assert _same_parameters(_parameters(first.model), _parameters(second.model))
    assert not _same_parameters(_parameters(first.model), _parameters(other.model))


def _level(model: dict, comparison: str, label: str) -> dict:
    levels = {c["output_column_name"]: c for c in model["comparisons"]}[comparison]
    return next(lv for lv in levels["comparison_levels"] if lv.get("label_for_charts") == label)


def test_fixed_m_and_u_are_kept_by_training_and_recorded(staged_warehouse, tmp_path: Path) -> None:
    spec = ModelSpec.from_config(WORKBENCH_MODEL)
    con = duckdb.connect(str(staged_warehouse.warehouse))
    try:
        trained = train_linkage_model(
            con, "customer_records", TrainingOptions(u_max_pairs=2e4, model=spec), tmp_path
        )
        free = train_linkage_model(
            con,
            "customer_records",
            TrainingOptions(u_max_pairs=2e4, model=ModelSpec.from_config({})),
            tmp_path / "free",
        )
    finally:
        con.close()
    # Exactly the configured values, through u sampling and both EM sessions...
    email = _level(trained.model, "email", "Exact match on email")
    assert (email["m_probability"], email["u_probability"]) == (0.93, 0.00021)
    assert email["fix_m_probability"] and email["fix_u_probability"]
    jaro = _level(trained.model, "first_name", "Jaro-Winkler distance of first_name >= 0.7")
    assert jaro["m_probability"] == 0.0123 and jaro["fix_m_probability"]
    assert not jaro["fix_u_probability"] and jaro["u_probability"] != 0.0123
    last = _level(trained.model, "last_name", "Exact match on last_name")
    assert last["u_probability"] == 0.0042 and last["fix_u_probability"]
    assert not last["fix_m_probability"]
    # ... where training left to itself finds other values.
    free_last = _level(free.model, "last_name", "Exact match on last_name")
    assert free_last["u_probability"] != 0.0042 and not free_last["fix_u_probability"]
    # The result and the MLflow parameters say what was fixed.
    assert {(f.comparison, f.label, f.m, f.u) for f in trained.fixed_levels} == {
        ("email", "Exact match on email", 0.93, 0.00021),
        ("first_name", "Jaro-Winkler distance of first_name >= 0.7", 0.0123, None),
        ("last_name", "Exact match on last_name", None, 0.0042),
    }
    assert free.fixed_levels == []
    params = fixed_level_params(trained)
    assert params == {
        "fixed.email.exact_match_on_email.m": 0.93,
        "fixed.email.exact_match_on_email.u": 0.00021,
        "fixed.first_name.jaro_winkler_distance_of_first_name_0_7.m": 0.0123,
        "fixed.last_name.exact_match_on_last_name.u": 0.0042,
    }
    all_params = training_params(trained, TrainingOptions(model=spec), threshold=0.9, floor=0.2)
    assert params.items() <= all_params.items()
