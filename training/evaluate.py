"""Evaluate a clustering against known entities (ground truth).

Pairwise scores count record pairs placed in the same customer (scikit-learn's
pair confusion matrix); cluster scores count predicted customers that are exactly a
true entity; B-cubed scores average, record by record, how much of the record's
customer is its entity (precision) and how much of its entity is in its customer
(recall); the adjusted Rand index (scikit-learn) is the pairwise agreement corrected
for chance: 1 for identical partitions, about 0 for a random one.

Examples:
    >>> scores = evaluate_clusters(["a", "a", "b"], ["x", "x", "x"])
    >>> round(scores.pairwise_precision, 3), round(scores.pairwise_recall, 3)
    (1.0, 0.333)
    >>> round(scores.bcubed_precision, 3), round(scores.bcubed_recall, 3)
    (1.0, 0.556)
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd
from sklearn.metrics import adjusted_rand_score
from sklearn.metrics.cluster import pair_confusion_matrix

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClusterScores:
    """Pairwise, cluster and B-cubed precision, recall and F1, the adjusted Rand index,
    and the counts behind them. Field names are the metric names in MLflow and the
    ``linkage_evaluation`` table: never rename one."""

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
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    adjusted_rand_index: float

    def as_metrics(self) -> dict[str, float]:
        """Flat name -> number, for MLflow and Dagster metadata."""
        return {key: float(value) for key, value in asdict(self).items()}


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def f_beta(precision: float, recall: float, beta: float) -> float:
    """The F-beta score: recall counts ``beta`` times as much as precision.

    Examples:
        >>> f_beta(0.5, 1.0, 1.0)  # F1, the harmonic mean
        0.6666666666666666
        >>> round(f_beta(0.5, 1.0, 2.0), 4)  # recall weighs more
        0.8333
        >>> f_beta(0.0, 0.0, 1.0)
        0.0
    """
    weight = beta * beta
    return _ratio((1 + weight) * precision * recall, weight * precision + recall)


@dataclass(frozen=True)
class PairScores:
    """Precision, recall and F1 of predicted links over judged record pairs."""

    true_positives: int
    false_positives: int
    false_negatives: int

    @property
    def precision(self) -> float:
        """Share of predicted links that are true matches (0 without predicted links)."""
        return _ratio(self.true_positives, self.true_positives + self.false_positives)

    @property
    def recall(self) -> float:
        """Share of true matches that are predicted links (0 without true matches)."""
        return _ratio(self.true_positives, self.true_positives + self.false_negatives)

    @property
    def f1(self) -> float:
        """Harmonic mean of precision and recall."""
        return _f1(self.precision, self.recall)


def score_pairs(predicted: Sequence[bool], actual: Sequence[bool]) -> PairScores:
    """Count predicted links against true matches, pair by pair.

    Args:
        predicted: Whether the model links each pair.
        actual: Whether each pair is a true match, in the same order.

    Returns:
        True positives, false positives and false negatives, with the ratios.

    Raises:
        ValueError: The sequences differ in length.

    Examples:
        >>> scores = score_pairs([True, True, False], [True, False, True])
        >>> scores.precision, scores.recall
        (0.5, 0.5)
    """
    if len(predicted) != len(actual):
        raise ValueError(f"predicted has {len(predicted)} pairs but actual has {len(actual)}")
    pairs = list(zip(predicted, actual, strict=True))
    return PairScores(
        true_positives=sum(1 for p, a in pairs if p and a),
        false_positives=sum(1 for p, a in pairs if p and not a),
        false_negatives=sum(1 for p, a in pairs if a and not p),
    )


def _bcubed(frame: pd.DataFrame) -> tuple[float, float]:
    """B-cubed precision and recall of ``frame`` (columns predicted, truth).

    A record's precision is the share of its predicted cluster that shares its entity,
    its recall the share of its entity that shares its predicted cluster; both are
    averaged over records (Bagga and Baldwin 1998; Amigo et al. 2009).
    """
    overlap = frame.groupby(["predicted", "truth"]).size().rename("overlap").reset_index()
    overlap["predicted_size"] = overlap["predicted"].map(frame["predicted"].value_counts())
    overlap["truth_size"] = overlap["truth"].map(frame["truth"].value_counts())
    # Each of the `overlap` records in a (cluster, entity) cell has the same precision
    # overlap / predicted_size, so the cell contributes overlap**2 / predicted_size.
    squared = overlap["overlap"] ** 2
    records = len(frame)
    precision = float((squared / overlap["predicted_size"]).sum()) / records
    recall = float((squared / overlap["truth_size"]).sum()) / records
    return precision, recall


def evaluate_clusters(predicted: Sequence[object], truth: Sequence[object]) -> ClusterScores:
    """Score predicted cluster labels against true entity labels, record by record.

    Args:
        predicted: Predicted customer id of each record.
        truth: True entity id of each record, in the same order.

    Returns:
        Pairwise, exact-cluster and B-cubed precision, recall and F1, and the
        adjusted Rand index.

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
    bcubed_precision, bcubed_recall = _bcubed(frame)
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
        bcubed_precision=bcubed_precision,
        bcubed_recall=bcubed_recall,
        bcubed_f1=_f1(bcubed_precision, bcubed_recall),
        adjusted_rand_index=float(adjusted_rand_score(truth_codes, predicted_codes)),
    )
