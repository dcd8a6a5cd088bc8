"""Evaluation metrics on hand-made cases, computed by hand in the comments."""

from __future__ import annotations

import pytest

from training.evaluate import evaluate_clusters


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


def test_perfect_clustering() -> None:
    scores = evaluate_clusters(["a", "a", "b"], ["x", "x", "y"])
    assert scores.pairwise_f1 == 1.0 and scores.cluster_f1 == 1.0


def test_everything_merged() -> None:
    # One predicted cluster of 4 records from 2 people of 2: 6 predicted pairs, 2 true.
    scores = evaluate_clusters(["a"] * 4, ["x", "x", "y", "y"])
    assert scores.pairwise_precision == pytest.approx(2 / 6)
    assert scores.pairwise_recall == 1.0
    assert scores.cluster_precision == 0.0


def test_all_singletons_have_no_pairs() -> None:
    scores = evaluate_clusters(["a", "b", "c"], ["x", "y", "z"])
    assert scores.pairwise_precision == 0.0 and scores.pairwise_recall == 0.0
    assert scores.cluster_f1 == 1.0


@pytest.mark.parametrize(("predicted", "truth"), [([], []), (["a"], ["x", "y"])])
def test_bad_input(predicted: list[str], truth: list[str]) -> None:
    with pytest.raises(ValueError):
        evaluate_clusters(predicted, truth)
