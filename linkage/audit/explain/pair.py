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
:mod:`linkage.audit.explain.customer`.

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
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from linkage.audit.explain.pair_decisions import customers_of, pair_overrides, refused_links
from linkage.audit.explain.pair_explanation import ComparisonWeight, PairExplanation
from linkage.audit.explain.pair_weights import comparison_weights
from linkage.audit.explain.reads import (
    ExplainError,
    fetch_dicts,
    require_tables,
    scoring_model_or_error,
)
from linkage.audit.explain.rescoring import (
    score_now,
    splink_session,
    tf_columns,
    with_term_frequencies,
    write_waterfall_chart,
)
from linkage.model.store import StoredModel
from linkage.privacy.role_policy import Role, viewing_role
from linkage.privacy.role_sql import shown_reference
from linkage.tables import CUSTOMER_RECORDS, PAIRWISE_MATCHES
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)


def explain_pair(
    con: duckdb.DuckDBPyConnection,
    record_a: str,
    record_b: str,
    *,
    role: Role | None = None,
    mask: bool = False,
    chart_path: Path | None = None,
    recompute: bool = False,
) -> PairExplanation:
    """Explain the match weight of two records and what was decided about them.

    Args:
        con: Warehouse connection (read-only is enough).
        record_a: A ``unique_id`` (``<source>:<source_record_id>``).
        record_b: Another one; the order does not matter.
        role: Whose view: compared values and record ids as the role sees them (see
            :mod:`linkage.privacy.role_sql`); every value in clear when None.
        mask: Also mask what the role sees in clear.
        chart_path: When given, Splink's waterfall chart of the pair is written there as
            a self-contained HTML page (without compared values unless the role sees
            every value in clear).
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
    viewer = viewing_role(role, mask=mask)
    left, right, records = _pair_records(con, record_a, record_b)
    stored = scoring_model_or_error(con)
    stored_row = _stored_pair(con, left, right)
    if stored_row is not None:
        left, right = stored_row["unique_id_l"], stored_row["unique_id_r"]
    computed = stored_row is None or recompute
    if computed:
        records = with_term_frequencies(con, records, tf_columns(stored.model))
    row, comparisons = _weights(
        records,
        stored.model,
        None if computed else stored_row,
        role=viewer,
        chart_path=chart_path,
    )
    return _explanation(
        con,
        stored,
        (left, right),
        row,
        comparisons,
        scored_in_run=stored_row is not None,
        computed_now=computed,
        role=viewer,
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


def _pair_records(
    con: duckdb.DuckDBPyConnection, record_a: str, record_b: str
) -> tuple[str, str, pa.Table]:
    """Both records from ``customer_records``, smaller ``unique_id`` first."""
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
    return left, right, records


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


def _weights(
    records: pa.Table,
    model: dict[str, Any],
    stored_row: dict[str, Any] | None,
    *,
    role: Role,
    chart_path: Path | None,
) -> tuple[dict[str, Any], tuple[ComparisonWeight, ...]]:
    """The pair's scored row (the run's, or scored now without one) and its comparison
    weights; the waterfall chart is written to ``chart_path`` when given."""
    with splink_session(records, model) as (linker, api, mem):
        row = stored_row if stored_row is not None else score_now(linker, api, mem, records)
        comparisons = comparison_weights(linker, model, row, role=role)
        if chart_path is not None:
            write_waterfall_chart(linker, row, chart_path, mask=not role.sees_everything)
            logger.info("wrote the waterfall chart of a pair to %s", chart_path)
    return row, comparisons


def _explanation(
    con: duckdb.DuckDBPyConnection,
    stored: StoredModel,
    pair: tuple[str, str],
    row: dict[str, Any],
    comparisons: tuple[ComparisonWeight, ...],
    *,
    scored_in_run: bool,
    computed_now: bool,
    role: Role,
    chart_path: Path | None,
) -> PairExplanation:
    """The explanation of the scored pair, with its customers and the decisions about it."""
    left, right = pair
    customers = customers_of(con, (left, right))
    override, history, unmerges = pair_overrides(con, left, right, role=role)
    lam = float(stored.model["probability_two_random_records_match"])
    return PairExplanation(
        record_l=shown_reference(role, left),
        record_r=shown_reference(role, right),
        model_name=stored.model_name,
        model_version=str(stored.model_version),
        match_threshold=stored.match_threshold,
        prediction_floor=stored.prediction_floor,
        prior_probability=lam,
        prior_weight=math.log2(lam / (1.0 - lam)),
        comparisons=comparisons,
        match_weight=float(row["match_weight"]),
        match_probability=float(row["match_probability"]),
        scored_in_run=scored_in_run,
        computed_now=computed_now,
        found_by_blocking_rules=(
            bool(row["found_by_blocking_rules"]) if "found_by_blocking_rules" in row else None
        ),
        link_veto=row.get("link_veto"),
        customer_l=customers.get(left),
        customer_r=customers.get(right),
        override=override,
        override_history=history,
        unmerges=unmerges,
        refused_links=refused_links(con, left, right, role=role),
        chart_path=chart_path,
    )
