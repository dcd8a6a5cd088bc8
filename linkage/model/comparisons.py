"""Splink comparisons: Meld's defaults for the canonical fields, and those a config asks for.

Each comparison is built only when its column carries data, so a deployment whose
sources have no street, say, trains a model without a street comparison. A project's
``model.comparisons`` may replace the default of a column by a function of
``splink.comparison_library`` (:func:`library_comparison`), or drop it; custom fields
get an exact match with term-frequency adjustment unless told otherwise
(:func:`model_comparisons`).

Examples:
    ```py
    comparisons = default_comparisons(["first_name", "last_name", "loyalty_card"])
    [c.get_comparison("duckdb").output_column_name for c in comparisons]
    # ['first_name', 'last_name', 'loyalty_card']
    ```
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import ColumnExpression
from splink.internals.comparison_creator import ComparisonCreator

from linkage.canonical import IDENTIFIER_FIELDS
from linkage.model.tolerant_comparisons import (
    date_of_birth_with,
    phone_comparison,
    tolerant_date_of_birth_comparison,
    tolerant_name_comparison,
)


def date_of_birth_comparison() -> ComparisonCreator:
    """Exact, day and month swapped, one typo, within a year, else.

    Swapped day and month is common when one system writes 03/05 and another 05/03.
    """
    as_text = ColumnExpression("date_of_birth").cast_to_string()
    return date_of_birth_with(
        [
            cll.LevenshteinLevel(as_text, distance_threshold=1).configure(
                label_for_charts="One character different"
            )
        ]
    )


def name_comparison(column: str, other: str | None) -> ComparisonCreator:
    """Exact (term-frequency adjusted), Jaro-Winkler 0.92 and 0.88, the other name
    column, Jaro-Winkler 0.7, else: the plain name comparison
    (``model.robust_comparisons: false``).

    The level for the other column catches names entered the wrong way round
    ("Walch, Melinda" filed as first name Walch): on a swap, the first-name and the
    last-name comparisons each see their name in the other column, which is two real
    agreements, just as an unswapped match is.
    """
    return tolerant_name_comparison(column, other, set(), initials=False)


def email_comparison() -> ComparisonCreator:
    """Exact (term-frequency adjusted for shared mailboxes), same user at a mistyped
    domain, else.

    No fuzzy level on the user part: ``sofia837@`` and ``sofia23@``, or ``wendy.smith@``
    and ``wendysmith@``, look alike only because the names do, and the name comparisons
    already count that. On the demo data such a level linked more different people than
    it found. A mistyped domain (``hday48@homas-carter.com``) says nothing about names.
    """
    user = "regexp_extract({side}, '^([^@]+)@', 1)"
    domain = "regexp_extract({side}, '@(.+)$', 1)"
    same_user_near_domain = (
        f"{user.format(side='email_l')} = {user.format(side='email_r')} AND "
        f"levenshtein({domain.format(side='email_l')}, {domain.format(side='email_r')}) <= 2"
    )
    return cl.CustomComparison(
        output_column_name="email",
        comparison_description="E-mail",
        comparison_levels=[
            cll.NullLevel("email"),
            cll.ExactMatchLevel("email", term_frequency_adjustments=True),
            cll.CustomLevel(
                same_user_near_domain,
                label_for_charts="Same user, domain within two edits",
                base_dialect_str="duckdb",
            ),
            cll.ElseLevel(),
        ],
    )


def address_comparison(have: set[str]) -> ComparisonCreator:
    """One comparison for street, postcode and city together.

    The three agree or disagree together (people at one address share all three), so
    scoring them separately would count one piece of evidence three times.
    """
    street, postcode, city = ("street" in have, "postcode" in have, "city" in have)
    parts = [
        name
        for name, present in (("street", street), ("postcode", postcode), ("city", city))
        if present
    ]
    null_side = " AND ".join(f'"{p}_{{side}}" IS NULL' for p in parts)
    levels: list = [
        cll.CustomLevel(
            f"({null_side.format(side='l')}) OR ({null_side.format(side='r')})",
            label_for_charts="Address missing",
        ).configure(is_null_level=True)
    ]
    if street and postcode:
        levels.append(
            cll.CustomLevel(
                '"street_l" = "street_r" AND "postcode_l" = "postcode_r"',
                label_for_charts="Same street and postcode",
            )
        )
    if street:
        levels.append(
            cll.CustomLevel(
                'levenshtein("street_l", "street_r") <= 2'
                + (' AND "postcode_l" IS NOT DISTINCT FROM "postcode_r"' if postcode else ""),
                label_for_charts="Street within two edits",
                base_dialect_str="duckdb",
            )
        )
    if postcode:
        levels.append(
            cll.ExactMatchLevel("postcode", term_frequency_adjustments=True).configure(
                label_for_charts="Same postcode"
            )
        )
    if city:
        levels.append(
            cll.ExactMatchLevel("city", term_frequency_adjustments=True).configure(
                label_for_charts="Same city"
            )
        )
        levels.append(
            cll.DamerauLevenshteinLevel("city", distance_threshold=2).configure(
                label_for_charts="City within two edits"
            )
        )
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(
        output_column_name="address", comparison_description="Address", comparison_levels=levels
    )


IDENTIFIER_LABELS: dict[str, str] = {
    "national_id": "national id",
    "loyalty_card": "loyalty card",
    "customer_number": "customer number",
    "device_id": "device id",
    "cookie_id": "cookie id",
}
"""How each identifier is named in charts and MLflow parameters."""


def identifier_comparison(column: str) -> ComparisonCreator:
    """Missing, the same identifier, a different one: exact-match evidence only.

    No fuzzy level: a card number one digit off is as likely someone else's card as a
    typo of this one. No term-frequency adjustment: a value many records share is a
    family card or a shared device, not a rare name, and the lookup would list people's
    identifiers. The weight of "Same" comes from m and u like any other level's, and
    since u is sampled from pairs that include the true matches, it comes out close to
    minus the prior's weight: an identifier alone gives about even odds, and it adds to
    the names and dates of birth rather than overruling them. A card on the wrong
    record (a partner's, a mistyped customer number that names someone else) loses
    against names and a date of birth that disagree, and the link veto of
    :mod:`linkage.cluster.clustering` holds whatever the identifiers say.

    Args:
        column: One of :data:`linkage.canonical.IDENTIFIER_FIELDS`.

    Examples:
        >>> comparison = identifier_comparison("loyalty_card").get_comparison("duckdb")
        >>> [level.label_for_charts for level in comparison.comparison_levels]
        ['Loyalty card missing', 'Same loyalty card', 'Different loyalty card']
    """
    label = IDENTIFIER_LABELS[column]
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=label.capitalize(),
        comparison_levels=[
            cll.NullLevel(column).configure(label_for_charts=f"{label.capitalize()} missing"),
            cll.ExactMatchLevel(column).configure(label_for_charts=f"Same {label}"),
            cll.ElseLevel().configure(label_for_charts=f"Different {label}"),
        ],
    )


def default_comparisons(available: Iterable[str]) -> list[ComparisonCreator]:
    """Comparisons for the canonical columns in ``available``, in a fixed order.

    Args:
        available: Columns of ``customer_records`` that hold at least one value.

    Returns:
        Splink comparison creators; names carry term-frequency adjustments. Each
        identifier in ``available`` (:data:`IDENTIFIER_FIELDS`) comes last, as an
        exact-match comparison.
    """
    return model_comparisons(available)


ADDRESS_PARTS: tuple[str, ...] = ("street", "postcode", "city")
"""Columns the default ``address`` comparison scores together."""

PRESET_COMPARISONS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "address",
    *IDENTIFIER_FIELDS,
)
"""Comparisons Meld builds by default, in their order in a model."""

LIBRARY_FUNCTIONS: tuple[str, ...] = (
    "ExactMatch",
    "LevenshteinAtThresholds",
    "DamerauLevenshteinAtThresholds",
    "JaccardAtThresholds",
    "JaroAtThresholds",
    "JaroWinklerAtThresholds",
    "AbsoluteDateDifferenceAtThresholds",
    "DateOfBirthComparison",
    "EmailComparison",
    "NameComparison",
    "PostcodeComparison",
)
"""Functions of ``splink.comparison_library`` a config may name: those that compare one
column with built-in SQL. Left out on purpose: ``CustomComparison`` (takes SQL), the
``DistanceFunction`` ones (take an SQL function name), those over arrays, two columns
or coordinates."""

COLUMN_ARGUMENTS: frozenset[str] = frozenset({"lat_col", "long_col", "dmeta_col_name"})
"""Arguments that would name further columns; a config comparison compares its own."""

ArgValue = str | int | float | bool | None


@dataclass(frozen=True)
class ComparisonSpec:
    """How a project builds one comparison: Meld's default, a library function, or none."""

    function: str | None = None
    """A name from :data:`LIBRARY_FUNCTIONS`; ``None`` keeps the default."""
    args: Mapping[str, Any] = field(default_factory=dict)
    """Keyword arguments of the function, besides the column."""
    term_frequency_adjustments: bool = False
    off: bool = False
    """Leave the comparison out of the model."""


def library_comparison(
    column: str,
    function: str,
    args: Mapping[str, Any] | None = None,
    *,
    term_frequency_adjustments: bool = False,
) -> ComparisonCreator:
    """A ``splink.comparison_library`` comparison of ``column``, checked by building it.

    Args:
        column: The compared column; also the comparison's name.
        function: A name from :data:`LIBRARY_FUNCTIONS`.
        args: Keyword arguments of the function (plain values or lists of them).
        term_frequency_adjustments: Adjust exact-match levels for value frequency.

    Returns:
        The comparison creator.

    Raises:
        ValueError: The function is not allowed, or the arguments do not fit it.

    Examples:
        >>> comparison = library_comparison("city", "JaroWinklerAtThresholds", {"score_threshold_or_thresholds": [0.9]})
        >>> [level.label_for_charts for level in comparison.get_comparison("duckdb").comparison_levels]
        ['city is NULL', 'Exact match on city', 'Jaro-Winkler distance of city >= 0.9', 'All other comparisons']
        >>> library_comparison("city", "os.system")
        Traceback (most recent call last):
        ...
        ValueError: unknown comparison function 'os.system'; expected one of ...
    """  # noqa: E501
    if function not in LIBRARY_FUNCTIONS:
        raise ValueError(
            f"unknown comparison function {function!r}; expected one of "
            f"{list(LIBRARY_FUNCTIONS)} (splink.comparison_library)"
        )
    creator_class = getattr(cl, function)
    parameters = list(inspect.signature(creator_class).parameters)
    given = dict(args or {})
    refused = sorted((set(given) & COLUMN_ARGUMENTS) | ({parameters[0]} & set(given)))
    if refused:
        raise ValueError(
            f"{function}: args {refused} name columns; a comparison compares the column "
            "it is named after"
        )
    for name, value in given.items():
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(v, ArgValue) for v in values):
            raise ValueError(
                f"{function}: arg {name!r} must be a number, text, true/false or a list of "
                f"them; found {value!r}"
            )
    try:
        inspect.signature(creator_class).bind(column, **given)
    except TypeError as exc:
        raise ValueError(
            f"{function}: args {sorted(given)} do not fit its parameters {parameters[1:]}: {exc}"
        ) from exc
    try:
        creator = creator_class(column, **given)
        if term_frequency_adjustments:
            creator = creator.configure(term_frequency_adjustments=True)
        creator.get_comparison("duckdb")
    except Exception as exc:  # Splink checks values with assorted error types
        raise ValueError(f"{function} with args {given}: {exc}") from exc
    return creator


def model_comparisons(
    available: Iterable[str],
    specs: Mapping[str, ComparisonSpec] | None = None,
    custom_fields: Sequence[str] = (),
    *,
    robust: bool = True,
) -> list[ComparisonCreator]:
    """The comparisons of a model: defaults, replaced or dropped as ``specs`` say.

    A column named in ``specs`` with a function or ``off`` is no longer part of a
    default comparison: naming ``city`` takes it out of ``address``. Order: the
    defaults' (:data:`PRESET_COMPARISONS`, an address part given its own comparison
    right after ``address``), then ``country`` and the custom fields. With no specs and
    no custom fields this is :func:`default_comparisons`.

    Args:
        available: Columns of ``customer_records`` that hold at least two values.
        specs: Comparison name (a column, or ``address``) to how to build it.
        custom_fields: Custom fields of the project, in order; each gets an exact match
            with term-frequency adjustment unless ``specs`` says otherwise.
        robust: Names, dates of birth and phones get the tolerant comparisons of
            :mod:`linkage.model.tolerant_comparisons` (phonetic, initials, transposed
            digits, national phone numbers); false gives the plain ones.

    Returns:
        Splink comparison creators for the columns with data.

    Raises:
        ValueError: A spec names a function that is not allowed or args that do not fit.

    Examples:
        >>> specs = {"phone": ComparisonSpec(off=True), "city": ComparisonSpec(function="ExactMatch")}
        >>> comparisons = model_comparisons(["first_name", "phone", "city", "birth_place"], specs, ["birth_place"])
        >>> [c.get_comparison("duckdb").output_column_name for c in comparisons]
        ['first_name', 'city', 'birth_place']
    """  # noqa: E501
    have = set(available)
    specs = dict(specs or {})

    def replaced(column: str) -> bool:
        spec = specs.get(column)
        return spec is not None and (spec.off or spec.function is not None)

    def configured(column: str) -> ComparisonCreator | None:
        spec = specs[column]
        if spec.off or spec.function is None:
            return None
        return library_comparison(
            column,
            spec.function,
            spec.args,
            term_frequency_adjustments=spec.term_frequency_adjustments,
        )

    def names(column: str, other: str) -> ComparisonCreator:
        other_column = other if other in have else None
        if robust:
            return tolerant_name_comparison(column, other_column, have)
        return name_comparison(column, other_column)

    defaults = {
        "first_name": lambda: names("first_name", "last_name"),
        "last_name": lambda: names("last_name", "first_name"),
        "date_of_birth": (
            tolerant_date_of_birth_comparison if robust else date_of_birth_comparison
        ),
        "email": email_comparison,
        "phone": lambda: (
            phone_comparison(have)
            if robust
            else cl.ExactMatch("phone").configure(term_frequency_adjustments=True)
        ),
        **{c: (lambda c=c: identifier_comparison(c)) for c in IDENTIFIER_FIELDS},
        **{
            c: (lambda c=c: cl.ExactMatch(c).configure(term_frequency_adjustments=True))
            for c in custom_fields
        },
    }
    comparisons: list[ComparisonCreator | None] = []
    for name in [*PRESET_COMPARISONS, "country", *custom_fields]:
        if name == "address":
            parts = {p for p in ADDRESS_PARTS if p in have and not replaced(p)}
            if parts and not replaced("address"):
                comparisons.append(address_comparison(parts))
            comparisons += [configured(p) for p in ADDRESS_PARTS if p in have and replaced(p)]
        elif name in have and replaced(name):
            comparisons.append(configured(name))
        elif name in have and name in defaults:
            comparisons.append(defaults[name]())
    return [c for c in comparisons if c is not None]
