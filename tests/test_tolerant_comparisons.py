"""The tolerant comparisons put real errors at the levels named after them (real Splink)."""

from __future__ import annotations

import logging
from datetime import date

import duckdb
import pandas as pd
import pytest
from splink import DuckDBAPI, Linker

from linkage.canonical import STAGED_COLUMNS
from linkage.ingest.field_parts import phonetic_parts
from linkage.ingest.standardise.contact import phone_match_forms
from linkage.model.settings import ModelSpec, model_settings

COLUMNS = [
    "first_name",
    "last_name",
    "date_of_birth",
    "phone",
    "phone_national",
    "phone_valid",
    "first_name_phonetic",
    "last_name_phonetic",
]


def _record(uid: str, first: str, last: str, born: str, phone: str, region: str) -> dict:
    forms = phone_match_forms(phone, region)
    return {
        "unique_id": uid,
        "source_system": "t",
        "first_name": first,
        "last_name": last,
        "date_of_birth": date.fromisoformat(born),
        "phone": forms.number,
        "phone_national": forms.national,
        "phone_valid": forms.valid,
        "first_name_phonetic": phonetic_parts(first)[0],
        "last_name_phonetic": phonetic_parts(last)[0],
    }


def _levels(left: dict, right: dict, spec: ModelSpec) -> dict[str, str]:
    """The label of the level each comparison puts the pair at."""
    assert set(COLUMNS) <= set(STAGED_COLUMNS)
    built = model_settings(COLUMNS, spec)
    con = duckdb.connect()
    con.register("records_df", pd.DataFrame([left, right]))
    con.execute("CREATE TABLE records AS SELECT * FROM records_df")
    for side in ("a", "b"):
        con.execute(f"CREATE TABLE side_{side} AS SELECT * FROM records WHERE unique_id = '{side}'")
    api = DuckDBAPI(connection=con)
    linker = Linker(api.register("records"), built.settings, log_level=logging.ERROR)
    scored = linker.inference.score_pairs(
        api.register("side_a"), api.register("side_b")
    ).as_pandas_dataframe()
    labels = {}
    for comparison in linker._settings_obj.comparisons:
        gamma = int(scored[f"gamma_{comparison.output_column_name}"].iloc[0])
        level = next(
            lv for lv in comparison.comparison_levels if lv.comparison_vector_value == gamma
        )
        labels[comparison.output_column_name] = level.label_for_charts
    con.close()
    return labels


BASE = ("a", "Catherine", "Smith", "1985-03-12", "070-123 45 67", "SE")


@pytest.mark.parametrize(
    ("right", "comparison", "label"),
    [
        (
            ("b", "Kathryn", "Smith", "1985-03-12", "", "SE"),
            "first_name",
            "Sounds alike (Metaphone)",
        ),
        (("b", "C", "Smith", "1985-03-12", "", "SE"), "first_name", "Initial agrees with the name"),
        (
            ("b", "Catherine", "Smith", "1985-03-21", "", "SE"),
            "date_of_birth",
            "One typo or two digits transposed",
        ),
        (
            ("b", "Catherine", "Smith", "1958-03-12", "", "SE"),
            "date_of_birth",
            "One typo or two digits transposed",
        ),
        (
            ("b", "Catherine", "Smith", "1985-03-12", "+46701234567", "SE"),
            "phone",
            "Same valid number",
        ),
        (
            ("b", "Catherine", "Smith", "1985-03-12", "070-123 45 67", "DE"),
            "phone",
            "Same national number",
        ),
        (
            ("b", "Catherine", "Smith", "1985-03-12", "08-123 45 67", "SE"),
            "phone",
            "Same last 7 digits",
        ),
    ],
)
def test_an_error_lands_at_its_level(right: tuple, comparison: str, label: str) -> None:
    levels = _levels(_record(*BASE), _record(*right), ModelSpec())
    assert levels[comparison] == label


def test_an_equal_invalid_number_is_its_own_level() -> None:
    left = _record("a", "Anna", "Berg", "1980-01-01", "070-123 45", "SE")
    right = _record("b", "Anna", "Berg", "1980-01-01", "+46 70 123 45", "SE")
    assert left["phone_valid"] is False
    assert _levels(left, right, ModelSpec())["phone"] == "Same number, fails validation"


def test_plain_comparisons_have_none_of_the_tolerant_levels() -> None:
    right = _record("b", "Kathryn", "Smith", "1985-03-21", "070-123 45 67", "DE")
    levels = _levels(_record(*BASE), right, ModelSpec(robust_comparisons=False))
    assert levels["first_name"] != "Sounds alike (Metaphone)"
    assert levels["date_of_birth"] == "Within one year"  # a transposition is two edits
    assert levels["phone"] == "All other comparisons"
