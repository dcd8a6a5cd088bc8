"""Blocking analysis: exact counts on a hand-made table, true-pair reach, the comparison
limit in the domain code and in scoring, and the Dagster asset with its blocking check."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from splink import DuckDBAPI, block_on
from splink.blocking_analysis import count_comparisons_from_blocking_rules

from assets.blocking import build_blocking_assets, build_blocking_checks
from linkage.config import ProjectConfig
from linkage.model.blocking_analysis import (
    ANALYSIS_COLUMNS,
    BLOCK_COLUMNS,
    analyse_blocking,
    cumulative_comparisons_png,
)
from linkage.model.comparison_limit import (
    ComparisonLimitError,
    check_comparison_limit,
    comparisons_alone,
    describe_rule,
)
from linkage.model.scoring import predict_pairs
from linkage.warehouse import drop_splink_tables, table_columns, table_exists
from orchestration.build import build_assets, build_resources
from tests.projects import demo_sources, write_project_file

# Eleven records of six people (entity), one of whom (E1) has records a1, a2, a3, e1.
PEOPLE = [
    # unique_id, first_name, last_name, email, entity
    ("a1", "ann", "lee", "ann@mail.se", "E1"),
    ("a2", "ann", "lee", None, "E1"),
    ("a3", "ann", "lee", "ann@mail.se", "E1"),
    ("e1", "ann", None, None, "E1"),
    ("b1", "bob", "lee", "bob@mail.se", "E2"),
    ("b2", "bob", None, "bob@mail.se", "E2"),
    ("c1", "cat", "kim", "shared@mail.se", "E3"),
    ("d1", "dan", "kim", "shared@mail.se", "E4"),
    ("f1", "fay", "lee", None, "E6"),
]
RULES = [("email",), ("first_name", "last_name"), ("last_name",)]

# Each rule alone (a block of n records gives n(n-1)/2 pairs; NULL matches nothing):
#   email:      ann@ {a1,a3} 1 + bob@ {b1,b2} 1 + shared@ {c1,d1} 1            = 3
#   first&last: (ann,lee) {a1,a2,a3} 3; every other (first, last) is alone      = 3
#   last_name:  lee {a1,a2,a3,b1,f1} 10 + kim {c1,d1} 1                         = 11
ALONE = [3, 3, 11]
# In rule order, each rule adds only pairs no earlier rule generated:
#   email adds a1-a3, b1-b2, c1-d1                                             -> 3, total 3
#   first&last adds a1-a2, a2-a3 (a1-a3 came from email)                       -> 2, total 5
#   last_name: of lee's 10 pairs, a1-a2, a1-a3, a2-a3 are known; kim's c1-d1 too -> 7, total 12
MARGINAL = [3, 2, 7]
CUMULATIVE = [3, 5, 12]
# True pairs: E1 has 4 records -> 6 pairs, E2 has 2 -> 1 pair: 7. The truth also knows z9
# in E2, a record not in the table: its pairs b1-z9 and b2-z9 are not counted.
#   email reaches a1-a3 and b1-b2 (c1-d1 are different people)                 -> 2
#   first&last reaches a1-a2, a1-a3, a2-a3                                     -> 3
#   last_name reaches a1-a2, a1-a3, a2-a3 (b1 and f1 are other people)         -> 3
#   together: a1-a3, b1-b2, a1-a2, a2-a3 -> 2, 4, 4 (pairs with e1 lack last name and email)
TRUE_PAIRS = 7
TRUE_ALONE = [2, 3, 3]
TRUE_CUMULATIVE = [2, 4, 4]


@pytest.fixture
def con(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse with the hand-made ``people`` table and its ``ground_truth``."""
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute(
        "CREATE TABLE people (unique_id VARCHAR, first_name VARCHAR, last_name VARCHAR, "
        "email VARCHAR)"
    )
    connection.executemany("INSERT INTO people VALUES (?, ?, ?, ?)", [p[:4] for p in PEOPLE])
    connection.execute("CREATE TABLE ground_truth (unique_id VARCHAR, entity_id VARCHAR)")
    connection.executemany(
        "INSERT INTO ground_truth VALUES (?, ?)", [(p[0], p[4]) for p in PEOPLE] + [("z9", "E2")]
    )
    yield connection
    connection.close()


def _splink_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    return [
        row[0]
        for row in con.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE starts_with(table_name, '__splink__') OR table_name = 'result_df'"
        ).fetchall()
    ]


def test_counts_per_rule_and_cumulative_match_hand_counts(con) -> None:
    analysis = analyse_blocking(con, "people", RULES, max_comparisons=1e6)
    assert [r.rule for r in analysis.rules] == [
        "email",
        "first_name & last_name",
        "last_name",
    ]
    assert [r.comparisons_alone for r in analysis.rules] == ALONE
    assert [r.marginal_comparisons for r in analysis.rules] == MARGINAL
    assert [r.cumulative_comparisons for r in analysis.rules] == CUMULATIVE
    assert not any(r.is_estimate for r in analysis.rules)
    assert analysis.total_comparisons == 12
    assert analysis.all_pairs == 9 * 8 // 2
    assert analysis.within_limit
    assert analysis.true_pairs is None and analysis.true_pair_recall is None
    assert _splink_tables(con) == []


@pytest.mark.parametrize("rule", RULES)
def test_count_alone_equals_splinks_exact_count(con, rule: tuple[str, ...]) -> None:
    db_api = DuckDBAPI(connection=con)
    counted = count_comparisons_from_blocking_rules(
        db_api.register("people"),
        blocking_rules=block_on(*rule),
        link_type="dedupe_only",
        record_sample_proportion=1.0,
    )
    db_api.delete_tables_created_by_splink_from_db()
    drop_splink_tables(con)
    assert comparisons_alone(con, "people", [rule]) == [counted[0]["marginal_comparison_count"]]


def test_tables_hold_one_row_per_rule_and_blocks_without_raw_keys(con) -> None:
    analyse_blocking(con, "people", RULES, max_comparisons=1e6, largest_blocks=2)
    assert table_columns(con, "blocking_analysis") == list(ANALYSIS_COLUMNS)
    assert table_columns(con, "blocking_largest_blocks") == list(BLOCK_COLUMNS)
    assert con.execute(
        "SELECT rule_number, blocking_rule, comparisons_alone, marginal_comparisons, "
        "cumulative_comparisons, true_pair_recall_cumulative FROM blocking_analysis "
        "ORDER BY rule_number"
    ).fetchall() == [
        (1, "email", 3, 3, 3, None),
        (2, "first_name & last_name", 3, 2, 5, None),
        (3, "last_name", 11, 7, 12, None),
    ]
    blocks = con.execute(
        "SELECT rule_number, block_rank, key_hash, key_masked, block_records, block_comparisons "
        "FROM blocking_largest_blocks ORDER BY rule_number, block_rank"
    ).fetchall()

    def digest(*values: str) -> str:
        return hashlib.sha256("\x1f".join(values).encode()).hexdigest()[:16]

    # email: three blocks of two; ties go by key, so ann@ then bob@. first & last: only
    # (ann, lee) has two records or more. last_name: lee (5 records), then kim (2).
    assert blocks == [
        (1, 1, digest("ann@mail.se"), "a***@m***.se", 2, 1),
        (1, 2, digest("bob@mail.se"), "b***@m***.se", 2, 1),
        (2, 1, digest("ann", "lee"), "a*** (3 chars) & l*** (3 chars)", 3, 3),
        (3, 1, digest("lee"), "l*** (3 chars)", 5, 10),
        (3, 2, digest("kim"), "k*** (3 chars)", 2, 1),
    ]
    stored = " ".join(str(cell) for row in blocks for cell in row)
    for _, first, last, email, _ in PEOPLE:
        for value in (first, last, email):
            assert value is None or value not in stored


def test_true_pair_reach_alone_and_cumulative(con) -> None:
    analysis = analyse_blocking(
        con, "people", RULES, max_comparisons=1e6, truth_table="ground_truth"
    )
    assert analysis.true_pairs == TRUE_PAIRS
    assert [r.true_pairs_alone for r in analysis.rules] == TRUE_ALONE
    assert [r.true_pairs_cumulative for r in analysis.rules] == TRUE_CUMULATIVE
    assert analysis.true_pair_recall == pytest.approx(4 / 7)
    recalls = con.execute(
        "SELECT true_pair_recall_alone, true_pair_recall_cumulative FROM blocking_analysis "
        "ORDER BY rule_number"
    ).fetchall()
    assert recalls == [
        pytest.approx((2 / 7, 2 / 7)),
        pytest.approx((3 / 7, 4 / 7)),
        pytest.approx((3 / 7, 4 / 7)),
    ]


def test_labelled_pairs_count_as_true_pairs(con) -> None:
    con.execute(
        "CREATE TABLE labels AS SELECT * FROM (VALUES "
        "('a3', 'a1', 1.0), ('c1', 'd1', 0.9), ('b1', 'f1', 0.1)) "
        "AS t(unique_id_l, unique_id_r, clerical_match_score)"
    )
    # Matches at 0.5 or above: a1-a3 (reached by email and first & last) and c1-d1 (email).
    analysis = analyse_blocking(con, "people", RULES, max_comparisons=1e6, labels_table="labels")
    assert analysis.true_pairs == 2
    assert [r.true_pairs_alone for r in analysis.rules] == [2, 1, 2]
    assert analysis.true_pair_recall == 1.0


def test_limit_equal_to_the_total_passes(con) -> None:
    assert check_comparison_limit(con, "people", RULES, 12) == 12
    assert _splink_tables(con) == []


def test_limit_error_names_total_limit_config_key_and_rule_adding_most(con) -> None:
    # No rule alone is over 11 (last_name gives 11), but together they give 12.
    with pytest.raises(ComparisonLimitError) as error:
        check_comparison_limit(con, "people", RULES, 11)
    assert str(error.value).startswith(
        "blocking rules on 'people' generate 12 record comparisons, more than the limit "
        "of 11 (config key model.max_comparisons). The rule contributing most is "
        "'last_name' with 7 comparisons (58%)."
    )


def test_limit_fails_before_pairing_when_one_rule_alone_is_over(con) -> None:
    with pytest.raises(ComparisonLimitError, match="at least 11 record comparisons") as error:
        check_comparison_limit(con, "people", RULES, 10)
    assert "'last_name' with 11 comparisons alone" in str(error.value)
    assert "model.max_comparisons" in str(error.value)


def test_analysis_over_the_limit_estimates_and_says_why(con) -> None:
    analysis = analyse_blocking(con, "people", RULES, max_comparisons=10)
    assert not analysis.within_limit
    assert all(r.is_estimate for r in analysis.rules)
    assert [r.comparisons_alone for r in analysis.rules] == ALONE  # still exact
    assert "'last_name' with 11 comparisons alone" in (analysis.limit_message() or "")
    assert cumulative_comparisons_png(analysis).startswith(b"\x89PNG")


def test_rules_saved_in_a_model_are_named_and_counted() -> None:
    saved = {
        "blocking_rule": '(l."first_name" = r."first_name") AND (l."last_name" = r."last_name")',
        "sql_dialect": "duckdb",
    }
    assert describe_rule(saved) == "first_name & last_name"
    assert describe_rule("l.first_name = r.first_name AND l.email <> r.email").startswith("l.")


def test_scoring_refuses_to_start_over_the_limit(con) -> None:
    model = {
        "link_type": "dedupe_only",
        "blocking_rules_to_generate_predictions": [
            {"blocking_rule": 'l."email" = r."email"', "sql_dialect": "duckdb"},
            {"blocking_rule": 'l."last_name" = r."last_name"', "sql_dialect": "duckdb"},
        ],
    }
    # email 3, then last_name's 11 pairs less a1-a3 and c1-d1 (both also share an email):
    # 9 more, 12 in all.
    with pytest.raises(ComparisonLimitError, match="generate 12 record comparisons") as error:
        predict_pairs(
            con,
            records_table="people",
            model=model,
            floor=0.5,
            out_table="pairwise_matches",
            max_comparisons=11,
        )
    assert "'last_name' with 9 comparisons (75%)" in str(error.value)
    assert not table_exists(con, "pairwise_matches")
    assert _splink_tables(con) == []


# --- The Dagster asset over the small demo -------------------------------------------------


@pytest.fixture(scope="module")
def demo_folder(
    small_demo: Path, mlflow_uri: str, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, ProjectConfig]:
    """A warehouse holding the small demo's customer_records, and its project."""
    folder = tmp_path_factory.mktemp("blocking")
    project = write_project_file(
        folder, demo_sources(small_demo), mlflow_uri=mlflow_uri, experiment="test-blocking"
    )
    result = dg.materialize(
        build_assets(project),
        resources=build_resources(project),
        selection=dg.AssetSelection.groups("ingestion"),
    )
    assert result.success
    return folder, project


def _materialize_analysis(project: ProjectConfig, *extra: dg.AssetsDefinition):
    return dg.materialize(
        [*build_blocking_assets(project), *build_blocking_checks(project), *extra],
        resources=build_resources(project),
        selection=dg.AssetSelection.assets("blocking_analysis", *[a.key for a in extra]),
        raise_on_error=False,
    )


@pytest.mark.slow
def test_asset_reports_rules_chart_totals_and_recall(demo_folder) -> None:
    _, project = demo_folder
    result = _materialize_analysis(project)
    assert result.success
    [materialization] = result.asset_materializations_for_node("blocking_analysis")
    metadata = {key: value.value for key, value in materialization.metadata.items()}
    assert metadata["dagster/table_name"] == "warehouse.main.blocking_analysis"
    rules = metadata["rules"].records
    assert len(rules) == metadata["dagster/row_count"] >= 5
    assert rules[0].data["blocking_rule"] == "email"
    assert metadata["total_comparisons"] == float(rules[-1].data["cumulative_comparisons"]) > 0
    assert 0.5 < metadata["true_pair_recall"] <= 1.0
    assert metadata["cumulative_comparisons"].startswith("![cumulative comparisons](data:image/png")
    assert metadata["largest_blocks"].records
    [check] = result.get_asset_check_evaluations()
    assert check.check_name == "blocking_analysis_within_comparison_limit"
    assert check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR


@pytest.mark.slow
def test_check_over_the_limit_fails_and_blocks_downstream(
    demo_folder, small_demo: Path, mlflow_uri: str
) -> None:
    folder, project = demo_folder
    tight = write_project_file(
        folder,
        {**demo_sources(small_demo), "model": {"max_comparisons": 100}},
        mlflow_uri=mlflow_uri,
        experiment="test-blocking",
        name="tight.yaml",
    )
    assert tight.warehouse == project.warehouse

    @dg.asset(deps=["blocking_analysis"])
    def downstream() -> None:
        """Stands for pairwise_matches: must not run when the limit is broken."""

    result = _materialize_analysis(tight, downstream)
    [check] = result.get_asset_check_evaluations()
    assert not check.passed
    assert check.severity == dg.AssetCheckSeverity.ERROR
    assert "more than the limit of 100 (config key model.max_comparisons)" in (
        check.description or ""
    )
    assert not result.asset_materializations_for_node("downstream")


@pytest.mark.slow
def test_asset_reaches_labelled_pairs_without_truth(
    demo_folder, small_demo: Path, mlflow_uri: str
) -> None:
    folder, project = demo_folder
    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        same_email = con.execute(
            "SELECT l.unique_id, r.unique_id FROM customer_records l JOIN customer_records r "
            "ON l.email = r.email AND l.unique_id < r.unique_id ORDER BY 1, 2 LIMIT 3"
        ).fetchall()
    finally:
        con.close()
    labels = folder / "labels.csv"
    labels.write_text(
        "unique_id_l,unique_id_r,clerical_match_score\n"
        + "".join(f"{left},{right},1.0\n" for left, right in same_email),
        encoding="utf-8",
    )
    labelled = write_project_file(
        folder,
        {"sources": demo_sources(small_demo)["sources"], "labels": {"path": str(labels)}},
        mlflow_uri=mlflow_uri,
        experiment="test-blocking",
        name="labelled.yaml",
    )
    result = _materialize_analysis(labelled)
    assert result.success
    [materialization] = result.asset_materializations_for_node("blocking_analysis")
    # Three labelled matches, each sharing an e-mail, so the email rule reaches them all.
    assert materialization.metadata["true_pairs"].value == 3
    assert materialization.metadata["true_pair_recall"].value == 1.0


@pytest.mark.slow
def test_asset_analyses_the_configured_prediction_rules(
    demo_folder, small_demo: Path, mlflow_uri: str
) -> None:
    folder, _ = demo_folder
    configured = write_project_file(
        folder,
        {
            **demo_sources(small_demo),
            "model": {"prediction_rules": [["phone"], ["last_name", "postcode"]]},
        },
        mlflow_uri=mlflow_uri,
        experiment="test-blocking",
        name="configured_rules.yaml",
    )
    result = _materialize_analysis(configured)
    assert result.success
    [materialization] = result.asset_materializations_for_node("blocking_analysis")
    rules = [row.data["blocking_rule"] for row in materialization.metadata["rules"].value.records]
    assert rules == ["phone", "last_name & postcode"]
