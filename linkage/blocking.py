"""Default blocking rules: which record pairs the model scores, trains on, and trusts.

Rules that name a column with no data are left out, so the same defaults serve any
mix of sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from splink import block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator

PREDICTION_RULES: tuple[tuple[str, ...], ...] = (
    ("email",),
    ("phone",),
    ("first_name", "last_name"),
    ("last_name", "date_of_birth"),
    ("first_name", "date_of_birth"),
    ("postcode", "first_name"),
    ("street", "postcode"),
    ("date_of_birth", "postcode"),
    ("date_of_birth", "city"),
)
"""Pairs sharing any of these column sets are scored."""

DETERMINISTIC_RULES: tuple[tuple[str, ...], ...] = (
    ("email",),
    ("first_name", "last_name", "date_of_birth"),
)
"""Pairs sharing these are almost surely the same person: they estimate lambda."""

TRAINING_RULES: tuple[tuple[str, ...], ...] = (
    ("first_name", "last_name"),
    ("date_of_birth",),
    ("email",),
)
"""EM sessions: each estimates m for the comparisons its rule does not block on."""


def usable_rules(
    rules: Sequence[tuple[str, ...]], available: Iterable[str]
) -> list[tuple[str, ...]]:
    """Keep the rules whose columns all hold data."""
    have = set(available)
    return [rule for rule in rules if set(rule) <= have]


def to_splink(rules: Sequence[tuple[str, ...]]) -> list[BlockingRuleCreator]:
    """Splink ``block_on`` rules for column tuples."""
    return [block_on(*rule) for rule in rules]


def describe(rules: Sequence[tuple[str, ...]]) -> list[str]:
    """Readable rule names for logs and MLflow params, e.g. ``first_name & last_name``."""
    return [" & ".join(rule) for rule in rules]
