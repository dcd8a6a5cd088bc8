"""Charts that explain an evaluation: the precision-recall curve and the worst errors.

The precision-recall curve is a static PNG (it renders in Dagster's metadata and in
MLflow). The worst false merges and missed links each get Splink's waterfall chart, an
offline HTML page showing how every comparison added to the pair's match weight. A
waterfall chart shows the two records' compared values, so it holds personal data: it
is written beside the warehouse and never leaves it. With ``masked_dir``, a copy drawn
from the same pair with every value masked (:mod:`training.chart_masking`) is written
too; that copy is what MLflow may get (``mlflow.record_level_artifacts``).

Examples:
    ```py
    png = precision_recall_png({"truth": curve}, current_threshold=0.95)
    worst = worst_pairs(con, truth_judged_pairs_sql("pairwise_matches", "customer_clusters"),
                        limit=10)
    paths = write_waterfall_charts(con, records_table="customer_records",
                                   pairs_table="pairwise_matches", model=model,
                                   pairs=worst, out_dir=Path("artifacts/evaluation/waterfalls"))
    ```
"""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import duckdb
import matplotlib
from splink import DuckDBAPI, Linker

from linkage.warehouse import drop_splink_tables, quote
from training.chart_masking import masked_pair
from training.threshold_curve import ThresholdCurve

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)

MAX_PLOTTED_POINTS = 2000
"""A curve with more points is thinned (evenly, keeping both ends) before plotting."""

PairKind = Literal["false_merge", "missed_link"]


@dataclass(frozen=True)
class WorstPair:
    """A scored pair the model got most confidently wrong, and its chart once written.

    Attributes:
        kind: ``false_merge`` (in one customer, truly different) or ``missed_link``
            (truly the same, in different customers).
        rank: 1 for the worst of its kind.
        chart_path: The waterfall chart's HTML file, or None before it is written.
        masked_chart_path: Its copy with every record value masked, when written.
    """

    kind: PairKind
    rank: int
    unique_id_l: str
    unique_id_r: str
    match_weight: float
    match_probability: float
    chart_path: Path | None = None
    masked_chart_path: Path | None = None


def worst_pairs(con: duckdb.DuckDBPyConnection, judged_sql: str, *, limit: int) -> list[WorstPair]:
    """The worst false merges and missed links among the scored judged pairs.

    False merges are pairs placed in one customer that are truly different people,
    highest match weight first. Missed links are true pairs left in different customers,
    lowest match weight first. Only scored pairs are candidates, since only they have a
    match weight to explain; true pairs never scored count in recall but are not listed.

    Args:
        con: Warehouse connection.
        judged_sql: A judged-pairs SELECT (:data:`training.threshold_curve.JUDGED_PAIR_COLUMNS`).
        limit: Most pairs of each kind.

    Returns:
        False merges then missed links, each ranked from 1.
    """
    pairs: list[WorstPair] = []
    for kind, condition, order in (
        ("false_merge", "same_customer AND NOT is_match", "DESC"),
        ("missed_link", "is_match AND NOT same_customer", "ASC"),
    ):
        rows = con.execute(
            "SELECT unique_id_l, unique_id_r, match_weight, match_probability "
            f"FROM ({judged_sql}) WHERE match_weight IS NOT NULL AND {condition} "
            f"ORDER BY match_weight {order}, unique_id_l, unique_id_r LIMIT ?",
            [limit],
        ).fetchall()
        pairs.extend(
            WorstPair(kind, rank, row[0], row[1], float(row[2]), float(row[3]))
            for rank, row in enumerate(rows, start=1)
        )
    return pairs


def write_waterfall_charts(
    con: duckdb.DuckDBPyConnection,
    *,
    records_table: str,
    pairs_table: str,
    model: dict[str, Any],
    pairs: Sequence[WorstPair],
    out_dir: Path,
    masked_dir: Path | None = None,
) -> list[WorstPair]:
    """Write Splink's waterfall chart of each pair as ``<kind>_<rank>.html``.

    The charts are drawn from the pairs' rows in ``pairs_table``, which keep every
    comparison level, partial match weight and term-frequency adjustment the model
    computed when it scored them.

    Args:
        con: Warehouse connection.
        records_table: The records the model scored (needed to build a Splink linker).
        pairs_table: The scored pairs (``pairwise_matches``).
        model: The Splink model that scored them.
        pairs: The pairs to chart.
        out_dir: Folder for the HTML files (created if missing).
        masked_dir: Folder for masked copies of the charts, the ones that may leave the
            warehouse; None writes none.

    Returns:
        The pairs with ``chart_path`` (and ``masked_chart_path``) filled in, unchanged
        for a pair not in the table.
    """
    if not pairs:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    db_api = DuckDBAPI(connection=con)
    linker = Linker(db_api.register(records_table), model, log_level=logging.WARNING)
    charted = []
    try:
        for pair in pairs:
            cursor = con.execute(
                f"SELECT * FROM {quote(pairs_table)} WHERE unique_id_l = ? AND unique_id_r = ?",
                [pair.unique_id_l, pair.unique_id_r],
            )
            columns = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
            if not rows:
                logger.warning("waterfall chart: %s %d is not a scored pair", pair.kind, pair.rank)
                charted.append(pair)
                continue
            record = dict(zip(columns, rows[0], strict=True))
            name = f"{pair.kind}_{pair.rank:03d}.html"
            chart = linker.visualisations.waterfall_chart([record], filter_nulls=True)
            chart.save_offline_chart(str(out_dir / name), overwrite=True, print_msg=False)
            pair = replace(pair, chart_path=out_dir / name)
            if masked_dir is not None:
                masked_dir.mkdir(parents=True, exist_ok=True)
                masked = linker.visualisations.waterfall_chart(
                    [masked_pair(record)], filter_nulls=True
                )
                masked.save_offline_chart(str(masked_dir / name), overwrite=True, print_msg=False)
                pair = replace(pair, masked_chart_path=masked_dir / name)
            charted.append(pair)
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)
    logger.info("wrote %d waterfall charts in %s", len(charted), out_dir)
    return charted


def _thinned(values: Sequence[float]) -> list[float]:
    if len(values) <= MAX_PLOTTED_POINTS:
        return list(values)
    step = (len(values) - 1) / (MAX_PLOTTED_POINTS - 1)
    return [values[round(i * step)] for i in range(MAX_PLOTTED_POINTS)]


def precision_recall_png(
    curves: Mapping[str, ThresholdCurve], *, current_threshold: float | None = None
) -> bytes:
    """Two panels: precision against recall, and precision, recall and F-beta against
    the threshold, with the F-beta-best threshold (dashed) and the current one (dotted).

    Args:
        curves: Curve per evidence name (``truth``, ``labels``).
        current_threshold: The model's match threshold, if it should be marked.

    Returns:
        The PNG bytes.
    """
    figure, (pr_axis, threshold_axis) = plt.subplots(1, 2, figsize=(11, 4))
    colours = ["#264653", "#e76f51", "#2a9d8f"]
    for (name, curve), colour in zip(curves.items(), colours, strict=False):
        if not curve.points:
            continue
        thresholds = _thinned([p.threshold for p in curve.points])
        precision = _thinned([p.precision for p in curve.points])
        recall = _thinned([p.recall for p in curve.points])
        scores = _thinned([p.f_beta for p in curve.points])
        pr_axis.plot(recall, precision, color=colour, label=name)
        threshold_axis.plot(thresholds, precision, color=colour, label=f"{name} precision")
        threshold_axis.plot(
            thresholds, recall, color=colour, linestyle="--", label=f"{name} recall"
        )
        threshold_axis.plot(
            thresholds,
            scores,
            color=colour,
            linewidth=2.2,
            alpha=0.5,
            label=f"{name} F{curve.beta:g}",
        )
        if curve.best is not None:
            pr_axis.scatter([curve.best.recall], [curve.best.precision], color=colour, zorder=3)
            pr_axis.annotate(
                f"best F{curve.beta:g} at {curve.best.threshold:.3f}",
                (curve.best.recall, curve.best.precision),
                textcoords="offset points",
                xytext=(-10, -14),
                fontsize=8,
                ha="right",
            )
            threshold_axis.axvline(
                curve.best.threshold, color=colour, linestyle="-.", linewidth=0.8
            )
    if current_threshold is not None:
        threshold_axis.axvline(
            current_threshold, color="black", linestyle=":", linewidth=1, label="match threshold"
        )
    pr_axis.set_xlabel("recall (of all true pairs known)")
    pr_axis.set_ylabel("precision")
    pr_axis.set_xlim(0, 1.02)
    pr_axis.set_ylim(0, 1.02)
    pr_axis.set_title("Precision-recall of scored pairs")
    pr_axis.legend(fontsize=8, loc="lower left")
    threshold_axis.set_xlabel("match probability threshold")
    threshold_axis.set_ylim(0, 1.02)
    threshold_axis.set_title("By threshold")
    threshold_axis.legend(fontsize=7, loc="lower left")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()
