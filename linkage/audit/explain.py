"""Why two records are (or are not) one customer.

:func:`explain_pair` answers a steward's "why are these two records one customer (or
not)?": the match weight of the pair, split into the prior and each comparison's
partial weight (the level it reached, m and u, the term-frequency adjustment), the
model version that scored it, the link veto, the steward decision in force and any
link the clustering refused between them. The weights are the ones the run scored
(``pairwise_matches``); a pair the run did not score (not blocked together, or below
the prediction floor) is scored now with the same model and Splink's
``linker.inference.score_pair``, with term frequencies taken from the whole records
table, so both add up the same way. Splink's waterfall chart of the pair can be written
as an offline HTML page. What holds a whole customer together is
:mod:`linkage.audit.explain_customer`.

Everything here only reads the warehouse (a read-only connection is enough); Splink
runs on a private in-memory DuckDB holding the two records.

Examples:
    ```py
    con = duckdb.connect("warehouse.duckdb", read_only=True)
    pair = explain_pair(con, "crm_contacts:C0000069", "webshop_accounts:WS-a34bdb2f4f",
                        chart_path=Path("artifacts/explain/pair.html"))
    pair.match_weight, pair.total_weight, [c.partial_weight for c in pair.comparisons]
    ```
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
from splink import DuckDBAPI, Linker

from linkage.cluster.clustering import apply_link_vetoes
from linkage.cluster.overrides import MUST_LINK, Override, effective_overrides, list_overrides
from linkage.errors import MeldError
from linkage.ingest.data_quality import mask_value
from linkage.master.customer_view import mask_reference
from linkage.model.store import StoredModel, scoring_model
from linkage.tables import (
    CUSTOMER_CLUSTERS,
    CUSTOMER_RECORDS,
    PAIRWISE_MATCHES,
    REFUSED_LINKS,
)
from linkage.warehouse import quote, table_exists

__all__ = [
    "ComparisonWeight",
    "ExplainError",
    "PairExplanation",
    "chart_file_name",
    "explain_pair",
]

logger = logging.getLogger(__name__)


_SCORED = "__meld_explain_scored"


class ExplainError(MeldError, LookupError):
    """A record, customer or table to explain is not in the warehouse; the message says
    which and what to do."""


@dataclass(frozen=True)
class ComparisonWeight:
    """One comparison's contribution to a pair's match weight.

    Attributes:
        comparison: The comparison's name (``gamma_<comparison>`` in ``pairwise_matches``).
        gamma: The level the pair reached (``-1`` for the null level).
        level: The level's label in the model.
        partial_weight: The level's match weight, ``log2(m / u)`` (0 for the null level).
        m_probability: The level's m as Splink used it (None for the null level).
        u_probability: The level's u as Splink used it (None for the null level).
        m_estimated: Whether the model holds an m for the level; when False, Splink used
            its default m (training never estimated it). None for the null level.
        u_estimated: The same for u.
        tf_column: The column whose term frequency adjusts this level, if any.
        tf_adjustment: The term-frequency adjustment (a match weight) the pair received;
            None when the comparison has no term-frequency adjustment at any level.
        term_frequency_l: Frequency of the left record's ``tf_column`` value.
        term_frequency_r: Frequency of the right record's ``tf_column`` value.
        values_l: The left record's compared values, by column (masked when asked).
        values_r: The right record's compared values, by column.
    """

    comparison: str
    gamma: int
    level: str
    partial_weight: float
    m_probability: float | None
    u_probability: float | None
    m_estimated: bool | None
    u_estimated: bool | None
    tf_column: str | None
    tf_adjustment: float | None
    term_frequency_l: float | None
    term_frequency_r: float | None
    values_l: dict[str, Any]
    values_r: dict[str, Any]

    @property
    def weight(self) -> float:
        """Partial weight plus term-frequency adjustment."""
        return self.partial_weight + (self.tf_adjustment or 0.0)


@dataclass(frozen=True)
class PairExplanation:
    """Why two records are or are not one customer (see :func:`explain_pair`).

    The records are in Splink's order (``record_l`` is the smaller ``unique_id``), the
    order in which the model compares them.

    Attributes:
        record_l: The left record's ``unique_id`` (masked when asked).
        record_r: The right record's ``unique_id``.
        model_name: Registered model that scored the run's pairs.
        model_version: Its version.
        match_threshold: Match probability at or above which a pair is a link.
        prediction_floor: Pairs scoring below this were not kept by the run.
        prior_probability: The model's probability that two random records match (lambda).
        prior_weight: Lambda as a match weight, ``log2(lambda / (1 - lambda))``.
        comparisons: Each comparison's level and weight, in the model's order.
        match_weight: The pair's match weight.
        match_probability: The pair's match probability.
        scored_in_run: Whether the pair is in ``pairwise_matches``.
        computed_now: Whether the weights were computed now rather than read from the run.
        found_by_blocking_rules: For a pair computed now, whether the model's prediction
            blocking rules generate it (None when read from the run, which only scores
            blocked pairs).
        link_veto: The veto that forbids the link, if any.
        customer_l: The left record's customer now.
        customer_r: The right record's customer now.
        override: The steward decision in force between the two records: ``decision``
            (``must_link`` or ``cannot_link``) and ``override`` (the stored decision it
            comes from: a pair decision, or the ``unmerge`` that cut the pair).
        override_history: Every stored decision naming both records, oldest first.
        unmerges: Unmerges in force of either record.
        refused_links: Rows of ``refused_links`` about the pair: the pair's own link
            refused (``role`` ``link``) or links refused because this pair is a
            cannot-link (``role`` ``forbidden_pair``).
        chart_path: Where the waterfall chart was written, if it was.
    """

    record_l: str
    record_r: str
    model_name: str
    model_version: str
    match_threshold: float
    prediction_floor: float
    prior_probability: float
    prior_weight: float
    comparisons: tuple[ComparisonWeight, ...]
    match_weight: float
    match_probability: float
    scored_in_run: bool
    computed_now: bool
    found_by_blocking_rules: bool | None
    link_veto: str | None
    customer_l: str | None
    customer_r: str | None
    override: dict[str, Any] | None
    override_history: tuple[dict[str, Any], ...]
    unmerges: tuple[dict[str, Any], ...]
    refused_links: tuple[dict[str, Any], ...]
    chart_path: Path | None = None

    @property
    def total_weight(self) -> float:
        """Prior plus every partial weight and term-frequency adjustment; equals
        ``match_weight`` (Splink adds them up the same way)."""
        return self.prior_weight + sum(c.weight for c in self.comparisons)

    @property
    def above_threshold(self) -> bool:
        """Whether the pair scores at or above the match threshold."""
        return self.match_probability >= self.match_threshold

    @property
    def is_link(self) -> bool:
        """Whether the model links the pair: at or above the threshold and not vetoed."""
        return self.above_threshold and self.link_veto is None

    @property
    def same_customer(self) -> bool:
        """Whether both records are in one customer now."""
        return self.customer_l is not None and self.customer_l == self.customer_r

    @property
    def override_reflected(self) -> bool | None:
        """Whether the current customers agree with the decision in force (a decision
        recorded after the last clustering run is applied by the next one); None
        without a decision."""
        if self.override is None:
            return None
        if self.override["decision"] == MUST_LINK:
            return self.same_customer
        return not self.same_customer

    @property
    def not_scored_reason(self) -> str | None:
        """Why the run did not score the pair: ``not_blocked`` (no prediction blocking
        rule generates it), ``below_prediction_floor`` or ``not_in_run`` (e.g. a
        record that arrived after scoring); None when the run scored it."""
        if self.scored_in_run:
            return None
        if self.found_by_blocking_rules is False:
            return "not_blocked"
        if self.match_probability < self.prediction_floor:
            return "below_prediction_floor"
        return "not_in_run"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready values (timestamps and dates in ISO 8601)."""
        return plain_value(
            {
                "record_l": self.record_l,
                "record_r": self.record_r,
                "model": {
                    "name": self.model_name,
                    "version": self.model_version,
                    "match_threshold": self.match_threshold,
                    "prediction_floor": self.prediction_floor,
                },
                "prior": {"probability": self.prior_probability, "weight": self.prior_weight},
                "comparisons": [
                    {
                        "comparison": c.comparison,
                        "gamma": c.gamma,
                        "level": c.level,
                        "partial_weight": c.partial_weight,
                        "m_probability": c.m_probability,
                        "u_probability": c.u_probability,
                        "m_estimated": c.m_estimated,
                        "u_estimated": c.u_estimated,
                        "tf_column": c.tf_column,
                        "tf_adjustment": c.tf_adjustment,
                        "term_frequency_l": c.term_frequency_l,
                        "term_frequency_r": c.term_frequency_r,
                        "values_l": c.values_l,
                        "values_r": c.values_r,
                    }
                    for c in self.comparisons
                ],
                "match_weight": self.match_weight,
                "match_probability": self.match_probability,
                "total_weight": self.total_weight,
                "above_threshold": self.above_threshold,
                "is_link": self.is_link,
                "scored_in_run": self.scored_in_run,
                "computed_now": self.computed_now,
                "found_by_blocking_rules": self.found_by_blocking_rules,
                "not_scored_reason": self.not_scored_reason,
                "link_veto": self.link_veto,
                "customer_l": self.customer_l,
                "customer_r": self.customer_r,
                "same_customer": self.same_customer,
                "override": self.override,
                "override_reflected": self.override_reflected,
                "override_history": list(self.override_history),
                "unmerges": list(self.unmerges),
                "refused_links": list(self.refused_links),
                "chart_path": str(self.chart_path) if self.chart_path else None,
            }
        )


def explain_pair(
    con: duckdb.DuckDBPyConnection,
    record_a: str,
    record_b: str,
    *,
    mask: bool = False,
    chart_path: Path | None = None,
    recompute: bool = False,
) -> PairExplanation:
    """Explain the match weight of two records and what was decided about them.

    Args:
        con: Warehouse connection (read-only is enough).
        record_a: A ``unique_id`` (``<source>:<source_record_id>``).
        record_b: Another one; the order does not matter.
        mask: Show compared values and record ids only by their shape.
        chart_path: When given, Splink's waterfall chart of the pair is written there as
            a self-contained HTML page (without compared values when ``mask``).
        recompute: Score the pair now even when the run scored it (to check that the
            model reproduces the run's weights).

    Returns:
        The explanation; its :attr:`~PairExplanation.total_weight` equals its
        ``match_weight``.

    Raises:
        ExplainError: A record is unknown, or the records, model or pairs are not
            in the warehouse yet.
        ValueError: The two records are the same.

    Examples:
        ```py
        pair = explain_pair(con, "crm_contacts:C0000069", "webshop_accounts:WS-a34bdb2f4f")
        for c in pair.comparisons:
            print(c.comparison, c.level, c.partial_weight, c.tf_adjustment)
        pair.override_reflected
        ```
    """
    if record_a == record_b:
        raise ValueError(f"explain two different records; both are {record_a!r}")
    require_tables(con, CUSTOMER_RECORDS)
    left, right = sorted((record_a, record_b))
    records = con.sql(
        f"SELECT * FROM {quote(CUSTOMER_RECORDS)} WHERE unique_id IN (?, ?) ORDER BY unique_id",
        params=[left, right],
    ).to_arrow_table()
    found = set(records.column("unique_id").to_pylist())
    missing = [r for r in (left, right) if r not in found]
    if missing:
        raise ExplainError(
            f"no record {', '.join(repr(m) for m in missing)} in {CUSTOMER_RECORDS}; "
            "records are named <source>:<source_record_id>"
        )
    stored = scoring_model_or_error(con)
    stored_row = _stored_pair(con, left, right)
    if stored_row is not None:
        left, right = stored_row["unique_id_l"], stored_row["unique_id_r"]
    computed = stored_row is None or recompute
    if computed:
        records = _with_term_frequencies(con, records, _tf_columns(stored.model))
    with _splink_session(records, stored.model) as (linker, api, mem):
        if stored_row is not None and not recompute:
            row = stored_row
        else:
            row = _score_now(linker, api, mem, records)
        comparisons = _comparison_weights(linker, stored.model, row, mask=mask)
        if chart_path is not None:
            chart_path.parent.mkdir(parents=True, exist_ok=True)
            chart = linker.visualisations.waterfall_chart(
                [row], filter_nulls=True, remove_sensitive_data=mask
            )
            chart.save_offline_chart(str(chart_path), overwrite=True, print_msg=False)
            logger.info("wrote the waterfall chart of %s ~ %s to %s", left, right, chart_path)
    customers = _customers(con, (left, right))
    override, history, unmerges = _pair_overrides(con, left, right, mask=mask)
    lam = float(stored.model["probability_two_random_records_match"])
    ref = mask_reference if mask else _same
    return PairExplanation(
        record_l=ref(left),
        record_r=ref(right),
        model_name=stored.model_name,
        model_version=str(stored.model_version),
        match_threshold=stored.match_threshold,
        prediction_floor=stored.prediction_floor,
        prior_probability=lam,
        prior_weight=math.log2(lam / (1.0 - lam)),
        comparisons=comparisons,
        match_weight=float(row["match_weight"]),
        match_probability=float(row["match_probability"]),
        scored_in_run=stored_row is not None,
        computed_now=computed,
        found_by_blocking_rules=(
            bool(row["found_by_blocking_rules"]) if "found_by_blocking_rules" in row else None
        ),
        link_veto=row.get("link_veto"),
        customer_l=customers.get(left),
        customer_r=customers.get(right),
        override=override,
        override_history=history,
        unmerges=unmerges,
        refused_links=_refusals(con, left, right, mask=mask),
        chart_path=chart_path,
    )


def chart_file_name(record_a: str, record_b: str) -> str:
    """A safe file name for the waterfall chart of two records (Splink's order).

    Examples:
        >>> chart_file_name("webshop_accounts:WS-a3/4", "crm_contacts:C0000069")
        'crm_contacts_C0000069__webshop_accounts_WS-a3_4.html'
    """
    parts = [
        "".join(ch if ch.isalnum() or ch in "-." else "_" for ch in r)[:100]
        for r in sorted((record_a, record_b))
    ]
    return "__".join(parts) + ".html"


# --- helpers -------------------------------------------------------------------------


def _same(value: str) -> str:
    return value


def plain_value(value: Any) -> Any:
    """Dates, timestamps and decimals as JSON-ready values, recursively."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, dict):
        return {str(k): plain_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain_value(v) for v in value]
    return value


def fetch_dicts(
    con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]
) -> list[dict[str, Any]]:
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def require_tables(con: duckdb.DuckDBPyConnection, *tables: str) -> None:
    missing = [t for t in tables if not table_exists(con, t)]
    if missing:
        raise ExplainError(
            f"no table {', '.join(missing)} in the warehouse yet: materialize the pipeline first"
        )


def scoring_model_or_error(con: duckdb.DuckDBPyConnection) -> StoredModel:
    try:
        return scoring_model(con)
    except LookupError as exc:
        raise ExplainError(str(exc)) from exc


def _tf_columns(model: dict[str, Any]) -> list[str]:
    """Columns the model adjusts for term frequency, in order of first use."""
    columns: list[str] = []
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            column = level.get("tf_adjustment_column")
            if column and column not in columns:
                columns.append(column)
    return columns


def _stored_pair(con: duckdb.DuckDBPyConnection, left: str, right: str) -> dict[str, Any] | None:
    """The run's scored row of the pair, if the run scored it."""
    if not table_exists(con, PAIRWISE_MATCHES):
        return None
    rows = fetch_dicts(
        con,
        f"SELECT * FROM {quote(PAIRWISE_MATCHES)} WHERE (unique_id_l = $1 AND unique_id_r = $2) "
        "OR (unique_id_l = $2 AND unique_id_r = $1)",
        [left, right],
    )
    return rows[0] if rows else None


def _with_term_frequencies(
    con: duckdb.DuckDBPyConnection, records: pa.Table, columns: Sequence[str]
) -> pa.Table:
    """Add ``tf_<column>`` to the records: the share of the records table's non-null
    values of ``column`` equal to the record's value, as Splink computes it."""
    for column in columns:
        values = records.column(column).to_pylist()
        frequencies: list[float | None] = []
        for value in values:
            if value is None:
                frequencies.append(None)
                continue
            share = con.execute(
                f"SELECT CAST(count(*) FILTER (WHERE {quote(column)} = ?) AS DOUBLE) "
                f"/ count({quote(column)}) FROM {quote(CUSTOMER_RECORDS)}",
                [value],
            ).fetchall()[0][0]
            frequencies.append(share)
        records = records.append_column(f"tf_{column}", pa.array(frequencies, pa.float64()))
    return records


@contextmanager
def _splink_session(
    records: pa.Table, model: dict[str, Any]
) -> Iterator[tuple[Linker, DuckDBAPI, duckdb.DuckDBPyConnection]]:
    """A Splink linker over the two records in a private in-memory DuckDB."""
    mem = duckdb.connect()
    try:
        api = DuckDBAPI(connection=mem)
        linker = Linker(api.register(records), model, log_level=logging.WARNING)
        yield linker, api, mem
    finally:
        mem.close()


def _score_now(
    linker: Linker, api: DuckDBAPI, mem: duckdb.DuckDBPyConnection, records: pa.Table
) -> dict[str, Any]:
    """Score the two records (left first) as the run would have, vetoes included."""
    left = api.register(records.slice(0, 1))
    right = api.register(records.slice(1, 1))
    scored = linker.inference.score_pair(left, right, include_found_by_blocking_rules=True)
    mem.execute(f"CREATE TABLE {_SCORED} AS SELECT * FROM {scored.physical_name}")
    apply_link_vetoes(mem, _SCORED)
    rows = fetch_dicts(mem, f"SELECT * FROM {_SCORED}", [])
    return rows[0]


def _comparison_weights(
    linker: Linker, model: dict[str, Any], row: dict[str, Any], *, mask: bool
) -> tuple[ComparisonWeight, ...]:
    """Each comparison's level and weights in the pair's scored row."""
    json_levels = {c["output_column_name"]: c["comparison_levels"] for c in model["comparisons"]}
    weights = []
    for comparison in linker._settings_obj.comparisons:
        gamma = int(row[comparison._gamma_column_name])
        level = comparison._get_comparison_level_by_comparison_vector_value(gamma)
        stored_level = json_levels[comparison.output_column_name][
            comparison.comparison_levels.index(level)
        ]
        has_tf = any(lv._has_tf_adjustments for lv in comparison.comparison_levels)
        tf_column = (
            level._tf_adjustment_input_column.unquote().name if level._has_tf_adjustments else None
        )
        columns = [c.unquote().name for c in comparison._input_columns_used_by_case_statement]
        weights.append(
            ComparisonWeight(
                comparison=comparison.output_column_name,
                gamma=gamma,
                level=level.label_for_charts,
                partial_weight=float(row[comparison._mw_column_name]),
                m_probability=None if level.is_null_level else level.m_probability,
                u_probability=None if level.is_null_level else level.u_probability,
                m_estimated=_estimated(level.is_null_level, stored_level, "m_probability"),
                u_estimated=_estimated(level.is_null_level, stored_level, "u_probability"),
                tf_column=tf_column,
                tf_adjustment=(float(row[comparison._mw_tf_adj_column_name]) if has_tf else None),
                term_frequency_l=row.get(f"tf_{tf_column}_l") if tf_column else None,
                term_frequency_r=row.get(f"tf_{tf_column}_r") if tf_column else None,
                values_l={c: _shown(c, row.get(f"{c}_l"), mask) for c in columns},
                values_r={c: _shown(c, row.get(f"{c}_r"), mask) for c in columns},
            )
        )
    return tuple(weights)


def _estimated(null_level: bool, stored_level: dict[str, Any], key: str) -> bool | None:
    """Whether the model holds the probability ``key`` of a level (None: null level)."""
    return None if null_level else stored_level.get(key) is not None


def _shown(column: str, value: Any, mask: bool) -> Any:
    if value is None or not mask:
        return value
    return mask_value(column, value.isoformat() if isinstance(value, date) else str(value))


def _customers(con: duckdb.DuckDBPyConnection, records: Sequence[str]) -> dict[str, str]:
    if not table_exists(con, CUSTOMER_CLUSTERS):
        return {}
    return dict(
        con.execute(
            f"SELECT unique_id, customer_id FROM {quote(CUSTOMER_CLUSTERS)} "
            "WHERE list_contains(?, unique_id)",
            [list(records)],
        ).fetchall()
    )


def override_json(override: Override, *, mask: bool) -> dict[str, Any]:
    data: dict[str, Any] = override.to_json()
    if mask:
        for key in ("record_a", "record_b"):
            if data[key] is not None:
                data[key] = mask_reference(data[key])
    return data


def _pair_overrides(
    con: duckdb.DuckDBPyConnection, left: str, right: str, *, mask: bool
) -> tuple[dict[str, Any] | None, tuple[dict[str, Any], ...], tuple[dict[str, Any], ...]]:
    """The decision in force between the records, the pair's decision history and the
    unmerges in force of either record."""
    overrides = effective_overrides(con, records_table=CUSTOMER_RECORDS)
    in_force = overrides.for_pair(left, right)
    decision = (
        {"decision": in_force.decision, "override": override_json(in_force.override, mask=mask)}
        if in_force
        else None
    )
    pair = {left, right}
    history = tuple(
        override_json(o, mask=mask)
        for o in list_overrides(con)
        if o.record_b is not None and {o.record_a, o.record_b} == pair
    )
    unmerges = tuple(override_json(u, mask=mask) for u in overrides.unmerges if u.record_a in pair)
    return decision, history, unmerges


def _refusals(
    con: duckdb.DuckDBPyConnection, left: str, right: str, *, mask: bool
) -> tuple[dict[str, Any], ...]:
    if not table_exists(con, REFUSED_LINKS):
        return ()
    rows = fetch_dicts(
        con,
        "SELECT CASE WHEN least(unique_id_l, unique_id_r) = $1 "
        "AND greatest(unique_id_l, unique_id_r) = $2 THEN 'link' ELSE 'forbidden_pair' END "
        f"AS role, * FROM {quote(REFUSED_LINKS)} "
        "WHERE (least(unique_id_l, unique_id_r) = $1 AND greatest(unique_id_l, unique_id_r) = $2) "
        "OR (least(cannot_link_l, cannot_link_r) = $1 "
        "AND greatest(cannot_link_l, cannot_link_r) = $2)",
        [left, right],
    )
    if mask:
        ids = ("unique_id_l", "unique_id_r", "cannot_link_l", "cannot_link_r")
        rows = [
            {k: mask_reference(v) if k in ids and v is not None else v for k, v in r.items()}
            for r in rows
        ]
    return tuple(rows)
