"""What an explanation of two records holds: each comparison's weight and the decisions.

:class:`PairExplanation` is what :func:`linkage.audit.explain.pair.explain_pair`
returns; :class:`ComparisonWeight` is one comparison's share of its match weight.

Examples:
    ```py
    pair = explain_pair(con, "crm_contacts:C0000069", "webshop_accounts:WS-a34bdb2f4f")
    pair.total_weight == pytest.approx(pair.match_weight), pair.not_scored_reason
    json.dumps(pair.to_dict())
    ```
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from linkage.audit.explain.json_values import plain_value
from linkage.cluster.overrides.decisions import MUST_LINK

logger = logging.getLogger(__name__)


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
