"""Precision and recall of scored pairs over match-probability thresholds.

A pair is a predicted link at threshold ``t`` when its match probability is at least
``t`` (as in clustering) and no veto forbids it. Precision at ``t`` counts the judged
pairs (pairs whose truth is known) predicted at ``t``. Recall at ``t`` is relative to
*all* true pairs known, not only the scored ones: a true pair that was never scored
(the blocking rules did not generate it, or it scored below the prediction floor) or
that a veto forbids is a missed link at every threshold. So the curve's recall never
reaches 1 when blocking misses true pairs, and that gap is the blocking's recall loss.

The threshold that maximises F-beta is the one to suggest for ``model.match_threshold``;
note that clustering can merge records linked only through other records, so the
cluster metrics at that threshold can differ from the pair metrics shown here.

Examples:
    >>> curve = threshold_curve([0.9, 0.6, 0.3], [True, False, True], true_pairs=3, beta=1.0)
    >>> [(p.threshold, p.true_positives, p.false_positives) for p in curve.points]
    [(0.9, 1, 0), (0.6, 1, 1), (0.3, 2, 1)]
    >>> curve.best.threshold, round(curve.best.f_beta, 3)
    (0.3, 0.667)
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import numpy as np

from training.evaluate import f_beta

logger = logging.getLogger(__name__)

JUDGED_PAIR_COLUMNS = (
    "unique_id_l",
    "unique_id_r",
    "match_weight",
    "match_probability",
    "linkable",
    "same_customer",
    "is_match",
)
"""Columns of a *judged pairs* SELECT: record pairs whose truth is known, with their
score (NULL when the pair was not scored), whether a link is allowed (no veto), whether
both records are in the same customer, and whether they truly match. Built by
:func:`training.ground_truth.truth_judged_pairs_sql` and
:func:`training.label_evaluation.labels_judged_pairs_sql`."""

TIE_TOLERANCE = 1e-12
"""F-beta values this close count as equal; the highest threshold among them wins."""


@dataclass(frozen=True)
class CurvePoint:
    """Pairwise precision, recall and F-beta when linking at ``threshold`` or above."""

    threshold: float
    true_positives: int
    false_positives: int
    precision: float
    recall: float
    f_beta: float


@dataclass(frozen=True)
class ThresholdCurve:
    """Points from the highest threshold to the lowest, and the F-beta-best one.

    Attributes:
        points: One point per distinct match probability among judged, linkable pairs.
        beta: The F-beta weight of recall used for ``f_beta`` and ``best``.
        true_pairs: Every true pair known, scored or not: the recall denominator.
        true_pairs_scored: True pairs among the judged, linkable scored pairs.
        best: The point with the highest F-beta (ties: the highest threshold); None
            when no judged pair was scored.
    """

    points: list[CurvePoint]
    beta: float
    true_pairs: int
    true_pairs_scored: int
    best: CurvePoint | None

    def metrics(self, prefix: str = "") -> dict[str, float]:
        """The best point as flat metrics (``<prefix>best_threshold`` ...); the counts too.

        Examples:
            >>> curve = threshold_curve([0.9], [True], true_pairs=2, beta=1.0)
            >>> sorted(curve.metrics("label_"))[:2]
            ['label_best_f_beta', 'label_best_threshold']
        """
        metrics = {
            f"{prefix}curve_true_pairs": float(self.true_pairs),
            f"{prefix}curve_true_pairs_not_scored": float(self.true_pairs - self.true_pairs_scored),
        }
        if self.best is not None:
            metrics.update(
                {
                    f"{prefix}best_threshold": self.best.threshold,
                    f"{prefix}best_f_beta": self.best.f_beta,
                    f"{prefix}best_threshold_precision": self.best.precision,
                    f"{prefix}best_threshold_recall": self.best.recall,
                }
            )
        return metrics

    def write_csv(self, path: Path) -> Path:
        """Write the points as CSV (no record values: thresholds and counts only)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="", encoding="utf-8") as stream:
            writer = csv.writer(stream)
            writer.writerow(
                ["threshold", "true_positives", "false_positives", "precision", "recall", "f_beta"]
            )
            for point in self.points:
                writer.writerow(
                    [
                        point.threshold,
                        point.true_positives,
                        point.false_positives,
                        point.precision,
                        point.recall,
                        point.f_beta,
                    ]
                )
        return path


def threshold_curve(
    probabilities: Sequence[float | None],
    is_match: Sequence[bool],
    *,
    true_pairs: int,
    beta: float,
) -> ThresholdCurve:
    """Precision, recall and F-beta at every distinct match probability.

    Args:
        probabilities: Match probability of each judged pair; None for a pair that was
            not scored or that a veto forbids (never a predicted link).
        is_match: Whether each pair is a true match, in the same order.
        true_pairs: All true pairs known, including true pairs not in ``probabilities``
            (never scored): the denominator of recall.
        beta: Weight of recall in F-beta (1 = F1, 2 = recall twice as important).

    Returns:
        The curve from the highest threshold down, with its F-beta-best point.

    Raises:
        ValueError: The sequences differ in length, or ``true_pairs`` is smaller than
            the true matches among them.

    Examples:
        >>> curve = threshold_curve([None, 0.8], [True, False], true_pairs=1, beta=1.0)
        >>> curve.points[0].precision, curve.points[0].recall, curve.true_pairs_scored
        (0.0, 0.0, 0)
    """
    if len(probabilities) != len(is_match):
        raise ValueError(
            f"{len(probabilities)} probabilities but {len(is_match)} match flags: "
            "expected one flag per pair"
        )
    matches_given = sum(1 for match in is_match if match)
    if true_pairs < matches_given:
        raise ValueError(
            f"true_pairs is {true_pairs} but {matches_given} of the given pairs are true "
            "matches: true_pairs must count every true pair"
        )
    scored = [(p, bool(m)) for p, m in zip(probabilities, is_match, strict=True) if p is not None]
    if not scored:
        return ThresholdCurve([], beta, true_pairs, 0, None)
    scores = np.array([p for p, _ in scored], dtype=float)
    matches = np.array([m for _, m in scored], dtype=bool)
    order = np.argsort(-scores, kind="stable")
    scores, matches = scores[order], matches[order]
    true_positives = np.cumsum(matches)
    false_positives = np.cumsum(~matches)
    # The last pair of each run of equal scores closes that threshold's point.
    last_of_run = np.append(scores[1:] != scores[:-1], True)
    points = []
    for index in np.flatnonzero(last_of_run):
        tp, fp = int(true_positives[index]), int(false_positives[index])
        precision = tp / (tp + fp)
        recall = tp / true_pairs if true_pairs else 0.0
        points.append(
            CurvePoint(
                threshold=float(scores[index]),
                true_positives=tp,
                false_positives=fp,
                precision=precision,
                recall=recall,
                f_beta=f_beta(precision, recall, beta),
            )
        )
    top = max(point.f_beta for point in points)
    # Points run from the highest threshold down: the first near-top one is the highest.
    best = next(point for point in points if point.f_beta >= top - TIE_TOLERANCE)
    return ThresholdCurve(points, beta, true_pairs, int(matches.sum()), best)


def curve_from_judged_pairs(
    con: duckdb.DuckDBPyConnection, judged_sql: str, *, true_pairs: int, beta: float
) -> ThresholdCurve:
    """The threshold curve of a judged-pairs SELECT (see :data:`JUDGED_PAIR_COLUMNS`).

    Args:
        con: Warehouse connection.
        judged_sql: SELECT with the judged-pair columns; names only, no values.
        true_pairs: All true pairs known, scored or not.
        beta: Weight of recall in F-beta.

    Returns:
        The curve; vetoed and unscored pairs are never predicted links.
    """
    rows = con.execute(
        f"SELECT CASE WHEN linkable THEN match_probability END, is_match FROM ({judged_sql})"
    ).fetchall()
    return threshold_curve(
        [row[0] for row in rows],
        [bool(row[1]) for row in rows],
        true_pairs=true_pairs,
        beta=beta,
    )
