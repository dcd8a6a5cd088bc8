"""Automatic blocking: rules chosen from the data by the trained model, within a budget."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import duckdb
import pytest

from linkage.config import ProjectConfig
from linkage.model.blocking import (
    PREDICTION_RULES,
    candidate_rules,
    describe,
    rule_columns,
    rule_expressions,
    to_splink,
    usable_rules,
)
from linkage.model.comparison_limit import comparisons_alone
from linkage.model.rule_selection import chosen_rules, write_rule_choice
from linkage.tables import BLOCKING_RULE_CANDIDATES, CUSTOMER_RECORDS
from tests.projects import ingested_demo_project
from training.steps.blocking import analyse_project_blocking
from training.train import columns_with_data, train_linkage_model

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def staged(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> ProjectConfig:
    return ingested_demo_project(
        tmp_path_factory.mktemp("rules"), small_demo, mlflow_uri=mlflow_uri, experiment="rules"
    )


def test_derived_keys_are_sql_over_the_columns_they_need() -> None:
    rule = ("first_name_initial", "last_name_phonetic", "birth_year")
    assert rule_expressions(rule)[0] == "substr(first_name, 1, 1)"
    assert rule_columns(rule) == {"first_name", "last_name_phonetic", "date_of_birth"}
    assert rule_columns(("name_pair",)) == {"first_name", "last_name"}
    sql = to_splink([rule])[0].get_blocking_rule("duckdb").blocking_rule_sql
    assert "SUBSTRING(l.first_name, 1, 1) = SUBSTRING(r.first_name, 1, 1)" in sql
    assert ("birth_place",) in candidate_rules(["birth_place"])


def test_auto_blocking_chooses_rules_within_the_budget_that_reach_likely_matches(
    staged: ProjectConfig, tmp_path: Path
) -> None:
    options = staged.training_options()
    with duckdb.connect(str(staged.warehouse)) as con:
        result = train_linkage_model(con, CUSTOMER_RECORDS, options, tmp_path)
        choice = result.rule_choice
        assert choice is not None and choice.chosen
        records = con.execute(f"SELECT count(*) FROM {CUSTOMER_RECORDS}").fetchall()[0][0]
        assert choice.budget == int(options.comparisons_per_record * records)
        costs = comparisons_alone(con, CUSTOMER_RECORDS, choice.chosen)
        assert sum(costs) <= choice.budget
        assert choice.reach_of_chosen >= 0.9
        assert result.prediction_rules == describe(choice.chosen)
        saved = result.model["blocking_rules_to_generate_predictions"]
        assert len(saved) == len(choice.chosen)
        # Every candidate with data is accounted for, chosen or with a reason.
        columns = columns_with_data(con, CUSTOMER_RECORDS, options.model.candidate_columns)
        usable = usable_rules(candidate_rules(), columns)
        assert {c.rule for c in choice.candidates} == set(usable)
        assert all(c.why for c in choice.candidates)

        write_rule_choice(con, choice)
        assert chosen_rules(con) == choice.chosen
        analysis = analyse_project_blocking(con, staged)
        assert [r.rule for r in analysis.rules] == describe(choice.chosen)
        measured = con.execute(
            f"SELECT count(*), count(true_pair_reach) FROM {BLOCKING_RULE_CANDIDATES}"
        ).fetchall()[0]
        assert measured[0] == measured[1] == len(choice.candidates)
        # The truth-measured reach of the chosen set is close to the estimate.
        assert analysis.true_pair_recall is not None
        assert analysis.true_pair_recall >= choice.reach_of_chosen - 0.1


def test_a_tight_budget_leaves_out_what_does_not_fit(staged: ProjectConfig, tmp_path: Path) -> None:
    options = replace(staged.training_options(), comparisons_per_record=0.5)
    with duckdb.connect(str(staged.warehouse)) as con:
        choice = train_linkage_model(con, CUSTOMER_RECORDS, options, tmp_path).rule_choice
        assert choice is not None
        costs = comparisons_alone(con, CUSTOMER_RECORDS, choice.chosen)
    assert sum(costs) <= choice.budget
    out = [c for c in choice.candidates if c.chosen_order is None]
    assert any("over the budget" in c.why for c in out)


def test_pinned_and_fixed_rules_are_used_as_given(staged: ProjectConfig, tmp_path: Path) -> None:
    spec = staged.model_spec()
    pinned = replace(
        spec, prediction_rules=(("email",), ("last_name", "birth_year")), rules_pinned=True
    )
    fixed = replace(spec, blocking="fixed")
    with duckdb.connect(str(staged.warehouse)) as con:
        options = staged.training_options()
        by_hand = train_linkage_model(
            con, CUSTOMER_RECORDS, replace(options, model=pinned), tmp_path
        )
        fixed_result = train_linkage_model(
            con, CUSTOMER_RECORDS, replace(options, model=fixed), tmp_path
        )
        columns = columns_with_data(con, CUSTOMER_RECORDS, spec.candidate_columns)
    assert by_hand.rule_choice is None
    assert by_hand.prediction_rules == ["email", "last_name & birth_year"]
    assert fixed_result.rule_choice is None
    assert fixed_result.prediction_rules == describe(usable_rules(PREDICTION_RULES, columns))
    saved = json.dumps(by_hand.model["blocking_rules_to_generate_predictions"])
    assert "YEAR(l.date_of_birth) = YEAR(r.date_of_birth)" in saved
