"""Evaluate a clustering against known entities (ground truth).

Pairwise scores count record pairs placed in the same customer (scikit-learn's
pair confusion matrix); cluster scores count predicted customers that are exactly a
true entity.

Examples:
    >>> scores = evaluate_clusters(["a", "a", "b"], ["x", "x", "x"])
    >>> round(scores.pairwise_precision, 3), round(scores.pairwise_recall, 3)
    (1.0, 0.333)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd
from sklearn.metrics.cluster import pair_confusion_matrix


@dataclass(frozen=True)
class ClusterScores:
    """Pairwise and cluster precision, recall and F1, with the counts behind them."""

    records: int
    predicted_clusters: int
    true_clusters: int
    pairwise_true_positives: int
    pairwise_false_positives: int
    pairwise_false_negatives: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    exact_clusters: int
    cluster_precision: float
    cluster_recall: float
    cluster_f1: float

    def as_metrics(self) -> dict[str, float]:
        """Flat name -> number, for MLflow and Dagster metadata."""
        return {key: float(value) for key, value in asdict(self).items()}


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def evaluate_clusters(predicted: Sequence[object], truth: Sequence[object]) -> ClusterScores:
    """Score predicted cluster labels against true entity labels, record by record.

    Args:
        predicted: Predicted customer id of each record.
        truth: True entity id of each record, in the same order.

    Returns:
        Pairwise and exact-cluster precision, recall and F1.

    Raises:
        ValueError: The sequences differ in length or are empty.
    """
    if len(predicted) != len(truth):
        raise ValueError(f"predicted has {len(predicted)} labels but truth has {len(truth)}")
    if not predicted:
        raise ValueError("no records to evaluate")
    frame = pd.DataFrame({"predicted": list(predicted), "truth": list(truth)})
    predicted_codes = pd.factorize(frame["predicted"])[0]
    truth_codes = pd.factorize(frame["truth"])[0]
    matrix = pair_confusion_matrix(truth_codes, predicted_codes)
    # The matrix counts ordered pairs; halve for unordered pairs.
    true_positives = int(matrix[1, 1]) // 2
    false_negatives = int(matrix[1, 0]) // 2
    false_positives = int(matrix[0, 1]) // 2
    precision = _ratio(true_positives, true_positives + false_positives)
    recall = _ratio(true_positives, true_positives + false_negatives)

    predicted_sets = frame.groupby("predicted")["truth"].agg(lambda s: frozenset(s.index))
    truth_sets = frame.groupby("truth")["predicted"].agg(lambda s: frozenset(s.index))
    exact = len(set(predicted_sets) & set(truth_sets))
    cluster_precision = _ratio(exact, len(predicted_sets))
    cluster_recall = _ratio(exact, len(truth_sets))
    return ClusterScores(
        records=len(frame),
        predicted_clusters=len(predicted_sets),
        true_clusters=len(truth_sets),
        pairwise_true_positives=true_positives,
        pairwise_false_positives=false_positives,
        pairwise_false_negatives=false_negatives,
        pairwise_precision=precision,
        pairwise_recall=recall,
        pairwise_f1=_f1(precision, recall),
        exact_clusters=exact,
        cluster_precision=cluster_precision,
        cluster_recall=cluster_recall,
        cluster_f1=_f1(cluster_precision, cluster_recall),
    )
