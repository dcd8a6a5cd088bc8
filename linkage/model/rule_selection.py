"""Choose the prediction blocking rules from the data, without labels.

A fixed list of exact keys misses the true pairs that carry a typo in every key it
uses. Automatic blocking (``model.blocking: auto``, the default) starts from
:func:`linkage.model.blocking.candidate_rules`, measures what each candidate reaches and
costs on this data, and picks the set that reaches the most likely matches within a
budget of comparisons:

1. **Cost**: the pairs each candidate generates alone, counted from block sizes
   (:func:`~linkage.model.comparison_limit.comparisons_alone`). A candidate over the
   budget on its own is out.
2. **Probe**: a random sample of records (each kept with probability ``p``, seeded)
   is paired, by every remaining candidate, with all records. Every pair any candidate
   generates is in the probe with the same probability ``1 - (1 - p)^2``, so the probe
   is an unbiased sample of the union of all candidates, with for each pair the
   candidates that generate it.
3. **Likely matches**: the trained model scores the probe pairs (Splink's ``predict``
   over a registered pairs table); those at or above the match threshold are the
   likely matches. No labels are needed; the model was trained without any rule
   choice, on its own training rules.
4. **Greedy cover**: repeatedly add the candidate with the most newly reached likely
   matches per comparison it costs, while the summed cost stays within the budget and
   it yields at least :data:`MIN_YIELD` new likely matches per comparison.

The choice, each candidate's estimated reach and what the chosen set leaves out are
returned as a :class:`RuleChoice`; :mod:`linkage.model.blocking_analysis` stores them.

Examples:
    ```py
    choice = choose_prediction_rules(con, linker, "customer_records", candidates,
                                     budget=5_000_000, threshold=0.95, seed=42)
    choice.chosen          # [('email',), ('first_name_phonetic', 'last_name_phonetic'), ...]
    choice.reach_of_chosen  # 0.993
    ```
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
from splink import DuckDBAPI

from linkage.atomic import transaction
from linkage.model.blocking import describe
from linkage.model.comparison_limit import comparisons_alone, to_blocking_rule
from linkage.tables import BLOCKING_RULE_CANDIDATES
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)

PROBE_PAIRS = 400_000
"""About how many candidate pairs the probe scores; sets the record sampling rate."""
MIN_YIELD = 1e-4
"""A rule joins the chosen set only when it reaches, per comparison it costs, at least
this many likely matches the rules chosen before it miss: one per 10,000 pairs scored."""
_PROBE_IDS = "__meld_probe_ids"
_PROBE_PAIRS = "__meld_probe_pairs"
_PROBE_BLOCKED = "__meld_probe_blocked"
_PROBE_LIKELY = "__meld_probe_likely"

Rule = tuple[str, ...]


@dataclass(frozen=True)
class CandidateReach:
    """One candidate rule: what it costs and what it reaches on this data.

    Attributes:
        rule: The rule, e.g. ``("first_name_phonetic", "last_name_phonetic")``.
        comparisons: Pairs it generates alone (exact count).
        estimated_reach: Share of the likely matches it reaches alone (estimate).
        chosen_order: Position in the chosen set (1 first), None when not chosen.
        why: Why it was chosen or not.
    """

    rule: Rule
    comparisons: int
    estimated_reach: float | None
    chosen_order: int | None
    why: str


@dataclass
class RuleChoice:
    """The chosen prediction rules and the evidence behind the choice."""

    chosen: list[Rule]
    candidates: list[CandidateReach]
    budget: int
    sample_rate: float
    probe_pairs: int
    likely_matches_in_probe: int
    reach_of_chosen: float
    """Estimated share of the likely matches (of all candidates together) the chosen
    rules reach; 1 minus it is what the choice leaves out."""
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        """One line for logs and run metadata."""
        return (
            f"{len(self.chosen)} of {len(self.candidates)} candidate rules chosen, "
            f"estimated reach {self.reach_of_chosen:.3f} of likely matches, "
            f"{self.likely_matches_in_probe:,} likely matches among {self.probe_pairs:,} "
            f"probe pairs (records sampled at {self.sample_rate:.3g}), budget "
            f"{self.budget:,} comparisons"
        )


def choose_prediction_rules(
    con: duckdb.DuckDBPyConnection,
    db_api: DuckDBAPI,
    linker: Any,
    records_table: str,
    candidates: Sequence[Rule],
    *,
    budget: int,
    threshold: float,
    seed: int,
    fallback: Sequence[Rule] = (),
) -> RuleChoice:
    """Choose prediction rules among ``candidates`` with the trained ``linker``.

    Args:
        con: Warehouse connection holding ``records_table``.
        db_api: The Splink API of ``linker`` (on ``con``).
        linker: The trained Splink linker over ``records_table`` (its settings are not
            changed; a pairs table is registered for one prediction).
        records_table: The records to link (``customer_records``).
        candidates: Candidate rules whose columns hold data.
        budget: Most pairs the chosen rules may generate together (summed alone counts,
            an upper bound of their union).
        threshold: Match probability from which a probe pair is a likely match.
        seed: Seed of the record sample.
        fallback: Rules used when the probe finds no likely match (too few records).

    Returns:
        The choice, with every candidate's cost and estimated reach.
    """
    started = time.perf_counter()
    counts = comparisons_alone(con, records_table, list(candidates))
    affordable = [
        (rule, int(count or 0))
        for rule, count in zip(candidates, counts, strict=True)
        if count and count <= budget
    ]
    total = sum(count for _, count in affordable)
    rate = min(1.0, PROBE_PAIRS / (2 * total)) if total else 1.0
    try:
        _probe(con, records_table, [rule for rule, _ in affordable], rate, seed)
        probe_pairs = int(con.execute(f"SELECT count(*) FROM {_PROBE_PAIRS}").fetchall()[0][0])
        rows: list[tuple] = []
        if probe_pairs and affordable:
            _likely_matches(con, db_api, linker, threshold)
            rows = con.execute(
                f"SELECT c.* EXCLUDE (id_l, id_r) FROM {_PROBE_PAIRS} AS c "
                f"SEMI JOIN {_PROBE_LIKELY} AS m ON c.id_l = m.id_l AND c.id_r = m.id_r"
            ).fetchall()
    finally:
        for table in (_PROBE_PAIRS, _PROBE_IDS, _PROBE_BLOCKED, _PROBE_LIKELY):
            con.execute(f"DROP TABLE IF EXISTS {table}")
    inclusion = 1.0 - (1.0 - rate) ** 2
    choice = _greedy(affordable, rows, budget, inclusion)
    choice.sample_rate, choice.probe_pairs = rate, probe_pairs
    choice.candidates += [
        CandidateReach(rule, int(count or 0), None, None, _why_out(count, budget))
        for rule, count in zip(candidates, counts, strict=True)
        if not count or count > budget
    ]
    if not choice.chosen:
        choice.chosen = list(fallback)
        choice.notes.append("no likely match among the probe pairs: the fixed rules are used")
    choice.seconds = time.perf_counter() - started
    logger.info("automatic blocking: %s", choice.summary())
    return choice


def _why_out(count: int | None, budget: int) -> str:
    if not count:
        return "generates no pairs"
    return f"generates {count:,} pairs alone, over the budget of {budget:,}"


def _probe(
    con: duckdb.DuckDBPyConnection,
    records_table: str,
    rules: Sequence[Rule],
    rate: float,
    seed: int,
) -> None:
    """Create the probe-pair table: pairs of a sampled record and any record that some
    rule generates, with one boolean column per rule (in order)."""
    con.execute(
        f"CREATE OR REPLACE TABLE {_PROBE_IDS} AS SELECT unique_id "
        f"FROM {quote(records_table)} "
        "WHERE (hash(unique_id, $seed::BIGINT) % 1000000) < $cut",
        {"seed": seed, "cut": int(rate * 1_000_000)},
    )
    sqls = [to_blocking_rule(rule).blocking_rule_sql for rule in rules]
    sampled = f"(SELECT * FROM {quote(records_table)} SEMI JOIN {_PROBE_IDS} USING (unique_id))"
    generated = " UNION ".join(
        f"SELECT least(l.unique_id, r.unique_id) AS id_l, "
        f"greatest(l.unique_id, r.unique_id) AS id_r "
        f"FROM {sampled} AS l JOIN {quote(records_table)} AS r ON ({sql}) "
        "WHERE l.unique_id <> r.unique_id"
        for sql in sqls
    )
    flags = ", ".join(f"coalesce(({sql}), false) AS c{index}" for index, sql in enumerate(sqls))
    con.execute(
        f"CREATE OR REPLACE TABLE {_PROBE_PAIRS} AS "
        f"SELECT p.id_l, p.id_r{', ' + flags if flags else ''} FROM ({generated}) AS p "
        f"JOIN {quote(records_table)} AS l ON l.unique_id = p.id_l "
        f"JOIN {quote(records_table)} AS r ON r.unique_id = p.id_r"
        if sqls
        else f"CREATE OR REPLACE TABLE {_PROBE_PAIRS} (id_l VARCHAR, id_r VARCHAR)"
    )


def _likely_matches(
    con: duckdb.DuckDBPyConnection, db_api: DuckDBAPI, linker: Any, threshold: float
) -> None:
    """Score the probe pairs with the trained model; keep the likely matches in
    :data:`_PROBE_LIKELY`."""
    con.execute(
        f"CREATE OR REPLACE TABLE {_PROBE_BLOCKED} AS SELECT '0' AS match_key, "
        f"id_l AS join_key_l, id_r AS join_key_r FROM {_PROBE_PAIRS}"
    )
    pairs = db_api.register(_PROBE_BLOCKED)
    linker.table_management.register_blocked_pairs_for_predict(pairs)
    try:
        predictions = linker.inference.predict(threshold_match_probability=threshold)
        con.execute(
            f"CREATE OR REPLACE TABLE {_PROBE_LIKELY} AS "
            "SELECT least(unique_id_l, unique_id_r) AS id_l, "
            "greatest(unique_id_l, unique_id_r) AS id_r "
            f"FROM {quote(predictions.physical_name)}"
        )
        predictions.drop_table_from_database_and_remove_from_cache()
    finally:
        linker.table_management.invalidate_cache()


def _greedy(
    affordable: Sequence[tuple[Rule, int]],
    likely_rows: Sequence[tuple[bool, ...]],
    budget: int,
    inclusion: float,
) -> RuleChoice:
    """Greedy cover of the likely probe matches within the budget; each probe pair
    stands for ``1 / inclusion`` pairs of the data."""
    total = len(likely_rows)
    alone = [sum(1 for row in likely_rows if row[i]) for i in range(len(affordable))]
    uncovered = set(range(total))
    chosen: list[int] = []
    spent = 0
    while True:
        best, best_score, best_gain = None, 0.0, 0
        for index, (_, cost) in enumerate(affordable):
            if index in chosen or spent + cost > budget:
                continue
            gain = sum(1 for row in uncovered if likely_rows[row][index])
            score = gain / inclusion / max(cost, 1)
            if gain and score >= MIN_YIELD and score > best_score:
                best, best_score, best_gain = index, score, gain
        if best is None:
            break
        chosen.append(best)
        spent += affordable[best][1]
        uncovered = {row for row in uncovered if not likely_rows[row][best]}
        logger.debug("chose %s: +%d likely matches", describe([affordable[best][0]]), best_gain)
    candidates = []
    for index, (rule, cost) in enumerate(affordable):
        order = chosen.index(index) + 1 if index in chosen else None
        if order is not None:
            why = f"chosen {order}"
        elif alone[index] == 0:
            why = "reaches no likely match"
        elif spent + cost > budget:
            why = "would take the chosen rules over the budget"
        else:
            why = "the chosen rules already reach its likely matches"
        reach = alone[index] / total if total else None
        candidates.append(CandidateReach(rule, cost, reach, order, why))
    reached = total - len(uncovered)
    return RuleChoice(
        chosen=[affordable[i][0] for i in chosen],
        candidates=candidates,
        budget=budget,
        sample_rate=0.0,
        probe_pairs=0,
        likely_matches_in_probe=total,
        reach_of_chosen=reached / total if total else 0.0,
    )


CANDIDATE_COLUMNS: dict[str, str] = {
    "blocking_rule": "VARCHAR",
    "rule_keys": "VARCHAR",
    "comparisons_alone": "BIGINT",
    "estimated_reach": "DOUBLE",
    "chosen_order": "INTEGER",
    "why": "VARCHAR",
    "true_pair_reach": "DOUBLE",
}
"""Columns of ``blocking_rule_candidates``: one row per candidate of the last automatic
choice; ``rule_keys`` is the rule as a JSON list, ``true_pair_reach`` is filled by the
blocking analysis when a truth file or labels exist."""


def write_rule_choice(con: duckdb.DuckDBPyConnection, choice: RuleChoice) -> None:
    """Replace ``blocking_rule_candidates`` with the candidates of ``choice``, chosen
    rules first in their order."""
    definition = ", ".join(f"{quote(c)} {kind}" for c, kind in CANDIDATE_COLUMNS.items())
    ordered = sorted(
        choice.candidates,
        key=lambda c: (c.chosen_order is None, c.chosen_order or 0, -(c.estimated_reach or 0)),
    )
    rows = [
        (
            describe([c.rule])[0],
            json.dumps(list(c.rule)),
            c.comparisons,
            c.estimated_reach,
            c.chosen_order,
            c.why,
            None,
        )
        for c in ordered
    ]
    with transaction(con):  # never an empty or half-filled table in place of the last one
        con.execute(f"CREATE OR REPLACE TABLE {BLOCKING_RULE_CANDIDATES} ({definition})")
        if rows:
            con.executemany(
                f"INSERT INTO {BLOCKING_RULE_CANDIDATES} VALUES (?, ?, ?, ?, ?, ?, ?)", rows
            )


def chosen_rules(con: duckdb.DuckDBPyConnection) -> list[Rule] | None:
    """The rules of the last automatic choice in their order; None when there is none."""
    if not table_exists(con, BLOCKING_RULE_CANDIDATES):
        return None
    rows = con.execute(
        f"SELECT rule_keys FROM {BLOCKING_RULE_CANDIDATES} WHERE chosen_order IS NOT NULL "
        "ORDER BY chosen_order"
    ).fetchall()
    return [tuple(json.loads(row[0])) for row in rows] or None


def candidate_rule_keys(con: duckdb.DuckDBPyConnection) -> list[Rule]:
    """Every candidate of the last automatic choice, in table order."""
    if not table_exists(con, BLOCKING_RULE_CANDIDATES):
        return []
    rows = con.execute(f"SELECT rule_keys FROM {BLOCKING_RULE_CANDIDATES}").fetchall()
    return [tuple(json.loads(row[0])) for row in rows]


def clear_rule_choice(con: duckdb.DuckDBPyConnection) -> None:
    """Forget the last automatic choice: the rules are fixed or pinned now."""
    con.execute(f"DROP TABLE IF EXISTS {BLOCKING_RULE_CANDIDATES}")


def read_candidates(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """The rows of ``blocking_rule_candidates`` (chosen first), as plain dicts."""
    if not table_exists(con, BLOCKING_RULE_CANDIDATES):
        return []
    cursor = con.execute(f"SELECT * EXCLUDE (rule_keys) FROM {BLOCKING_RULE_CANDIDATES}")
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def choice_summary(choice: RuleChoice) -> dict[str, Any]:
    """The choice as plain data for MLflow and run metadata (no record values)."""
    return {
        "chosen": describe(choice.chosen),
        "budget": choice.budget,
        "sample_rate": choice.sample_rate,
        "probe_pairs": choice.probe_pairs,
        "likely_matches_in_probe": choice.likely_matches_in_probe,
        "estimated_reach_of_chosen": round(choice.reach_of_chosen, 4),
        "seconds": round(choice.seconds, 2),
        "notes": choice.notes,
        "candidates": [
            {
                "rule": describe([c.rule])[0],
                "comparisons_alone": c.comparisons,
                "estimated_reach": c.estimated_reach,
                "chosen_order": c.chosen_order,
                "why": c.why,
            }
            for c in choice.candidates
        ],
    }
