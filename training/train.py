"""Train the Fellegi-Sunter linkage model with Splink over ``customer_records``.

Training follows the usual Splink recipe: lambda (the prior that two random records
match) from deterministic rules and their estimated recall, u probabilities by random
sampling of record pairs, m probabilities by expectation maximisation over several
blocking rules, term-frequency adjustments on names and other skewed fields.

Examples:
    ```py
    result = train_linkage_model(con, "customer_records", TrainingOptions(seed=1), out_dir)
    result.model["probability_two_random_records_match"]
    ```
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
from splink import DuckDBAPI, Linker
from splink.blocking_analysis import count_comparisons_from_blocking_rules

from linkage.canonical import IDENTIFIER_FIELDS, MATCHING_COLUMNS
from linkage.model.blocking import (
    PREDICTION_RULES,
    candidate_rules,
    describe,
    to_splink,
    usable_rules,
)
from linkage.model.rule_selection import RuleChoice, choose_prediction_rules
from linkage.model.settings import FixedLevel, model_settings
from linkage.model.training_options import TrainingOptions
from linkage.warehouse import drop_splink_tables, quote
from training.probability_floor import (
    FloorReport,
    apply_probability_floor,
    em_probability_floor,
)

logger = logging.getLogger(__name__)


EM_CONVERGENCE = 0.0001
"""EM stops when no m probability moves more than this in one iteration (Splink's
``em_convergence`` in the settings)."""


@dataclass(frozen=True)
class EmSession:
    """One EM training session: the rule it blocked on and how it converged.

    Attributes:
        blocking_rule: The training rule, e.g. ``first_name & last_name``.
        iterations: EM iterations run.
        max_changes: Per iteration, the largest absolute change of any m or u
            probability from the iteration before; EM converged when the last is below
            :data:`EM_CONVERGENCE`.
    """

    blocking_rule: str
    iterations: int
    max_changes: tuple[float, ...] = ()

    @property
    def converged(self) -> bool:
        """EM stopped because the parameters settled, not at the iteration cap."""
        return bool(self.max_changes) and self.max_changes[-1] < EM_CONVERGENCE


def _max_parameter_changes(history: Sequence[Any]) -> tuple[float, ...]:
    """Largest |change| of an m or u probability between successive EM snapshots."""
    changes = []
    for before, after in zip(history, history[1:], strict=False):
        largest = 0.0
        pairs = zip(before.comparisons, after.comparisons, strict=True)
        for old_comparison, new_comparison in pairs:
            levels = zip(
                old_comparison.comparison_levels, new_comparison.comparison_levels, strict=True
            )
            for old, new in levels:
                if old.is_null_level:
                    continue
                for a, b in (
                    (old.m_probability, new.m_probability),
                    (old.u_probability, new.u_probability),
                ):
                    if a is not None and b is not None:
                        largest = max(largest, abs(float(b) - float(a)))
        changes.append(largest)
    return tuple(changes)


@dataclass
class TrainingResult:
    """A trained model, how it was trained, and its charts."""

    model: dict[str, Any]
    columns: list[str]
    comparisons: list[str]
    prediction_rules: list[str]
    deterministic_rules: list[str]
    training_rules: list[str]
    em_sessions: list[EmSession]
    comparisons_to_score: int
    records: int
    seconds: float
    charts: dict[str, Path] = field(default_factory=dict)
    term_frequencies: dict[str, Path] = field(default_factory=dict)
    fixed_levels: list[FixedLevel] = field(default_factory=list)
    """Levels whose m and/or u came from the config; the model holds exactly these."""
    floor_report: FloorReport | None = None
    """Levels raised to the probability floor, never observed, or still extreme."""
    rule_choice: RuleChoice | None = None
    """How automatic blocking chose the prediction rules; None when they were fixed."""

    @property
    def probability_two_random_records_match(self) -> float:
        """Lambda of the trained model."""
        return float(self.model["probability_two_random_records_match"])


def columns_with_data(
    con: duckdb.DuckDBPyConnection, table: str, candidates: Iterable[str] | None = None
) -> list[str]:
    """Columns of ``table`` among ``candidates`` that hold at least two distinct values.

    ``candidates`` defaults to the matching columns but ``country`` (what the default
    model may use); :attr:`ModelSpec.candidate_columns` adds custom fields.
    """
    present = {
        row[0]
        for row in con.execute(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ?",
            [table],
        ).fetchall()
    }
    if candidates is None:
        candidates = [c for c in MATCHING_COLUMNS if c != "country"]
    candidates = [c for c in candidates if c in present]
    if not candidates:
        return []
    counts = con.execute(
        "SELECT "
        + ", ".join(f"approx_count_distinct({quote(c)})" for c in candidates)
        + f" FROM {quote(table)}"
    ).fetchall()[0]
    return [column for column, distinct in zip(candidates, counts, strict=True) if distinct >= 2]


def train_linkage_model(
    con: duckdb.DuckDBPyConnection,
    table: str,
    options: TrainingOptions,
    artifact_dir: Path,
) -> TrainingResult:
    """Train a Splink model on ``table``; save charts and term frequencies in ``artifact_dir``.

    Args:
        con: Warehouse connection.
        table: Table of standardised records (``customer_records``).
        options: Seed, sampling size and EM settings.
        artifact_dir: Where the HTML charts (``charts/``) and term-frequency lookups
            (``term_frequencies/<column>.parquet``) go.

    Returns:
        The model as Splink JSON, training facts for MLflow, and chart paths.

    Raises:
        ValueError: The table is empty or has too little to match on.
    """
    started = time.perf_counter()
    records = int(con.execute(f"SELECT count(*) FROM {quote(table)}").fetchall()[0][0])
    if records < 2:
        raise ValueError(f"table '{table}' has {records} record(s); need at least 2 to link")
    columns = columns_with_data(con, table, options.model.candidate_columns)
    built = model_settings(columns, options.model, em_max_iterations=options.em_max_iterations)
    settings = built.settings
    deterministic = built.deterministic_rules
    training = built.training_rules
    prediction = built.prediction_rules

    db_api = DuckDBAPI(connection=con)
    records_sdf = db_api.register(table)
    linker = Linker(records_sdf, settings, log_level=logging.WARNING)
    try:
        with em_probability_floor(options.model.probability_floor):
            sessions = _estimate_parameters(linker, options, deterministic, training)
        floor_report = apply_probability_floor(
            linker, options.model.probability_floor, u_floor=1.0 / options.u_max_pairs
        )
        rule_choice = None
        if options.model.blocking == "auto" and not options.model.rules_pinned:
            rule_choice = _choose_rules(con, db_api, linker, table, columns, options, records)
            prediction = rule_choice.chosen
            linker._settings_obj._blocking_rules_to_generate_predictions = [
                creator.get_blocking_rule("duckdb") for creator in to_splink(prediction)
            ]
        comparisons_to_score = _comparisons_to_score(records_sdf, prediction)
        model = linker.misc.save_model_to_json()
        _check_fixed_levels(model, built.fixed_levels)
        charts = _save_charts(linker, artifact_dir / "charts")
        term_frequencies = _save_term_frequencies(
            linker, con, table, artifact_dir / "term_frequencies"
        )
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)
    seconds = time.perf_counter() - started
    logger.info(
        "trained linkage model on %d records in %.1f s (%d EM sessions)",
        records,
        seconds,
        len(sessions),
    )
    return TrainingResult(
        model=model,
        columns=columns,
        comparisons=[c["output_column_name"] for c in model["comparisons"]],
        prediction_rules=describe(prediction),
        deterministic_rules=describe(deterministic),
        training_rules=describe(training),
        em_sessions=sessions,
        comparisons_to_score=comparisons_to_score,
        records=records,
        seconds=seconds,
        charts=charts,
        term_frequencies=term_frequencies,
        fixed_levels=built.fixed_levels,
        floor_report=floor_report,
        rule_choice=rule_choice,
    )


def _estimate_parameters(
    linker: Linker,
    options: TrainingOptions,
    deterministic: Sequence[tuple[str, ...]],
    training: Sequence[tuple[str, ...]],
) -> list[EmSession]:
    """Estimate lambda, u, then m by EM per training rule (and from labels); return the
    EM sessions."""
    if deterministic:
        linker.training.estimate_probability_two_random_records_match(
            to_splink(deterministic), recall=options.deterministic_recall
        )
    linker.training.estimate_u_using_random_sampling(
        max_pairs=options.u_max_pairs, seed=options.seed
    )
    sessions = []
    for rule in training:
        session = linker.training.estimate_parameters_using_expectation_maximisation(
            to_splink([rule])[0]
        )
        # Splink keeps one settings snapshot per EM iteration plus the starting one;
        # it has no public iteration count.
        history = session._core_model_settings_history
        sessions.append(
            EmSession(" & ".join(rule), len(history) - 1, _max_parameter_changes(history))
        )
    if options.labels_table:
        linker.training.estimate_m_from_pairwise_labels(options.labels_table)
    return sessions


def _choose_rules(
    con: duckdb.DuckDBPyConnection,
    db_api: DuckDBAPI,
    linker: Linker,
    table: str,
    columns: Sequence[str],
    options: TrainingOptions,
    records: int,
) -> RuleChoice:
    """Prediction rules chosen from the data by the trained model (``blocking: auto``)."""
    budget = int(min(options.max_comparisons, options.comparisons_per_record * records))
    candidates = usable_rules(candidate_rules(options.model.custom_fields), columns)
    fallback = usable_rules(PREDICTION_RULES, columns)
    return choose_prediction_rules(
        con,
        db_api,
        linker,
        table,
        candidates,
        budget=budget,
        threshold=options.match_threshold,
        seed=options.seed,
        fallback=fallback,
    )


def _comparisons_to_score(records_sdf: Any, prediction: Sequence[tuple[str, ...]]) -> int:
    """Pairs the prediction blocking rules generate together (Splink's exact count)."""
    counts = count_comparisons_from_blocking_rules(
        records_sdf,
        blocking_rules=to_splink(prediction),
        link_type="dedupe_only",
        record_sample_proportion=1.0,
    )
    return int(counts[-1]["cumulative_comparison_count"]) if counts else 0


def _check_fixed_levels(model: dict[str, Any], fixed_levels: list[FixedLevel]) -> None:
    """Refuse a trained model whose fixed m or u moved: the config's values are the model's.

    Splink leaves levels with ``fix_m_probability`` / ``fix_u_probability`` alone in u
    sampling, EM and estimates from labels; this guards that promise across upgrades.
    """
    comparisons = {c["output_column_name"]: c for c in model["comparisons"]}
    for fixed in fixed_levels:
        # Splink numbers non-null levels down to 0 (the last); the null level is -1.
        levels = [
            lv
            for lv in comparisons[fixed.comparison]["comparison_levels"]
            if not lv.get("is_null_level")
        ]
        level = levels[len(levels) - 1 - fixed.comparison_vector_value]
        for kind, wanted in (("m", fixed.m), ("u", fixed.u)):
            if wanted is not None and level.get(f"{kind}_probability") != wanted:
                raise RuntimeError(
                    f"training moved the fixed {kind} of {fixed.comparison} / {fixed.label}: "
                    f"configured {wanted}, trained {level.get(f'{kind}_probability')}"
                )


def _save_charts(linker: Linker, chart_dir: Path) -> dict[str, Path]:
    """Save the model's charts as self-contained HTML files."""
    chart_dir.mkdir(parents=True, exist_ok=True)
    charts = {
        "match_weights": linker.visualisations.match_weights_chart(),
        "m_u_parameters": linker.visualisations.m_u_parameters_chart(),
        # Each EM session's (and the labels') estimate of every m and u, side by side.
        "parameter_estimate_comparisons": (
            linker.visualisations.parameter_estimate_comparisons_chart(include_u=True)
        ),
    }
    paths = {}
    for name, chart in charts.items():
        path = chart_dir / f"{name}.html"
        chart.save_offline_chart(str(path), overwrite=True, print_msg=False)
        paths[name] = path
    return paths


PRIVATE_TF_COLUMNS: frozenset[str] = frozenset({"email", "phone", *IDENTIFIER_FIELDS})
"""Columns whose frequency lookups would list people's contacts or identifiers: never
shipped. The default identifier comparisons have no term-frequency adjustment, so no
lookup is computed for them; should one ever get it, its lookup still stays home."""

MIN_SHIPPED_COUNT = 5
"""A value's frequency is shipped with the model only when this many records share it."""


def _save_term_frequencies(
    linker: Linker, con: duckdb.DuckDBPyConnection, table: str, out_dir: Path
) -> dict[str, Path]:
    """Save term-frequency lookups that can travel with the model without exposing people.

    Lookups for e-mail, phone and the identifiers are not saved, and other lookups keep
    only values shared by at least :data:`MIN_SHIPPED_COUNT` records. Scoring with the
    saved lookups gives a neutral adjustment to any value not in them.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for column in linker._settings_obj._term_frequency_columns:
        name = column.unquote().name
        if name in PRIVATE_TF_COLUMNS:
            continue
        frame = linker.table_management.compute_tf_table(name).as_pandas_dataframe()
        values = con.execute(f"SELECT count({quote(name)}) FROM {quote(table)}").fetchall()[0][0]
        frame = frame[frame[f"tf_{name}"] * values >= MIN_SHIPPED_COUNT - 0.5]
        path = out_dir / f"{name}.parquet"
        frame.to_parquet(path, index=False)
        paths[name] = path
    return paths
