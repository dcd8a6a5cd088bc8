"""Blocking analysis: what the prediction rules cost, and which true pairs they can reach.

For each blocking rule, in the order scoring applies them: the record pairs it generates
on its own, the pairs it adds to the rules before it (Splink's marginal count) and the
running total; the largest blocks it forms; and, when the known entity of records
(``ground_truth``) or clerical labels (``clerical_labels``) are loaded, the share of
true pairs the rule reaches, alone and together with the rules before it. A true pair
no rule reaches is never scored: the cumulative share is an upper bound on the recall
of scored pairs (clustering may still join the two records through a third).

Block keys are people's names, e-mails and dates of birth, so the largest blocks are
stored without them: each block has the first 16 hex characters of the SHA-256 of its
key values (joined by U+001F) and the values masked to their shape
(:func:`linkage.ingest.masking.mask_value`, e.g. ``j***@g***.com``). The hash is unsalted:
it lets someone with warehouse access find the block again, by hashing candidate key
values, but it also lets anyone confirm a guessed value, so treat the table as internal.

Examples:
    ```py
    analysis = analyse_blocking(
        con, "customer_records", [("email",), ("first_name", "last_name")],
        max_comparisons=2e8, truth_table="ground_truth",
    )
    analysis.total_comparisons, analysis.true_pair_recall, analysis.within_limit
    # (69111, 0.896, True)
    ```
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import duckdb
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter

from linkage.atomic import transaction
from linkage.ingest.quality.masking import mask_value
from linkage.model.blocking import BLOCKING_KEYS
from linkage.model.comparison_limit import (
    RuleComparisons,
    count_comparisons,
    over_limit,
    to_blocking_rule,
)
from linkage.tables import BLOCKING_ANALYSIS, BLOCKING_LARGEST_BLOCKS, BLOCKING_RULE_CANDIDATES
from linkage.warehouse import quote, row_count

logger = logging.getLogger(__name__)

KEY_HASH_CHARS = 16
_KEY_SEPARATOR = "\x1f"

ANALYSIS_COLUMNS: dict[str, str] = {
    "rule_number": "INTEGER",
    "blocking_rule": "VARCHAR",
    "comparisons_alone": "BIGINT",
    "marginal_comparisons": "BIGINT",
    "cumulative_comparisons": "BIGINT",
    "counts_are_estimates": "BOOLEAN",
    "true_pairs_reached_alone": "BIGINT",
    "true_pair_recall_alone": "DOUBLE",
    "true_pairs_reached_cumulative": "BIGINT",
    "true_pair_recall_cumulative": "DOUBLE",
}
"""Columns of ``blocking_analysis``, one row per rule; the true-pair columns are NULL
without truth or labels."""

BLOCK_COLUMNS: dict[str, str] = {
    "rule_number": "INTEGER",
    "blocking_rule": "VARCHAR",
    "block_rank": "INTEGER",
    "key_hash": "VARCHAR",
    "key_masked": "VARCHAR",
    "block_records": "BIGINT",
    "block_comparisons": "BIGINT",
}
"""Columns of ``blocking_largest_blocks``: the largest blocks of each rule, no raw key."""


@dataclass(frozen=True)
class RuleAnalysis:
    """What one blocking rule generates and reaches.

    Attributes:
        rule_number: Position in the rule list, from 1 (``blocking_rule_N`` in MLflow).
        rule: Readable name, e.g. ``first_name & last_name``.
        comparisons_alone: Pairs the rule generates on its own.
        marginal_comparisons: Pairs it adds to those of the rules before it.
        cumulative_comparisons: Pairs of this rule and all before it.
        is_estimate: Marginal and cumulative counts are estimated from a sample (only
            when one rule alone is over the limit).
        true_pairs_alone: True pairs the rule reaches on its own (None without truth).
        true_pairs_cumulative: True pairs this rule or one before it reaches.
    """

    rule_number: int
    rule: str
    comparisons_alone: int
    marginal_comparisons: int
    cumulative_comparisons: int
    is_estimate: bool
    true_pairs_alone: int | None = None
    true_pairs_cumulative: int | None = None


@dataclass(frozen=True)
class Block:
    """One of the largest blocks of a rule, with its key hashed and masked."""

    rule_number: int
    rule: str
    rank: int
    key_hash: str
    key_masked: str
    records: int
    comparisons: int


@dataclass(frozen=True)
class BlockingAnalysis:
    """The outcome of :func:`analyse_blocking`."""

    records_table: str
    records: int
    rules: list[RuleAnalysis]
    largest_blocks: list[Block]
    max_comparisons: float
    true_pairs: int | None = None
    candidates: list[dict] = field(default_factory=list)
    """With automatic blocking, every candidate rule (``blocking_rule_candidates``):
    its cost, estimated and measured reach, and why it was chosen or left out."""

    @property
    def total_comparisons(self) -> int:
        """Pairs all rules generate together: what scoring will form."""
        return self.rules[-1].cumulative_comparisons if self.rules else 0

    @property
    def all_pairs(self) -> int:
        """Pairs of records without any blocking."""
        return self.records * (self.records - 1) // 2

    @property
    def within_limit(self) -> bool:
        """No rule alone, and not all rules together, exceed ``max_comparisons``."""
        return self.limit_message() is None

    @property
    def true_pair_recall(self) -> float | None:
        """Share of true pairs some rule reaches; None without truth or true pairs."""
        if not self.true_pairs or not self.rules:
            return None
        return (self.rules[-1].true_pairs_cumulative or 0) / self.true_pairs

    def limit_message(self) -> str | None:
        """Why the rules are over the limit, naming the rule contributing most; None if
        within it (see :func:`linkage.model.comparison_limit.over_limit`)."""
        counts = [
            RuleComparisons(
                r.rule, r.comparisons_alone, r.marginal_comparisons, r.cumulative_comparisons
            )
            for r in self.rules
        ]
        return over_limit(self.records_table, counts, self.max_comparisons)


def analyse_blocking(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    rules: Sequence[tuple[str, ...]],
    *,
    max_comparisons: float,
    truth_table: str | None = None,
    labels_table: str | None = None,
    label_threshold: float = 0.5,
    largest_blocks: int = 5,
) -> BlockingAnalysis:
    """Count what each blocking rule generates and reaches; write the analysis tables.

    Writes ``blocking_analysis`` (one row per rule, see :data:`ANALYSIS_COLUMNS`) and
    ``blocking_largest_blocks`` (see :data:`BLOCK_COLUMNS`), replacing earlier ones.
    Counts are exact unless one rule alone exceeds ``max_comparisons``: then the run is
    over the limit whatever the other rules do, and marginal and cumulative counts are
    estimated from a sample rather than forming every pair (``counts_are_estimates``).

    Args:
        con: Warehouse connection.
        records_table: Records with ``unique_id`` and the rules' columns.
        rules: Blocking rules as column tuples, in the order scoring applies them.
        max_comparisons: The limit on pairs (``model.max_comparisons``) the analysis
            reports against. Counting streams pairs and never holds them; when one rule
            alone is over the limit, only a sample of about this many pairs is formed.
        truth_table: Table ``(unique_id, entity_id)`` of known entities: records of one
            entity form true pairs.
        labels_table: Table ``(unique_id_l, unique_id_r, clerical_match_score)`` of
            clerical labels with Meld ``unique_id`` values, such as ``clerical_labels``
            (:func:`training.labels.load_labels`): pairs scored at or above
            ``label_threshold`` are true pairs, added to those of the truth.
        label_threshold: Clerical score at or above which a labelled pair is a match.
        largest_blocks: Blocks kept per rule, largest first.

    Returns:
        Per-rule counts, the largest blocks and, with truth or labels, true-pair reach.

    Raises:
        ValueError: No rules: scoring would compare every pair of records.
    """
    if not rules:
        raise ValueError(
            f"no blocking rules to analyse on '{records_table}': without one, every pair "
            "of records would be scored"
        )
    records = row_count(con, records_table)
    counts = count_comparisons(con, records_table, rules, max_comparisons=max_comparisons)
    reach = (
        _true_pair_reach(con, records_table, rules, truth_table, labels_table, label_threshold)
        if truth_table or labels_table
        else None
    )
    blocks = [
        block
        for number, rule in enumerate(rules, start=1)
        for block in _largest_blocks(con, records_table, number, rule, largest_blocks)
    ]
    analysis = BlockingAnalysis(
        records_table=records_table,
        records=records,
        rules=_rule_analyses(counts, reach),
        largest_blocks=blocks,
        max_comparisons=max_comparisons,
        true_pairs=None if reach is None else reach[0],
    )
    _write_tables(con, analysis)
    logger.info(
        "blocking analysis: %d rules generate %d of %d possible pairs (limit %.0f)%s",
        len(rules),
        analysis.total_comparisons,
        analysis.all_pairs,
        max_comparisons,
        ""
        if analysis.true_pair_recall is None
        else f", reaching {analysis.true_pair_recall:.1%} of true pairs",
    )
    return analysis


def _rule_analyses(
    counts: Sequence[RuleComparisons], reach: tuple[int, list[int], list[int]] | None
) -> list[RuleAnalysis]:
    """One :class:`RuleAnalysis` per rule from its comparison counts and true-pair reach
    (``reach`` is None without truth or labels)."""
    return [
        RuleAnalysis(
            rule_number=number,
            rule=count.rule,
            comparisons_alone=int(count.alone or 0),
            marginal_comparisons=count.marginal,
            cumulative_comparisons=count.cumulative,
            is_estimate=count.is_estimate,
            true_pairs_alone=None if reach is None else reach[1][number - 1],
            true_pairs_cumulative=None if reach is None else reach[2][number - 1],
        )
        for number, count in enumerate(counts, start=1)
    ]


def _rule_condition(rule: tuple[str, ...]) -> str:
    """SQL true when a pair ``l``/``r`` shares every key of the rule (NULL never does)."""
    return f"coalesce(({to_blocking_rule(rule).blocking_rule_sql}), false)"


def _true_pair_reach(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    rules: Sequence[tuple[str, ...]],
    truth_table: str | None,
    labels_table: str | None,
    label_threshold: float,
) -> tuple[int, list[int], list[int]]:
    """True pairs among the records, and how many each rule reaches alone and cumulatively."""
    sources = []
    parameters: list[float] = []
    if truth_table:
        sources.append(
            f"SELECT a.unique_id AS id_l, b.unique_id AS id_r FROM {quote(truth_table)} AS a "
            f"JOIN {quote(truth_table)} AS b "
            "ON a.entity_id = b.entity_id AND a.unique_id < b.unique_id"
        )
    if labels_table:
        sources.append(
            "SELECT least(unique_id_l, unique_id_r) AS id_l, "
            f"greatest(unique_id_l, unique_id_r) AS id_r FROM {quote(labels_table)} "
            "WHERE clerical_match_score >= ? AND unique_id_l <> unique_id_r"
        )
        parameters.append(label_threshold)
    conditions = [_rule_condition(rule) for rule in rules]
    alone = [f"count_if({condition})" for condition in conditions]
    cumulative = [f"count_if({' OR '.join(conditions[: n + 1])})" for n in range(len(conditions))]
    row = con.execute(
        f"WITH true_pairs AS ({' UNION '.join(sources)}) "
        f"SELECT count(*), {', '.join(alone + cumulative)} FROM true_pairs AS p "
        f"JOIN {quote(records_table)} AS l ON l.unique_id = p.id_l "
        f"JOIN {quote(records_table)} AS r ON r.unique_id = p.id_r",
        parameters,
    ).fetchall()[0]
    values = [int(v) for v in row]
    return values[0], values[1 : len(rules) + 1], values[len(rules) + 1 :]


def _largest_blocks(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    number: int,
    rule: tuple[str, ...],
    limit: int,
) -> list[Block]:
    """The ``limit`` largest blocks of one rule (two records or more), key not stored."""
    keys = [BLOCKING_KEYS[c][0] if c in BLOCKING_KEYS else quote(c) for c in rule]
    columns = ", ".join(keys)
    present = " AND ".join(f"({key}) IS NOT NULL" for key in keys)
    rows = con.execute(
        f"SELECT {columns}, count(*) AS n FROM {quote(records_table)} WHERE {present} "
        f"GROUP BY ALL HAVING count(*) >= 2 ORDER BY n DESC, {columns} LIMIT ?",
        [limit],
    ).fetchall()
    name = " & ".join(rule)
    blocks = []
    for rank, row in enumerate(rows, start=1):
        values = [str(value) for value in row[:-1]]
        size = int(row[-1])
        digest = hashlib.sha256(_KEY_SEPARATOR.join(values).encode("utf-8")).hexdigest()
        masked = " & ".join(
            mask_value(column, value) or "" for column, value in zip(rule, values, strict=True)
        )
        blocks.append(
            Block(
                rule_number=number,
                rule=name,
                rank=rank,
                key_hash=digest[:KEY_HASH_CHARS],
                key_masked=masked,
                records=size,
                comparisons=size * (size - 1) // 2,
            )
        )
    return blocks


def _create(con: duckdb.DuckDBPyConnection, table: str, columns: dict[str, str]) -> None:
    definition = ", ".join(f"{quote(name)} {kind}" for name, kind in columns.items())
    con.execute(f"CREATE OR REPLACE TABLE {quote(table)} ({definition})")


def _write_tables(con: duckdb.DuckDBPyConnection, analysis: BlockingAnalysis) -> None:
    true_pairs = analysis.true_pairs
    rule_rows = [
        [
            r.rule_number,
            r.rule,
            r.comparisons_alone,
            r.marginal_comparisons,
            r.cumulative_comparisons,
            r.is_estimate,
            r.true_pairs_alone,
            r.true_pairs_alone / true_pairs
            if true_pairs and r.true_pairs_alone is not None
            else None,
            r.true_pairs_cumulative,
            r.true_pairs_cumulative / true_pairs
            if true_pairs and r.true_pairs_cumulative is not None
            else None,
        ]
        for r in analysis.rules
    ]
    block_rows = [
        [b.rule_number, b.rule, b.rank, b.key_hash, b.key_masked, b.records, b.comparisons]
        for b in analysis.largest_blocks
    ]
    with transaction(con):  # both tables, filled, or the previous ones
        _create(con, BLOCKING_ANALYSIS, ANALYSIS_COLUMNS)
        _create(con, BLOCKING_LARGEST_BLOCKS, BLOCK_COLUMNS)
        placeholders = ", ".join("?" * len(ANALYSIS_COLUMNS))
        con.executemany(
            f"INSERT INTO {quote(BLOCKING_ANALYSIS)} VALUES ({placeholders})", rule_rows
        )
        if block_rows:
            con.executemany(
                f"INSERT INTO {quote(BLOCKING_LARGEST_BLOCKS)} "
                f"VALUES ({', '.join('?' * len(BLOCK_COLUMNS))})",
                block_rows,
            )


def analysed_rule_comparisons(con: duckdb.DuckDBPyConnection) -> list[RuleComparisons]:
    """The comparisons per rule of the latest ``blocking_analysis``, in rule order."""
    rows = con.execute(
        "SELECT blocking_rule, comparisons_alone, marginal_comparisons, "
        f"cumulative_comparisons FROM {quote(BLOCKING_ANALYSIS)} ORDER BY rule_number"
    ).fetchall()
    return [
        RuleComparisons(rule, alone, marginal, cumulative)
        for rule, alone, marginal, cumulative in rows
    ]


def cumulative_comparisons_png(analysis: BlockingAnalysis) -> bytes:
    """Waterfall bars: the pairs each rule adds, starting where the rules before it end,
    with the limit drawn when the total comes within a tenth of it."""
    rules = analysis.rules
    figure = Figure(figsize=(8, 0.35 * len(rules) + 1.2))
    axis = figure.subplots()
    starts = [r.cumulative_comparisons - r.marginal_comparisons for r in rules]
    axis.barh(
        range(len(rules)),
        [r.marginal_comparisons for r in rules],
        left=starts,
        color="#264653",
    )
    axis.set_yticks(
        range(len(rules)), [f"{r.rule_number}. {r.rule}"[:50] for r in rules], fontsize=8
    )
    axis.invert_yaxis()
    for index, rule in enumerate(rules):
        axis.annotate(
            f"{rule.cumulative_comparisons:,}",
            (rule.cumulative_comparisons, index),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )
    if analysis.total_comparisons >= analysis.max_comparisons / 10:
        axis.axvline(analysis.max_comparisons, color="#e76f51", linestyle="--", label="limit")
        axis.legend(loc="lower right", fontsize=8)
    axis.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}"))
    axis.tick_params(axis="x", labelsize=8)
    estimated = any(r.is_estimate for r in rules)
    axis.set_xlabel("record comparisons, cumulative" + (" (estimated)" if estimated else ""))
    axis.set_title(
        f"Comparisons generated by the blocking rules: {'about ' if estimated else ''}"
        f"{analysis.total_comparisons:,} (limit {analysis.max_comparisons:,.0f})",
        fontsize=10,
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


def measure_candidate_reach(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    candidates: Sequence[tuple[str, ...]],
    *,
    truth_table: str | None,
    labels_table: str | None,
    label_threshold: float = 0.5,
) -> list[float | None]:
    """Share of true pairs (truth or labels) each candidate rule reaches alone, written
    to ``blocking_rule_candidates.true_pair_reach``; Nones without truth or labels."""
    if not candidates or not (truth_table or labels_table):
        return [None] * len(candidates)
    true_pairs, alone, _ = _true_pair_reach(
        con, records_table, candidates, truth_table, labels_table, label_threshold
    )
    shares = [count / true_pairs if true_pairs else None for count in alone]
    with transaction(con):  # executemany commits row by row
        con.executemany(
            f"UPDATE {BLOCKING_RULE_CANDIDATES} SET true_pair_reach = ? WHERE rule_keys = ?",
            [
                (share, json.dumps(list(rule)))
                for share, rule in zip(shares, candidates, strict=True)
            ],
        )
    return shares
