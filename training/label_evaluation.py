"""The model's links judged against clerical labels: precision, recall and F1.

Two readings of "the model links the pair": both records ended in one customer, or the
pair itself scored at or above the threshold with no veto. The labels are those
:func:`training.labels.load_labels` loaded into ``clerical_labels``.

Examples:
    ```py
    scores = evaluate_against_labels(
        con, clusters_table="customer_clusters", pairs_table="pairwise_matches", threshold=0.95
    )
    scores.as_metrics()["label_cluster_f1"]
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import duckdb

from linkage.tables import CLERICAL_LABELS
from linkage.warehouse import quote
from training.evaluate import PairScores, score_pairs

logger = logging.getLogger(__name__)


def labels_judged_pairs_sql(pairs_table: str, clusters_table: str) -> str:
    """SELECT of the labelled pairs whose two records are clustered, judged by the labels.

    Columns are :data:`training.threshold_curve.JUDGED_PAIR_COLUMNS`; a scored pair keeps
    the pairs table's left and right. A labelled pair the model did not score has NULL
    ``match_weight`` and ``match_probability`` and is not ``linkable``.
    """
    pairs, clusters = quote(pairs_table), quote(clusters_table)
    return (
        "SELECT coalesce(p.unique_id_l, l.unique_id_l) AS unique_id_l, "
        "coalesce(p.unique_id_r, l.unique_id_r) AS unique_id_r, "
        "p.match_weight, p.match_probability, "
        "(p.unique_id_l IS NOT NULL AND p.link_veto IS NULL) AS linkable, "
        "cl.customer_id = cr.customer_id AS same_customer, l.is_match "
        f"FROM {CLERICAL_LABELS} AS l "
        f"JOIN {clusters} AS cl ON cl.unique_id = l.unique_id_l "
        f"JOIN {clusters} AS cr ON cr.unique_id = l.unique_id_r "
        f"LEFT JOIN {pairs} AS p ON least(p.unique_id_l, p.unique_id_r) = l.unique_id_l "
        "AND greatest(p.unique_id_l, p.unique_id_r) = l.unique_id_r"
    )


@dataclass(frozen=True)
class LabelScores:
    """The model's links judged against clerical labels.

    Attributes:
        pairs: Labelled pairs whose two records are both clustered.
        skipped_pairs: Labelled pairs with a record that is not clustered (quarantined).
        matches: Labelled pairs that are a match.
        scored_pairs: Labelled pairs the model scored (in the pairs table).
        cluster: Links = both records in the same customer.
        pairwise: Links = the pair scored at or above the threshold, with no veto.
    """

    pairs: int
    skipped_pairs: int
    matches: int
    scored_pairs: int
    cluster: PairScores
    pairwise: PairScores

    def as_metrics(self) -> dict[str, float]:
        """Flat ``label_*`` name -> number, for MLflow and Dagster metadata."""
        metrics = {
            "label_pairs": float(self.pairs),
            "label_pairs_skipped": float(self.skipped_pairs),
            "label_matches": float(self.matches),
            "label_pairs_scored": float(self.scored_pairs),
        }
        for name, scores in (("cluster", self.cluster), ("pairwise", self.pairwise)):
            metrics[f"label_{name}_precision"] = scores.precision
            metrics[f"label_{name}_recall"] = scores.recall
            metrics[f"label_{name}_f1"] = scores.f1
        return metrics


def evaluate_against_labels(
    con: duckdb.DuckDBPyConnection, *, clusters_table: str, pairs_table: str, threshold: float
) -> LabelScores:
    """Precision, recall and F1 of the model's links over the labelled pairs.

    Two readings of "the model links the pair": the records ended in the same customer
    (clustering, including links through other records), or the pair itself scored at
    or above ``threshold`` with no veto. Pairs the model never scored are not links.

    Raises:
        ValueError: No labelled pair has both records clustered.
    """
    judged = labels_judged_pairs_sql(pairs_table, clusters_table)
    rows = con.execute(
        "SELECT same_customer, linkable AND match_probability >= ?, is_match, "
        f"match_probability IS NOT NULL FROM ({judged})",
        [threshold],
    ).fetchall()
    total = con.execute(f"SELECT count(*) FROM {CLERICAL_LABELS}").fetchall()[0][0]
    if not rows:
        raise ValueError(f"none of the {total} labelled pairs has both records in {clusters_table}")
    actual = [bool(row[2]) for row in rows]
    return LabelScores(
        pairs=len(rows),
        skipped_pairs=int(total) - len(rows),
        matches=sum(actual),
        scored_pairs=sum(1 for row in rows if row[3]),
        cluster=score_pairs([bool(row[0]) for row in rows], actual),
        pairwise=score_pairs([bool(row[1]) for row in rows], actual),
    )
