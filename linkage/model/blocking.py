"""Blocking rules: which record pairs the model scores, trains on, and trusts.

A rule is a tuple of names whose values two records must share: columns of
``customer_records`` or the derived keys of :data:`BLOCKING_KEYS` (a name's initial,
the year of birth, the last seven digits of a phone...), which :func:`to_splink` turns
into SQL. Rules that name a column with no data are left out, so the same defaults serve
any mix of sources. :data:`CANDIDATE_RULES` is what
:mod:`linkage.model.rule_selection` chooses prediction rules from.
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


BLOCKING_KEYS: dict[str, tuple[str, str]] = {
    "first_name_initial": ("substr(first_name, 1, 1)", "first_name"),
    "first_name_prefix": ("substr(first_name, 1, 3)", "first_name"),
    "last_name_prefix": ("substr(last_name, 1, 3)", "last_name"),
    "birth_year": ("year(date_of_birth)", "date_of_birth"),
    "birth_month_day": ("strftime(date_of_birth, '%m-%d')", "date_of_birth"),
    "postcode_prefix": ("substr(postcode, 1, 3)", "postcode"),
    "phone_suffix": ("right(phone_national, 7)", "phone_national"),
    "email_user": ("split_part(email, '@', 1)", "email"),
    "name_pair": (
        "least(first_name, last_name) || ' ' || greatest(first_name, last_name)",
        "last_name",
    ),
    "street_compact": ("replace(street, ' ', '')", "street"),
}
"""Derived keys a rule may name: key -> (SQL over one record, the column it needs).
Each survives an error the plain column does not: a typo after the initial, a wrong day
of birth, a changed area code, a mistyped e-mail domain, first and last name entered
the wrong way round (``name_pair`` is the same either way), a space lost in a street.
``name_pair`` also needs ``first_name``; :func:`rule_columns` lists both."""

CANDIDATE_RULES: tuple[tuple[str, ...], ...] = (
    ("email",),
    ("phone",),
    ("phone_suffix",),
    ("email_user",),
    ("first_name", "last_name"),
    ("first_name_phonetic", "last_name_phonetic"),
    ("last_name", "date_of_birth"),
    ("first_name", "date_of_birth"),
    ("last_name_phonetic", "date_of_birth"),
    ("first_name_phonetic", "date_of_birth"),
    ("first_name_initial", "last_name_phonetic", "birth_year"),
    ("first_name_prefix", "last_name_prefix", "birth_month_day"),
    ("last_name_phonetic", "birth_year", "birth_month_day"),
    ("first_name_initial", "date_of_birth"),
    ("last_name_prefix", "date_of_birth"),
    ("birth_year", "birth_month_day", "postcode_prefix"),
    ("date_of_birth", "postcode"),
    ("date_of_birth", "city"),
    ("postcode", "first_name"),
    ("postcode", "last_name_phonetic"),
    ("postcode_prefix", "first_name_phonetic", "last_name_prefix"),
    ("street", "postcode"),
    ("city", "first_name_phonetic", "last_name_phonetic"),
    ("first_name_prefix", "last_name_prefix"),
    ("name_pair",),
    ("street_compact", "city"),
    ("street_compact", "postcode_prefix"),
    ("last_name", "city"),
    ("first_name", "city"),
    ("postcode", "birth_year"),
    *((identifier,) for identifier in IDENTIFIER_FIELDS),
)
"""What automatic blocking chooses from: exact fields, phonetic codes, name prefixes and
initials with date parts, date-of-birth parts, postcode prefixes, the phone suffix and
the e-mail user; :func:`candidate_rules` adds each custom field alone and with the
surname's sound and the year of birth."""


def candidate_rules(custom_fields: Sequence[str] = ()) -> list[tuple[str, ...]]:
    """:data:`CANDIDATE_RULES` plus rules on each custom field.

    Examples:
        >>> candidate_rules(["birth_place"])[-2:]
        [('birth_place', 'last_name_phonetic'), ('birth_place', 'birth_year')]
    """
    rules = list(CANDIDATE_RULES)
    for name in custom_fields:
        rules += [(name,), (name, "last_name_phonetic"), (name, "birth_year")]
    return rules


def rule_columns(rule: Sequence[str]) -> set[str]:
    """The columns a rule needs: its columns, and those its derived keys are made of."""
    columns = {BLOCKING_KEYS[name][1] if name in BLOCKING_KEYS else name for name in rule}
    return columns | ({"first_name"} if "name_pair" in rule else set())


def rule_expressions(rule: Sequence[str]) -> list[str]:
    """The SQL expression of each name in a rule (a column is itself).

    Examples:
        >>> rule_expressions(("first_name_initial", "last_name"))
        ['substr(first_name, 1, 1)', 'last_name']
    """
    return [BLOCKING_KEYS[name][0] if name in BLOCKING_KEYS else name for name in rule]


def usable_rules(
    rules: Sequence[tuple[str, ...]], available: Iterable[str]
) -> list[tuple[str, ...]]:
    """Keep the rules whose columns all hold data."""
    have = set(available)
    return [rule for rule in rules if rule_columns(rule) <= have]


def to_splink(rules: Sequence[tuple[str, ...]]) -> list[BlockingRuleCreator]:
    """Splink ``block_on`` rules for rule tuples, derived keys as their SQL."""
    return [block_on(*rule_expressions(rule)) for rule in rules]


def describe(rules: Sequence[tuple[str, ...]]) -> list[str]:
    """Readable rule names for logs and MLflow params, e.g. ``first_name & last_name``."""
    return [" & ".join(rule) for rule in rules]
