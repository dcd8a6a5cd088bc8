"""Default Splink comparisons for the canonical customer fields.

Each comparison is built only when its column carries data, so a deployment whose
sources have no street, say, trains a model without a street comparison.
"""

from __future__ import annotations

from collections.abc import Iterable

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import ColumnExpression
from splink.internals.comparison_creator import ComparisonCreator

SWAPPED_DAY_MONTH_SQL = (
    "strftime(\"date_of_birth_l\", '%Y-%d-%m') = strftime(\"date_of_birth_r\", '%Y-%m-%d')"
)


def date_of_birth_comparison() -> ComparisonCreator:
    """Exact, day and month swapped, one typo, within a year, else.

    Swapped day and month is common when one system writes 03/05 and another 05/03.
    """
    return cl.CustomComparison(
        output_column_name="date_of_birth",
        comparison_description="Date of birth",
        comparison_levels=[
            cll.NullLevel("date_of_birth"),
            cll.ExactMatchLevel("date_of_birth").configure(
                label_for_charts="Exact match on date of birth"
            ),
            cll.CustomLevel(
                SWAPPED_DAY_MONTH_SQL,
                label_for_charts="Day and month swapped",
                base_dialect_str="duckdb",
            ),
            cll.LevenshteinLevel(
                ColumnExpression("date_of_birth").cast_to_string(), distance_threshold=1
            ).configure(label_for_charts="One character different"),
            cll.AbsoluteDateDifferenceLevel(
                "date_of_birth", threshold=1, metric="year", input_is_string=False
            ).configure(label_for_charts="Within one year"),
            cll.ElseLevel(),
        ],
    )


def name_comparison(column: str, other: str | None) -> ComparisonCreator:
    """Exact (term-frequency adjusted), Jaro-Winkler 0.92 and 0.88, the other name
    column, Jaro-Winkler 0.7, else.

    The level for the other column catches names entered the wrong way round
    ("Walch, Melinda" filed as first name Walch): on a swap, the first-name and the
    last-name comparisons each see their name in the other column, which is two real
    agreements, just as an unswapped match is.
    """
    levels: list = [
        cll.NullLevel(column),
        cll.ExactMatchLevel(column, term_frequency_adjustments=True),
        cll.JaroWinklerLevel(column, 0.92),
        cll.JaroWinklerLevel(column, 0.88),
    ]
    if other is not None:
        levels.append(
            cll.CustomLevel(
                f'jaro_winkler_similarity("{column}_l", "{other}_r") >= 0.92',
                label_for_charts=f"Matches the other record's {other}",
                base_dialect_str="duckdb",
            )
        )
    levels += [cll.JaroWinklerLevel(column, 0.7), cll.ElseLevel()]
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=column.replace("_", " ").capitalize(),
        comparison_levels=levels,
    )


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


def default_comparisons(available: Iterable[str]) -> list[ComparisonCreator]:
    """Comparisons for the canonical columns in ``available``, in a fixed order.

    Args:
        available: Columns of ``customer_records`` that hold at least one value.

    Returns:
        Splink comparison creators; names carry term-frequency adjustments.
    """
    have = set(available)
    builders = {
        "first_name": lambda: name_comparison(
            "first_name", "last_name" if "last_name" in have else None
        ),
        "last_name": lambda: name_comparison(
            "last_name", "first_name" if "first_name" in have else None
        ),
        "date_of_birth": date_of_birth_comparison,
        "email": email_comparison,
        "phone": lambda: cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
    }
    comparisons = [build() for column, build in builders.items() if column in have]
    if have & {"street", "postcode", "city"}:
        comparisons.append(address_comparison(have))
    return comparisons
