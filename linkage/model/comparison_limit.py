"""Count the record pairs that blocking rules generate, and refuse to score too many.

Scoring holds every blocked pair in memory with all its comparison columns, so a rule
that blocks on a value thousands of records share (a placeholder e-mail, a default date
of birth, a common name) can exhaust the machine long after the run started.
:func:`check_comparison_limit` counts first, cheaply, and fails with a message naming
the rule at fault and the config key that sets the limit.

Counting works in two steps:

1. **Each rule alone**, without forming a single pair: a rule of equality conditions
   puts records sharing the same key values in one block, and a block of ``n`` records
   gives ``n * (n - 1) / 2`` pairs (records with a NULL key value match nothing). One
   ``GROUP BY`` per rule. When one rule alone is over the limit, the run fails here.
2. **Marginal and cumulative**, with Splink's own counter
   (:func:`splink.blocking_analysis.count_comparisons_from_blocking_rules`): each rule
   counts only the pairs no earlier rule generated, exactly as scoring will. DuckDB
   streams the pairs into a count, so this costs time in proportion to the pairs of all
   rules together, but little memory.

Examples:
    ```py
    total = check_comparison_limit(con, "customer_records", [("email",), ("phone",)], 2e8)
    ```
"""

from __future__ import annotations

import logging
import math
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
from splink import DuckDBAPI
from splink.blocking_analysis import count_comparisons_from_blocking_rules
from splink.internals.blocking import BlockingRule
from splink.internals.blocking_rule_creator import BlockingRuleCreator
from splink.internals.blocking_rule_creator_utils import to_blocking_rule_creator

from linkage.errors import MeldError
from linkage.model.blocking import to_splink
from linkage.warehouse import drop_splink_tables, quote, row_count

logger = logging.getLogger(__name__)

LIMIT_CONFIG_KEY = "model.max_comparisons"
"""Where the limit is set in a project config; error messages name it."""

RuleLike = tuple[str, ...] | str | dict[str, Any] | BlockingRuleCreator
"""A blocking rule: a tuple of column names (Meld's own rules, see
:mod:`linkage.model.blocking`), or anything Splink accepts, such as the
``{"blocking_rule": sql, "sql_dialect": "duckdb"}`` dicts a saved model holds."""

_QUOTED_NAME = re.compile(r'^"((?:[^"]|"")+)"$')


class ComparisonLimitError(MeldError, ValueError):
    """Blocking rules would generate more record pairs than the configured limit."""


@dataclass(frozen=True)
class RuleComparisons:
    """How many record pairs one blocking rule generates.

    Attributes:
        rule: Readable name, e.g. ``first_name & last_name``.
        alone: Pairs the rule generates on its own (exact), or None for a rule with
            conditions other than equalities, whose count needs the pairs themselves.
        marginal: Pairs it adds to those of the rules before it.
        cumulative: Pairs of this rule and all rules before it.
        is_estimate: Marginal and cumulative counts are scaled up from a sample.
    """

    rule: str
    alone: int | None
    marginal: int
    cumulative: int
    is_estimate: bool = False


def to_blocking_rule(rule: RuleLike) -> BlockingRule:
    """Splink's ``BlockingRule`` for a column tuple or any rule Splink accepts."""
    creator = to_splink([rule])[0] if isinstance(rule, tuple) else to_blocking_rule_creator(rule)
    return creator.get_blocking_rule("duckdb")


def _key_expressions(rule: BlockingRule) -> list[str] | None:
    """The SQL expressions a pure equality rule groups records by, else None.

    Splink splits a rule into equi-join keys and other ("filter") conditions; its own
    ``n_largest_blocks`` uses the same private properties.
    """
    if rule._filter_conditions not in ("", "TRUE"):
        return None
    keys = rule._equi_join_conditions
    if not keys or any(left != right for left, right in keys):
        return None
    return [left for left, _ in keys]


def describe_rule(rule: RuleLike) -> str:
    """A readable rule name: ``first_name & last_name`` for equality rules, else its SQL.

    Examples:
        >>> describe_rule(("first_name", "last_name"))
        'first_name & last_name'
        >>> describe_rule({"blocking_rule": 'l."email" = r."email"', "sql_dialect": "duckdb"})
        'email'
    """
    if isinstance(rule, tuple):
        return " & ".join(rule)
    splink_rule = to_blocking_rule(rule)
    keys = _key_expressions(splink_rule)
    if keys is None:
        return splink_rule.blocking_rule_sql
    names = [_QUOTED_NAME.match(key) for key in keys]
    return " & ".join(
        match.group(1).replace('""', '"') if match else key
        for match, key in zip(names, keys, strict=True)
    )


def comparisons_alone(
    con: duckdb.DuckDBPyConnection, records_table: str, rules: Sequence[RuleLike]
) -> list[int | None]:
    """Pairs each rule generates on its own, counted from block sizes without pairing.

    A block of ``n`` records that share every key value gives ``n * (n - 1) / 2`` pairs;
    a NULL key value matches nothing. Rules with conditions other than equalities get
    None.

    Examples:
        ```py
        comparisons_alone(con, "customer_records", [("email",), ("first_name", "last_name")])
        # [24008, 63165]
        ```
    """
    counts: list[int | None] = []
    for rule in rules:
        keys = _key_expressions(to_blocking_rule(rule))
        if keys is None:
            counts.append(None)
            continue
        present = " AND ".join(f"({key}) IS NOT NULL" for key in keys)
        pairs = con.execute(
            "SELECT coalesce(sum(n::HUGEINT * (n - 1) // 2), 0) FROM ("
            f"SELECT count(*) AS n FROM {quote(records_table)} WHERE {present} "
            f"GROUP BY {', '.join(keys)})"
        ).fetchall()[0][0]
        counts.append(int(pairs))
    return counts


def cumulative_comparisons(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    rules: Sequence[RuleLike],
    *,
    record_sample_proportion: float = 1.0,
) -> list[tuple[int, int]]:
    """(marginal, cumulative) pairs per rule, in rule order, counted by Splink.

    Args:
        con: Warehouse connection.
        records_table: Records keyed by ``unique_id``, deduplicated against themselves.
        rules: Blocking rules in the order scoring applies them.
        record_sample_proportion: 1.0 counts exactly; less samples that share of the
            records on each side and scales the counts up (Splink's estimate).

    Returns:
        One (marginal, cumulative) pair of counts per rule.
    """
    if not rules:
        return []
    db_api = DuckDBAPI(connection=con)
    try:
        records = db_api.register(records_table)
        with warnings.catch_warnings():
            # Splink warns when a sampled rule yields few pairs; callers flag estimates.
            warnings.filterwarnings("ignore", message="The sampled blocking analysis")
            counted = count_comparisons_from_blocking_rules(
                records,
                blocking_rules=[to_blocking_rule(rule) for rule in rules],
                link_type="dedupe_only",
                unique_id_column_name="unique_id",
                record_sample_proportion=record_sample_proportion,
            )
    finally:
        db_api.delete_tables_created_by_splink_from_db()
        drop_splink_tables(con)
        # Splink's counter registers its result relation on the connection.
        con.unregister("result_df")
    return [
        (int(row["marginal_comparison_count"]), int(row["cumulative_comparison_count"]))
        for row in counted
    ]


def count_comparisons(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    rules: Sequence[RuleLike],
    *,
    max_comparisons: float | None = None,
) -> list[RuleComparisons]:
    """Pairs each rule generates alone, marginally and cumulatively.

    Counts are exact, unless ``max_comparisons`` is given and one rule alone is already
    over it: the total is then known to be over the limit, and marginal and cumulative
    counts are estimated from a sample sized so that about ``max_comparisons`` pairs are
    formed, never the full (possibly enormous) number.

    Examples:
        ```py
        for row in count_comparisons(con, "customer_records", [("email",), ("phone",)]):
            print(row.rule, row.alone, row.marginal, row.cumulative)
        # email 24008 24008 24008
        # phone 30518 19080 43088
        ```
    """
    alone = comparisons_alone(con, records_table, rules)
    known = [count for count in alone if count is not None]
    proportion = 1.0
    if max_comparisons is not None and known and max(known) > max_comparisons:
        proportion = min(1.0, math.sqrt(max_comparisons / sum(known)))
        logger.warning(
            "a blocking rule alone exceeds %s = %.0f; estimating cumulative counts "
            "from %.2f%% of the records",
            LIMIT_CONFIG_KEY,
            max_comparisons,
            100 * proportion,
        )
    counted = cumulative_comparisons(con, records_table, rules, record_sample_proportion=proportion)
    return [
        RuleComparisons(
            rule=describe_rule(rule),
            alone=single,
            marginal=marginal,
            cumulative=cumulative,
            is_estimate=proportion < 1.0,
        )
        for rule, single, (marginal, cumulative) in zip(rules, alone, counted, strict=True)
    ]


def limit_message(
    records_table: str,
    total: int,
    max_comparisons: float,
    rule: str,
    rule_comparisons: int,
    *,
    lower_bound: bool = False,
) -> str:
    """The error text when blocking generates too many pairs: what, the limit, the culprit.

    Examples:
        >>> message = limit_message("customer_records", 300, 200, "first_name", 250)
        >>> print(message)  # doctest: +NORMALIZE_WHITESPACE
        blocking rules on 'customer_records' generate 300 record comparisons, more than
        the limit of 200 (config key model.max_comparisons). The rule contributing most
        is 'first_name' with 250 comparisons (83%). Make that rule stricter or drop it, or
        raise model.max_comparisons if the machine has the memory to score them.
    """
    if lower_bound:
        amount, contribution = f"at least {total:,}", f"{rule_comparisons:,} comparisons alone"
    else:
        share = rule_comparisons / total if total else 0.0
        amount, contribution = f"{total:,}", f"{rule_comparisons:,} comparisons ({share:.0%})"
    return (
        f"blocking rules on '{records_table}' generate {amount} record comparisons, more "
        f"than the limit of {max_comparisons:,.0f} (config key {LIMIT_CONFIG_KEY}). "
        f"The rule contributing most is '{rule}' with {contribution}. Make that rule "
        f"stricter or drop it, or raise {LIMIT_CONFIG_KEY} if the machine has the memory "
        "to score them."
    )


def over_limit(
    records_table: str, counts: Sequence[RuleComparisons], max_comparisons: float
) -> str | None:
    """Why counted rules exceed the limit, naming the rule contributing most; None if not.

    A rule alone over the limit is named first (the total is then at least its count);
    otherwise, when all rules together are over, the rule adding the most pairs.

    Examples:
        >>> counts = [RuleComparisons("email", 90, 90, 90), RuleComparisons("phone", 80, 60, 150)]
        >>> over_limit("customer_records", counts, 200) is None
        True
        >>> over_limit("customer_records", counts, 100)[:60]
        "blocking rules on 'customer_records' generate 150 record com"
    """
    total = counts[-1].cumulative if counts else 0
    known = [row for row in counts if row.alone is not None]
    if known:
        worst = max(known, key=lambda row: row.alone or 0)
        if worst.alone is not None and worst.alone > max_comparisons:
            return limit_message(
                records_table,
                max(total, worst.alone),
                max_comparisons,
                worst.rule,
                worst.alone,
                lower_bound=True,
            )
    if total > max_comparisons:
        worst = max(counts, key=lambda row: row.marginal)
        return limit_message(records_table, total, max_comparisons, worst.rule, worst.marginal)
    return None


def check_comparison_limit(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    rules: Sequence[RuleLike],
    max_comparisons: float,
) -> int:
    """Count the pairs scoring would form, and fail when there are more than the limit.

    Cheap: one ``GROUP BY`` per rule, which already fails when one rule alone is over
    the limit, then Splink's streamed count of blocked pairs (only ids, no comparisons,
    no scores); it never calls predict. With no rules at all, Splink would score every
    pair of records, and that is what is counted.

    Args:
        con: Warehouse connection.
        records_table: Records keyed by ``unique_id``.
        rules: The prediction blocking rules, in order.
        max_comparisons: The most pairs allowed (``model.max_comparisons``).

    Returns:
        The number of pairs the rules generate together.

    Raises:
        ComparisonLimitError: More pairs than ``max_comparisons``; the message names the
            total, the limit, the config key and the rule contributing most.

    Examples:
        ```py
        check_comparison_limit(con, "customer_records", [("email",)], max_comparisons=2e8)
        # 24008
        check_comparison_limit(con, "customer_records", [("country",)], max_comparisons=2e7)
        # ComparisonLimitError: blocking rules on 'customer_records' generate at least
        # 80,120,668 record comparisons, more than the limit of 20,000,000 ...
        ```
    """
    if not rules:
        records = row_count(con, records_table)
        total = records * (records - 1) // 2
        every_pair = [RuleComparisons("(no rule: every pair)", total, total, total)]
        message = over_limit(records_table, every_pair, max_comparisons)
        if message:
            raise ComparisonLimitError(message)
        return total
    names = [describe_rule(rule) for rule in rules]
    alone = comparisons_alone(con, records_table, rules)
    message = over_limit(
        records_table,
        [RuleComparisons(name, count, 0, 0) for name, count in zip(names, alone, strict=True)],
        max_comparisons,
    )
    if message:
        raise ComparisonLimitError(message)
    counted = cumulative_comparisons(con, records_table, rules)
    counts = [
        RuleComparisons(name, count, marginal, cumulative)
        for name, count, (marginal, cumulative) in zip(names, alone, counted, strict=True)
    ]
    message = over_limit(records_table, counts, max_comparisons)
    if message:
        raise ComparisonLimitError(message)
    total = counts[-1].cumulative
    logger.info(
        "blocking rules on '%s' generate %d comparisons (limit %s = %.0f)",
        records_table,
        total,
        LIMIT_CONFIG_KEY,
        max_comparisons,
    )
    return total
