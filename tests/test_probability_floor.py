"""No accidental vetoes: m and u floors, unobserved levels, extreme weights (real Splink)."""

from __future__ import annotations

import math
from pathlib import Path

import duckdb
import pytest
from splink import DuckDBAPI, Linker

from linkage.demo.generator import generate
from linkage.model.settings import ModelSpec, model_settings
from tests.projects import ingested_demo_project
from training.probability_floor import WEIGHT_BOUND, apply_probability_floor
from training.train import train_linkage_model


def _linker() -> Linker:
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE records AS SELECT * FROM (VALUES ('a', 'anna', 'berg'), "
        "('b', 'anna', 'berg'), ('c', 'olle', 'lund')) AS t(unique_id, first_name, last_name)"
    )
    built = model_settings(["first_name", "last_name"], ModelSpec())
    return Linker(DuckDBAPI(connection=con).register("records"), built.settings)


def _levels(linker: Linker, comparison: str) -> list:
    found = next(c for c in linker._settings_obj.comparisons if c.output_column_name == comparison)
    return [lv for lv in found.comparison_levels if not lv.is_null_level]


def test_m_below_the_floor_is_raised_and_unobserved_levels_get_a_neutral_weight() -> None:
    linker = _linker()
    first = _levels(linker, "first_name")
    for level in first:
        level.m_probability, level.u_probability = 0.2, 0.05
    first[1].m_probability = 1.9e-19  # what EM made of "one typo" on clean data
    first[2].u_probability = 1e-9
    for level in _levels(linker, "last_name"):
        level.m_probability, level.u_probability = 0.3, 0.1
    untrained = _levels(linker, "last_name")[2]
    untrained._m_probability = None

    report = apply_probability_floor(linker, 1e-3, u_floor=1e-6)

    assert first[1].m_probability == pytest.approx(1e-3)
    assert first[2].u_probability == pytest.approx(1e-6)
    assert untrained.m_probability == untrained.u_probability  # weight 0
    name = f"last_name / {untrained.label_for_charts}"
    assert report.unobserved == [name]
    assert f"first_name / {first[1].label_for_charts}" in report.raised
    assert f"first_name / {first[2].label_for_charts}" in report.raised
    weight = math.log2(0.2 / 1e-6)
    assert weight > WEIGHT_BOUND
    assert report.extreme[f"first_name / {first[2].label_for_charts}"] == round(weight, 2)
    assert all(level.m_probability >= 1e-3 for level in first)


def test_floor_zero_leaves_trained_values_alone() -> None:
    linker = _linker()
    first = _levels(linker, "first_name")
    for level in first:
        level.m_probability, level.u_probability = 0.2, 0.05
    first[1].m_probability = 1e-12
    report = apply_probability_floor(linker, 0.0, u_floor=1e-12)
    assert first[1].m_probability == pytest.approx(1e-12)
    assert report.raised == []
    assert report.extreme  # -37 bits is still reported


@pytest.mark.slow
def test_training_on_a_small_clean_source_keeps_every_m_above_the_floor(
    tmp_path: Path, mlflow_uri: str
) -> None:
    """200 persons of the clean demo at this seed once made Splink's EM write m = 0.0
    and fail; the EM floor keeps every m at or above ``model.probability_floor``."""
    generate(tmp_path / "demo", persons=200, seed=20261203, profile="clean")
    project = ingested_demo_project(
        tmp_path, tmp_path / "demo", mlflow_uri=mlflow_uri, experiment="floor-small-clean"
    )
    options = project.training_options()
    with duckdb.connect(str(project.warehouse)) as con:
        trained = train_linkage_model(con, "customer_records", options, tmp_path / "model")
    floor = options.model.probability_floor
    report = trained.floor_report
    assert report is not None and report.floor == floor
    for comparison in trained.model["comparisons"]:
        for level in comparison["comparison_levels"]:
            if level.get("is_null_level"):
                continue
            name = f"{comparison['output_column_name']} / {level['label_for_charts']}"
            assert level["u_probability"] >= 1 / options.u_max_pairs * (1 - 1e-9), name
            if name in report.unobserved:
                assert level["m_probability"] == level["u_probability"], name
            else:
                assert level["m_probability"] >= floor * (1 - 1e-9), name
