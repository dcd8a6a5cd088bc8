"""Charts of a model's first scored pairs, attached to its MLflow training run.

The match-weight histogram (counts only) goes to ``charts/match_weight_histogram.png``;
the metrics ``scored_pairs_kept`` and ``scored_pairs_above_threshold`` go with it. The
term-frequency charts of names and places (``tf_<comparison>.html``) and Splink's
comparison viewer over a sample of scored pairs (``comparison_viewer.html``) show
record values: they are written beside the warehouse, and MLflow gets, as
``charts/tf_<comparison>.html`` and ``dashboards/comparison_viewer.html``, a copy with
every value masked (``mlflow.record_level_artifacts: masked``, the default) or nothing
(``none``); see :mod:`training.chart_masking`. Never a parameter, tag or metric. Every
MLflow name is listed in :mod:`training.tracking`.

Examples:
    ```py
    if not scoring_artifacts_logged(target, stored.mlflow_run_id):
        log_scoring_artifacts(target, stored.mlflow_run_id, con, ...)
    ```
"""

from __future__ import annotations

import copy
import io
import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import matplotlib
import pyarrow as pa

from linkage.warehouse import drop_splink_tables, quote
from training.chart_masking import (
    RecordLevelPolicy,
    masked_pair,
    masked_pair_column,
    masked_tf_chart_data,
)
from training.mlflow_store import MlflowTarget, tracking_client
from training.train import PRIVATE_TF_COLUMNS

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

logger = logging.getLogger(__name__)


HISTOGRAM_ARTIFACT = "charts/match_weight_histogram.png"
"""Present once a version's first scoring has been logged (:func:`scoring_artifacts_logged`)."""

DASHBOARD_SAMPLE = 300
"""Scored pairs sampled for the comparison viewer: it shows their record values."""

MAX_DASHBOARD_SAMPLE = 1000

MASKED_FOLDER = "masked"
"""Subfolder of the charts' folder for the masked copies that go to MLflow."""


@dataclass(frozen=True)
class ScoringArtifacts:
    """Files written from a model's scored pairs, and how many pairs the dashboard shows."""

    histogram: Path
    term_frequency_charts: dict[str, Path]
    comparison_viewer: Path | None
    sampled_pairs: int
    masked_term_frequency_charts: dict[str, Path] = field(default_factory=dict)
    masked_comparison_viewer: Path | None = None

    def mlflow_files(self) -> dict[str, list[Path]]:
        """What goes to MLflow, by artifact folder: the histogram and the masked copies
        (none under ``mlflow.record_level_artifacts: none``), never a clear chart."""
        files = {"charts": [self.histogram, *self.masked_term_frequency_charts.values()]}
        if self.masked_comparison_viewer is not None:
            files["dashboards"] = [self.masked_comparison_viewer]
        return files


def scoring_artifacts_logged(target: MlflowTarget, run_id: str) -> bool:
    """Whether the run already has the artifacts of :func:`log_scoring_artifacts`.

    Examples:
        ```py
        if not scoring_artifacts_logged(target, stored.mlflow_run_id):
            log_scoring_artifacts(target, stored.mlflow_run_id, con, ...)
        ```
    """
    client = tracking_client(target)
    folder = HISTOGRAM_ARTIFACT.rsplit("/", 1)[0]
    return any(item.path == HISTOGRAM_ARTIFACT for item in client.list_artifacts(run_id, folder))


def match_weight_histogram_png(
    con: duckdb.DuckDBPyConnection, pairs_table: str, *, threshold: float
) -> bytes:
    """Bars: scored pairs (log scale) per unit of match weight, with the match threshold.

    Counted in SQL, so any number of pairs makes a small chart.

    Examples:
        ```py
        png = match_weight_histogram_png(con, "pairwise_matches", threshold=0.95)
        ```
    """
    bins = con.execute(
        f"SELECT floor(match_weight) AS bin, count(*) FROM {quote(pairs_table)} "
        "WHERE match_weight IS NOT NULL GROUP BY 1 ORDER BY 1"
    ).fetchall()
    figure, axis = plt.subplots(figsize=(7, 3))
    axis.bar([float(b) + 0.5 for b, _ in bins], [n for _, n in bins], width=1.0, color="#264653")
    if bins:
        axis.set_yscale("log")
    threshold_weight = math.log2(threshold / (1 - threshold))
    axis.axvline(threshold_weight, color="#e76f51", linewidth=1.2, label="match threshold")
    axis.legend(loc="upper left", fontsize=8)
    axis.set_xlabel("match weight (log2 Bayes factor)")
    axis.set_ylabel("scored pairs")
    axis.set_title("Match weights of scored pairs")
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def log_scoring_artifacts(
    target: MlflowTarget,
    run_id: str,
    con: duckdb.DuckDBPyConnection,
    *,
    pairs_table: str,
    records_table: str,
    model: dict[str, Any],
    threshold: float,
    out_dir: Path,
    sample: int = DASHBOARD_SAMPLE,
    seed: int = 42,
    record_level: RecordLevelPolicy = "masked",
) -> ScoringArtifacts:
    """Chart a model's scored pairs and attach the charts to its training run.

    Writes into ``out_dir``: the match-weight histogram (PNG, counts only), one
    term-frequency adjustment chart per comparison adjusted on names or places (the ten
    most frequent values; e-mail, phone and identifiers are never charted), and Splink's
    comparison viewer dashboard over a seeded sample of at most ``sample`` scored pairs.
    The term-frequency charts and the dashboard show record values: MLflow gets masked
    copies of them (written to ``out_dir/masked``) or, with ``record_level="none"``,
    nothing; never a parameter, tag or metric. Also logs the metrics
    ``scored_pairs_kept`` and ``scored_pairs_above_threshold``.

    Args:
        target: The MLflow store.
        run_id: The training run of the model that scored the pairs.
        con: Warehouse connection.
        pairs_table: Scored pairs (``pairwise_matches``).
        records_table: The records that were scored (``customer_records``), for the
            term frequencies.
        model: The Splink model JSON that scored the pairs.
        threshold: The model's match threshold (probability), marked on the histogram.
        out_dir: Folder for the files.
        sample: Most pairs in the comparison viewer, 1 to 1000.
        seed: Seed of the sample.
        record_level: ``mlflow.record_level_artifacts``: ``masked`` or ``none``.

    Returns:
        The files written.

    Raises:
        ValueError: ``sample`` is outside 1 to 1000.

    Examples:
        ```py
        log_scoring_artifacts(
            target, stored.mlflow_run_id, con, pairs_table="pairwise_matches",
            records_table="customer_records", model=stored.model,
            threshold=stored.match_threshold, out_dir=Path("artifacts/scoring"),
        )
        ```
    """
    if not 1 <= sample <= MAX_DASHBOARD_SAMPLE:
        raise ValueError(f"sample must be 1 to {MAX_DASHBOARD_SAMPLE} pairs, got {sample}")
    out_dir.mkdir(parents=True, exist_ok=True)
    histogram = out_dir / Path(HISTOGRAM_ARTIFACT).name
    histogram.write_bytes(match_weight_histogram_png(con, pairs_table, threshold=threshold))
    kept, above = con.execute(
        f"SELECT count(*), count(*) FILTER (match_probability >= ?) FROM {quote(pairs_table)}",
        [threshold],
    ).fetchall()[0]
    artifacts = _splink_scoring_charts(
        con,
        histogram=histogram,
        pairs_table=pairs_table,
        records_table=records_table,
        model=model,
        out_dir=out_dir,
        sample=sample,
        seed=seed,
        masked=record_level == "masked",
    )
    _log_to_run(target, run_id, artifacts, kept=kept, above=above)
    return artifacts


def _log_to_run(
    target: MlflowTarget, run_id: str, artifacts: ScoringArtifacts, *, kept: int, above: int
) -> None:
    """Attach the histogram and the masked copies to the run, with the scored-pair counts."""
    client = tracking_client(target)
    for folder, paths in artifacts.mlflow_files().items():
        for path in paths:
            client.log_artifact(run_id, str(path), artifact_path=folder)
    client.log_metric(run_id, "scored_pairs_kept", float(kept))
    client.log_metric(run_id, "scored_pairs_above_threshold", float(above))
    logger.info(
        "logged scoring charts to run %s (%d masked term-frequency charts, %s viewer)",
        run_id,
        len(artifacts.masked_term_frequency_charts),
        "a masked" if artifacts.masked_comparison_viewer is not None else "no",
    )


def charted_tf_comparisons(model: dict[str, Any]) -> list[str]:
    """Comparisons with term-frequency adjustments on no private column (names, places).

    Examples:
        >>> level = {"tf_adjustment_column": "first_name"}
        >>> charted_tf_comparisons(
        ...     {"comparisons": [
        ...         {"output_column_name": "first_name", "comparison_levels": [level]},
        ...         {"output_column_name": "email",
        ...          "comparison_levels": [{"tf_adjustment_column": "email"}]},
        ...     ]}
        ... )
        ['first_name']
    """
    names = []
    for comparison in model["comparisons"]:
        columns = {
            level["tf_adjustment_column"]
            for level in comparison["comparison_levels"]
            if level.get("tf_adjustment_column")
        }
        if columns and not columns & PRIVATE_TF_COLUMNS:
            names.append(comparison["output_column_name"])
    return names


def _write_masked_tf_chart(chart: Any, column: str, path: Path) -> Path:
    """A copy of a term-frequency chart whose values are masked (its spec's ``data``)."""
    from splink.internals.html_utils import chart_html

    spec = copy.deepcopy(chart.chart_dict)
    datasets = spec.get("datasets", {})
    if "data" in datasets:
        datasets["data"] = masked_tf_chart_data(datasets["data"], column)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(chart_html(spec, inline=True, fullhtml=True), encoding="utf-8")
    return path


def _masked_sample(con: duckdb.DuckDBPyConnection, sample_table: str, out_table: str) -> None:
    """``out_table``: the sampled pairs with their record values masked, scores kept."""
    table = con.sql(f"SELECT * FROM {quote(sample_table)}").to_arrow_table()
    schema = pa.schema(
        [
            pa.field(f.name, pa.string()) if _masked_as_text(f) else f  # dates show as 9999-99-99
            for f in table.schema
        ]
    )
    masked = pa.Table.from_pylist([masked_pair(row) for row in table.to_pylist()], schema=schema)
    view = "__meld_masked_rows"
    con.register(view, masked)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {quote(out_table)} AS SELECT * FROM {view}")
    finally:
        con.unregister(view)


def _masked_as_text(column: pa.Field) -> bool:
    """Whether a sampled pair's column holds record values that masking turns into text
    (numbers and flags are kept as they are)."""
    kept = pa.types.is_boolean(column.type) or pa.types.is_integer(column.type)
    kept = kept or pa.types.is_floating(column.type)
    return masked_pair_column(column.name) is not None and not kept


def _splink_scoring_charts(
    con: duckdb.DuckDBPyConnection,
    *,
    histogram: Path,
    pairs_table: str,
    records_table: str,
    model: dict[str, Any],
    out_dir: Path,
    sample: int,
    seed: int,
    masked: bool,
) -> ScoringArtifacts:
    """Term-frequency charts and the comparison viewer (None when no pair was scored),
    and their masked copies when ``masked``."""
    sample_table = "__meld_comparison_viewer_sample"
    masked_table = "__meld_comparison_viewer_masked"
    charts: dict[str, Path] = {}
    masked_charts: dict[str, Path] = {}
    viewer = masked_viewer = None
    try:
        with _splink_linker(con, records_table, model) as (linker, _):
            for name in charted_tf_comparisons(model):
                path = out_dir / f"tf_{name}.html"
                chart = linker.visualisations.tf_adjustment_chart(
                    name, n_most_freq=10, n_least_freq=0
                )
                chart.save_offline_chart(str(path), overwrite=True, print_msg=False)
                charts[name] = path
                if masked:
                    masked_charts[name] = _write_masked_tf_chart(
                        chart, name, out_dir / MASKED_FOLDER / path.name
                    )
        # Sizes and seeds are ints: SAMPLE takes no parameters.
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {quote(sample_table)} AS "
            f"SELECT * FROM {quote(pairs_table)} "
            f"USING SAMPLE reservoir({int(sample)} ROWS) REPEATABLE ({int(seed)})"
        )
        sampled = int(con.execute(f"SELECT count(*) FROM {quote(sample_table)}").fetchall()[0][0])
        if sampled:
            viewer = _comparison_viewer(con, records_table, model, sample_table, out_dir)
        if sampled and masked:
            _masked_sample(con, sample_table, masked_table)
            masked_viewer = _comparison_viewer(
                con, records_table, model, masked_table, out_dir / MASKED_FOLDER
            )
    finally:
        for table in (sample_table, masked_table):
            con.execute(f"DROP TABLE IF EXISTS {quote(table)}")
    return ScoringArtifacts(histogram, charts, viewer, sampled, masked_charts, masked_viewer)


@contextmanager
def _splink_linker(
    con: duckdb.DuckDBPyConnection, records_table: str, model: dict[str, Any]
) -> Iterator[tuple[Any, Any]]:
    """A Splink linker over the records, and its database API; the tables Splink creates
    are dropped after."""
    from splink import DuckDBAPI, Linker

    db_api = DuckDBAPI(connection=con)
    try:
        yield Linker(db_api.register(records_table), model, log_level=logging.WARNING), db_api
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)


def _comparison_viewer(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    model: dict[str, Any],
    pairs: str,
    out_dir: Path,
) -> Path:
    """Splink's comparison viewer over the scored pairs in table ``pairs``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    viewer = out_dir / "comparison_viewer.html"
    with _splink_linker(con, records_table, model) as (linker, db_api):
        # Splink's dashboard SQL reads the predictions under this name.
        predictions = db_api.register(pairs, table_name="__splink__df_predict")
        linker.visualisations.comparison_viewer_dashboard(
            predictions, str(viewer), overwrite=True, num_example_rows=2
        )
    return viewer
