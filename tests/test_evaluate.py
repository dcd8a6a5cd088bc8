"""Evaluation metrics on hand-made cases, computed by hand in the comments, and the
evaluation asset over a real pipeline."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from mlflow.tracking import MlflowClient

from linkage.config import ProjectConfig
from orchestration.build import build_assets, build_resources
from tests.projects import demo_sources
from training.evaluate import evaluate_clusters, f_beta, score_pairs
from training.evaluation_charts import precision_recall_png, worst_pairs
from training.ground_truth import count_true_pairs, truth_judged_pairs_sql
from training.threshold_curve import curve_from_judged_pairs, threshold_curve


def test_hand_computed_case() -> None:
    # Truth: {r1, r2, r3} are person X, {r4, r5} are Y, {r6} is Z.
    # Predicted: {r1, r2} -> A, {r3, r4, r5} -> B, {r6} -> C.
    truth = ["X", "X", "X", "Y", "Y", "Z"]
    predicted = ["A", "A", "B", "B", "B", "C"]
    scores = evaluate_clusters(predicted, truth)
    # Predicted pairs: A: 1 (r1r2); B: 3 (r3r4, r3r5, r4r5) -> 4. True pairs: X: 3, Y: 1 -> 4.
    # True positives: r1r2 and r4r5 -> 2. So precision 2/4, recall 2/4.
    assert scores.pairwise_true_positives == 2
    assert scores.pairwise_false_positives == 2
    assert scores.pairwise_false_negatives == 2
    assert scores.pairwise_precision == pytest.approx(0.5)
    assert scores.pairwise_recall == pytest.approx(0.5)
    assert scores.pairwise_f1 == pytest.approx(0.5)
    # Exact clusters: only C == Z. Precision 1/3 predicted, recall 1/3 true.
    assert scores.exact_clusters == 1
    assert scores.cluster_precision == pytest.approx(1 / 3)
    assert scores.cluster_recall == pytest.approx(1 / 3)
    assert scores.cluster_f1 == pytest.approx(1 / 3)
    # B-cubed precision, record by record: |own customer ∩ own entity| / |own customer|.
    # r1, r2: A={r1,r2} all X -> 2/2, 2/2. r3: B={r3,r4,r5}, one X -> 1/3.
    # r4, r5: B, two Y -> 2/3, 2/3. r6: C={r6} -> 1. Mean (1+1+1/3+2/3+2/3+1)/6 = 7/9.
    assert scores.bcubed_precision == pytest.approx(7 / 9)
    # B-cubed recall: |own customer ∩ own entity| / |own entity|.
    # r1, r2: X={r1,r2,r3}, A holds 2 -> 2/3 each. r3: B holds 1 of X -> 1/3.
    # r4, r5: Y={r4,r5} all in B -> 1, 1. r6 -> 1. Mean (2/3+2/3+1/3+1+1+1)/6 = 7/9.
    assert scores.bcubed_recall == pytest.approx(7 / 9)
    assert scores.bcubed_f1 == pytest.approx(7 / 9)
    # Adjusted Rand index from the contingency table (rows X, Y, Z; columns A, B, C):
    # X: 2 1 0 / Y: 0 2 0 / Z: 0 0 1. Sum of C(n_ij, 2) = 1 + 1 = 2.
    # Row sums 3, 2, 1 -> C: 3 + 1 + 0 = 4; column sums 2, 3, 1 -> 1 + 3 + 0 = 4; C(6, 2) = 15.
    # Expected = 4 * 4 / 15 = 16/15; max = (4 + 4) / 2 = 4.
    # ARI = (2 - 16/15) / (4 - 16/15) = (14/15) / (44/15) = 7/22.
    assert scores.adjusted_rand_index == pytest.approx(7 / 22)


def test_metric_names_are_stable() -> None:
    """MLflow and linkage_evaluation compare runs by these names: renaming one breaks that."""
    names = set(evaluate_clusters(["a", "b"], ["x", "x"]).as_metrics())
    assert {
        "pairwise_precision",
        "pairwise_recall",
        "pairwise_f1",
        "cluster_precision",
        "cluster_recall",
        "cluster_f1",
        "bcubed_precision",
        "bcubed_recall",
        "bcubed_f1",
        "adjusted_rand_index",
    } <= names


def test_perfect_clustering() -> None:
    scores = evaluate_clusters(["a", "a", "b"], ["x", "x", "y"])
    assert scores.pairwise_f1 == 1.0 and scores.cluster_f1 == 1.0
    assert scores.bcubed_f1 == 1.0 and scores.adjusted_rand_index == 1.0


def test_everything_merged() -> None:
    # One predicted cluster of 4 records from 2 people of 2: 6 predicted pairs, 2 true.
    scores = evaluate_clusters(["a"] * 4, ["x", "x", "y", "y"])
    assert scores.pairwise_precision == pytest.approx(2 / 6)
    assert scores.pairwise_recall == 1.0
    assert scores.cluster_precision == 0.0
    # B-cubed: every record's customer is 4 records, 2 of its person -> precision 1/2;
    # its whole person is in that customer -> recall 1; F1 = 2 * 1/2 / (3/2) = 2/3.
    assert scores.bcubed_precision == pytest.approx(0.5)
    assert scores.bcubed_recall == 1.0
    assert scores.bcubed_f1 == pytest.approx(2 / 3)
    # ARI: sum C(n_ij, 2) = C(2,2) + C(2,2) = 2; rows (x, y) 1 + 1 = 2; column C(4,2) = 6;
    # C(4,2) = 6 pairs. Expected = 2 * 6 / 6 = 2, max = (2 + 6) / 2 = 4 -> (2 - 2) / 2 = 0.
    assert scores.adjusted_rand_index == pytest.approx(0.0)


def test_all_singletons_have_no_pairs() -> None:
    scores = evaluate_clusters(["a", "b", "c"], ["x", "y", "z"])
    assert scores.pairwise_precision == 0.0 and scores.pairwise_recall == 0.0
    assert scores.cluster_f1 == 1.0


@pytest.mark.parametrize(("predicted", "truth"), [([], []), (["a"], ["x", "y"])])
def test_bad_input(predicted: list[str], truth: list[str]) -> None:
    with pytest.raises(ValueError):
        evaluate_clusters(predicted, truth)


# --------------------------------------------------------------------------- #
# F-beta, pair scores and the threshold curve
# --------------------------------------------------------------------------- #


@pytest.mark.parametrize(
    ("precision", "recall", "beta", "expected"),
    [
        (0.5, 0.5, 1.0, 0.5),
        # F2 = 5PR / (4P + R) = 5 * 1 * 0.5 / (4 + 0.5) = 2.5 / 4.5.
        (1.0, 0.5, 2.0, 2.5 / 4.5),
        # F0.5 = 1.25PR / (0.25P + R) = 1.25 * 0.5 / (0.25 + 0.5) = 0.625 / 0.75.
        (1.0, 0.5, 0.5, 0.625 / 0.75),
        (0.0, 0.0, 1.0, 0.0),
    ],
)
def test_f_beta(precision: float, recall: float, beta: float, expected: float) -> None:
    assert f_beta(precision, recall, beta) == pytest.approx(expected)


def test_score_pairs_counts_links_against_matches() -> None:
    # Pairs: (link, match) x2 = TP 2; (link, no match) = FP 1; (no link, match) = FN 1;
    # (no link, no match) counts nowhere. Precision 2/3, recall 2/3.
    scores = score_pairs([True, True, True, False, False], [True, True, False, True, False])
    assert (scores.true_positives, scores.false_positives, scores.false_negatives) == (2, 1, 1)
    assert scores.precision == pytest.approx(2 / 3)
    assert scores.recall == pytest.approx(2 / 3)
    assert scores.f1 == pytest.approx(2 / 3)


# Scored pairs (probability, true match): 0.9 T, 0.8 F, 0.6 T, 0.3 F, one vetoed pair
# (None) F; four true pairs known, so two true pairs were never scored.
CURVE_PROBABILITIES = [0.9, 0.8, 0.6, 0.3, None]
CURVE_MATCHES = [True, False, True, False, False]


def test_threshold_curve_hand_computed() -> None:
    curve = threshold_curve(CURVE_PROBABILITIES, CURVE_MATCHES, true_pairs=4, beta=1.0)
    # At >= 0.9: TP 1, FP 0 -> P 1, R 1/4, F1 2 * 1/4 / (5/4) = 0.4.
    # At >= 0.8: TP 1, FP 1 -> P 1/2, R 1/4, F1 2 * 1/8 / (3/4) = 1/3.
    # At >= 0.6: TP 2, FP 1 -> P 2/3, R 1/2, F1 2 * 1/3 / (7/6) = 4/7.
    # At >= 0.3: TP 2, FP 2 -> P 1/2, R 1/2, F1 1/2.
    expected = [
        (0.9, 1, 0, 1.0, 0.25, 0.4),
        (0.8, 1, 1, 0.5, 0.25, 1 / 3),
        (0.6, 2, 1, 2 / 3, 0.5, 4 / 7),
        (0.3, 2, 2, 0.5, 0.5, 0.5),
    ]
    got = [
        (p.threshold, p.true_positives, p.false_positives, p.precision, p.recall, p.f_beta)
        for p in curve.points
    ]
    assert got == [pytest.approx(row) for row in expected]
    assert curve.best is not None and curve.best.threshold == 0.6
    assert curve.true_pairs == 4 and curve.true_pairs_scored == 2
    metrics = curve.metrics()
    assert metrics["best_threshold"] == 0.6
    assert metrics["best_f_beta"] == pytest.approx(4 / 7)
    assert metrics["curve_true_pairs_not_scored"] == 2.0


def test_threshold_curve_uses_beta_and_breaks_ties_upwards() -> None:
    # F2 = 5PR / (4P + R): at 0.9 1.25/4.25 = 0.294; at 0.8 0.625/2.25 = 0.278;
    # at 0.6 (5/3)/(19/6) = 10/19 = 0.526; at 0.3 1.25/2.5 = 0.5 -> best 0.6.
    curve = threshold_curve(CURVE_PROBABILITIES, CURVE_MATCHES, true_pairs=4, beta=2.0)
    assert curve.best is not None
    assert (curve.best.threshold, curve.best.f_beta) == (0.6, pytest.approx(10 / 19))
    # F0.5 = 1.25PR / (0.25P + R): at 0.9 0.3125/0.5 = 0.625; at 0.6 (5/12)/(2/3) = 0.625;
    # a tie, and the higher threshold (fewer links for the same score) wins.
    curve = threshold_curve(CURVE_PROBABILITIES, CURVE_MATCHES, true_pairs=4, beta=0.5)
    assert curve.best is not None
    assert (curve.best.threshold, curve.best.f_beta) == (0.9, pytest.approx(0.625))


def test_threshold_curve_groups_equal_scores() -> None:
    # Two pairs at 0.7 are linked together or not at all: one point, TP 1 and FP 1.
    curve = threshold_curve([0.7, 0.7], [True, False], true_pairs=1, beta=1.0)
    assert [(p.threshold, p.true_positives, p.false_positives) for p in curve.points] == [
        (0.7, 1, 1)
    ]


def test_threshold_curve_without_scored_pairs_has_no_best() -> None:
    curve = threshold_curve([None], [True], true_pairs=3, beta=1.0)
    assert curve.points == [] and curve.best is None
    assert curve.metrics() == {"curve_true_pairs": 3.0, "curve_true_pairs_not_scored": 3.0}


@pytest.mark.parametrize(
    ("probabilities", "matches", "true_pairs", "message"),
    [
        ([0.5], [True, False], 2, "one flag per pair"),
        ([0.5, 0.4], [True, True], 1, "must count every true pair"),
    ],
)
def test_threshold_curve_rejects_inconsistent_input(
    probabilities: list[float], matches: list[bool], true_pairs: int, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        threshold_curve(probabilities, matches, true_pairs=true_pairs, beta=1.0)


def test_precision_recall_png_renders_curves() -> None:
    curve = threshold_curve(CURVE_PROBABILITIES, CURVE_MATCHES, true_pairs=4, beta=1.0)
    png = precision_recall_png({"truth": curve}, current_threshold=0.95)
    assert png.startswith(b"\x89PNG")


# --------------------------------------------------------------------------- #
# Judged pairs in a warehouse: truth curve and worst pairs
# --------------------------------------------------------------------------- #


def _probability(weight: float) -> float:
    return 2**weight / (1 + 2**weight)


@pytest.fixture
def tiny_warehouse(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """The hand case above as tables: truth X={1,2,3}, Y={4,5}, Z={6};
    customers A={1,2}, B={3,4,5}, C={6}; six scored pairs (see the comments)."""
    con = duckdb.connect(str(tmp_path / "tiny.duckdb"))
    con.execute("CREATE TABLE ground_truth (unique_id VARCHAR, entity_id VARCHAR)")
    con.executemany(
        "INSERT INTO ground_truth VALUES (?, ?)",
        [[f"s:{i}", e] for i, e in enumerate("XXXYYZ", start=1)],
    )
    con.execute("CREATE TABLE customer_clusters (unique_id VARCHAR, customer_id VARCHAR)")
    con.executemany(
        "INSERT INTO customer_clusters VALUES (?, ?)",
        [[f"s:{i}", c] for i, c in enumerate("AABBBC", start=1)],
    )
    con.execute(
        "CREATE TABLE pairwise_matches (unique_id_l VARCHAR, unique_id_r VARCHAR, "
        "match_weight DOUBLE, match_probability DOUBLE, link_veto VARCHAR)"
    )
    pairs = [
        ("s:1", "s:2", 10.0, None),  # X-X, same customer A: a true link
        ("s:3", "s:4", 6.0, None),  # X-Y, both in B: a false merge
        ("s:3", "s:5", 2.0, None),  # X-Y, both in B: a false merge, weaker
        ("s:4", "s:5", 8.0, None),  # Y-Y, both in B: a true link
        ("s:2", "s:3", -1.0, None),  # X-X, customers A and B: a missed link
        ("s:5", "s:6", 3.0, "dob_differs"),  # Y-Z, vetoed: never a link
    ]  # (s:1, s:3), a true X-X pair, was never scored.
    con.executemany(
        "INSERT INTO pairwise_matches VALUES (?, ?, ?, ?, ?)",
        [[left, right, w, _probability(w), veto] for left, right, w, veto in pairs],
    )
    yield con
    con.close()


def test_truth_curve_counts_unscored_true_pairs(tiny_warehouse: duckdb.DuckDBPyConnection) -> None:
    con = tiny_warehouse
    # True pairs: X has C(3,2) = 3, Y has 1, Z none -> 4, one of them never scored.
    assert count_true_pairs(con, "customer_clusters") == 4
    judged = truth_judged_pairs_sql("pairwise_matches", "customer_clusters")
    curve = curve_from_judged_pairs(con, judged, true_pairs=4, beta=1.0)
    # Linkable pairs by weight: 10 T, 8 T, 6 F, 2 F, -1 T (the vetoed pair never links).
    # Cumulative (TP, FP): (1,0) (2,0) (2,1) (2,2) (3,2); recall over 4 true pairs:
    # F1 = 0.4, 2/3, 4/7, 1/2, 2 * 0.6 * 0.75 / 1.35 = 2/3 -> tie, the higher threshold wins.
    assert [(p.true_positives, p.false_positives) for p in curve.points] == [
        (1, 0),
        (2, 0),
        (2, 1),
        (2, 2),
        (3, 2),
    ]
    assert curve.best is not None
    assert curve.best.threshold == pytest.approx(_probability(8.0))
    assert curve.best.f_beta == pytest.approx(2 / 3)
    assert curve.true_pairs_scored == 3


def test_worst_pairs_are_the_most_confident_errors(
    tiny_warehouse: duckdb.DuckDBPyConnection,
) -> None:
    judged = truth_judged_pairs_sql("pairwise_matches", "customer_clusters")
    pairs = worst_pairs(tiny_warehouse, judged, limit=5)
    # False merges, highest weight first: (3,4) at 6, (3,5) at 2. Missed links, lowest
    # weight first: (2,3) at -1. The vetoed (5,6) is in different customers and differs.
    assert [(p.kind, p.rank, p.unique_id_l, p.unique_id_r, p.match_weight) for p in pairs] == [
        ("false_merge", 1, "s:3", "s:4", 6.0),
        ("false_merge", 2, "s:3", "s:5", 2.0),
        ("missed_link", 1, "s:2", "s:3", -1.0),
    ]
    assert [p.unique_id_r for p in worst_pairs(tiny_warehouse, judged, limit=1)] == ["s:4", "s:3"]


# --------------------------------------------------------------------------- #
# The evaluation asset, materialized over a real pipeline
# --------------------------------------------------------------------------- #


@pytest.mark.slow
def test_evaluation_asset_reports_new_metrics_and_worst_pairs(
    small_demo: Path, write_project: Callable[..., ProjectConfig]
) -> None:
    project = write_project(
        {**demo_sources(small_demo), "evaluation": {"beta": 2.0, "worst_examples": 3}}
    )
    result = dg.materialize(build_assets(project), resources=build_resources(project))
    assert result.success

    con = duckdb.connect(str(project.warehouse), read_only=True)
    try:
        metrics = dict(
            con.execute(
                "SELECT metric, value FROM linkage_evaluation WHERE dagster_run_id = ?",
                [result.run_id],
            ).fetchall()
        )
        worst = con.execute(
            "SELECT kind, rank, unique_id_l, unique_id_r, match_weight, chart_path, evidence "
            "FROM evaluation_worst_pairs ORDER BY kind, rank"
        ).fetchall()
        threshold = con.execute("SELECT match_threshold FROM linkage_model").fetchall()[0][0]
    finally:
        con.close()
    for name in ("bcubed_precision", "bcubed_recall", "bcubed_f1", "best_f_beta"):
        assert 0.0 < metrics[name] <= 1.0, name
    assert -0.5 <= metrics["adjusted_rand_index"] <= 1.0
    assert 0.0 < metrics["best_threshold"] <= 1.0
    assert metrics["best_threshold_recall"] <= 1.0
    assert metrics["pairwise_f1"] > 0.7  # the existing metrics are still there

    kinds = [row[0] for row in worst]
    assert kinds.count("false_merge") <= 3 and kinds.count("missed_link") <= 3
    for kind, _rank, left, right, _weight, chart, evidence in worst:
        assert evidence == "truth" and kind in {"false_merge", "missed_link"} and left < right
        text = Path(chart).read_text(encoding="utf-8")
        assert "vega" in text.lower()
    false_merge_weights = [row[4] for row in worst if row[0] == "false_merge"]
    assert false_merge_weights == sorted(false_merge_weights, reverse=True)

    evaluation = result.asset_materializations_for_node("linkage_evaluation")
    by_key = {m.asset_key.to_user_string(): m.metadata for m in evaluation}
    metadata = by_key["linkage_evaluation"]
    assert "data:image/png;base64," in metadata["precision_recall"].value
    assert metadata["f_beta"].value == 2.0 and metadata["match_threshold"].value == threshold
    assert isinstance(metadata["bcubed_f1"].value, float)
    worst_metadata = by_key["evaluation_worst_pairs"]
    assert len(worst_metadata["worst_pairs"].value.records) == len(worst)

    client = MlflowClient(project.mlflow.tracking_uri)
    run_id = metadata["mlflow_run_id"].value
    logged = client.get_run(run_id).data.metrics
    assert logged["bcubed_f1"] == pytest.approx(metrics["bcubed_f1"])
    assert logged["best_threshold"] == pytest.approx(metrics["best_threshold"])
    artifacts = {a.path for a in client.list_artifacts(run_id, "evaluation")}
    assert {"evaluation/precision_recall.png", "evaluation/threshold_curve_truth.csv"} <= artifacts
    charts = client.list_artifacts(run_id, "evaluation/waterfalls")
    assert len(charts) == len(worst)
