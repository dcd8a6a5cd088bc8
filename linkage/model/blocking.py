"""Default blocking rules: which record pairs the model scores, trains on, and trusts.

Rules that name a column with no data are left out, so the same defaults serve any
mix of sources.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from splink import block_on
from splink.internals.blocking_rule_creator import BlockingRuleCreator

from linkage.canonical import IDENTIFIER_FIELDS

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
    *((identifier,) for identifier in IDENTIFIER_FIELDS),
)
"""Pairs sharing any of these column sets are scored. Each identifier is a rule of its
own, so records that share nothing but a loyalty card or a customer number are still
compared and the score decides. Identifiers come last so that the other rules keep
their numbers (``blocking_rule_N`` in MLflow) whether a deployment maps identifiers
or not."""

DETERMINISTIC_RULES: tuple[tuple[str, ...], ...] = (
    ("email",),
    ("first_name", "last_name", "date_of_birth"),
)
"""Pairs sharing these are almost surely the same person: they estimate lambda.

No identifier is among them. ``deterministic_recall`` is the recall of these rules
together, so adding a rule a deployment may or may not map (a loyalty card held by a
third of customers, a national id in one source) would move lambda with the mapping
rather than with the data; and a family's shared card or a mistyped customer number
would count pairs of two people as sure matches. Not even ``national_id``: it is
mapped rarely, it is a hash, so a typo makes it miss, and e-mail plus full name and
date of birth already anchor lambda wherever names are present."""

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
