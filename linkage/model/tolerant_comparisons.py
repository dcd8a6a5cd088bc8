"""Comparisons that survive the errors real records carry.

Meld's default comparisons for names, dates of birth and phones, with levels for the
mistakes that turn up in every customer file: names that sound alike but are spelt
apart (Metaphone, computed once per name at staging), a first name given as an
initial, a date of birth with one digit mistyped or two transposed, a phone number
that fails the carrier tables, one written in national format and read in the wrong
country, or one whose area code changed. ``model.robust_comparisons: false`` goes back
to the plain comparisons of :mod:`linkage.model.comparisons` (for ablations).

Examples:
    ```py
    phone_comparison({"phone", "phone_national"}).get_comparison("duckdb")
    ```
"""

from __future__ import annotations

from collections.abc import Set

import splink.comparison_level_library as cll
import splink.comparison_library as cl
from splink import ColumnExpression
from splink.internals.comparison_creator import ComparisonCreator

MATCHING_AIDS: tuple[str, ...] = (
    "phone_national",
    "phone_valid",
    "first_name_phonetic",
    "last_name_phonetic",
)
"""Staged columns the tolerant comparisons use beside the compared field; a level that
needs one is built only when it holds data."""

SWAPPED_DAY_MONTH_SQL = (
    "strftime(\"date_of_birth_l\", '%Y-%d-%m') = strftime(\"date_of_birth_r\", '%Y-%m-%d')"
)
PHONE_SUFFIX_DIGITS = 7
"""Digits at the end of a national number that still match after an area code or
mobile prefix changed, or a national number was read in the wrong country."""


def tolerant_name_comparison(
    column: str, other: str | None, have: Set[str], *, initials: bool = True
) -> ComparisonCreator:
    """Exact (term-frequency adjusted), Jaro-Winkler 0.92 and 0.88, sounds alike, the
    other name column, an initial (first names), Jaro-Winkler 0.7, else.

    "Sounds alike" compares the Metaphone codes (``<column>_phonetic``, when ``have``
    holds it): Catherine and Kathryn, Smith and Smyth, Meyer and Maier. An initial ("J"
    or "J.") agrees with any first name that starts with it; the model learns how
    little that is worth. Without the phonetic column and ``initials`` this is the plain
    name comparison.
    """
    phonetic = f"{column}_phonetic"
    levels: list = [
        cll.NullLevel(column),
        cll.ExactMatchLevel(column, term_frequency_adjustments=True),
        cll.JaroWinklerLevel(column, 0.92),
        cll.JaroWinklerLevel(column, 0.88),
    ]
    if phonetic in have:
        levels.append(
            cll.CustomLevel(
                f'"{phonetic}_l" = "{phonetic}_r"', label_for_charts="Sounds alike (Metaphone)"
            )
        )
    if other is not None:
        levels.append(
            cll.CustomLevel(
                f'jaro_winkler_similarity("{column}_l", "{other}_r") >= 0.92',
                label_for_charts=f"Matches the other record's {other}",
                base_dialect_str="duckdb",
            )
        )
    if initials and column == "first_name":
        levels.append(
            cll.CustomLevel(
                '(length("first_name_l") = 1 OR length("first_name_r") = 1) '
                'AND left("first_name_l", 1) = left("first_name_r", 1)',
                label_for_charts="Initial agrees with the name",
                base_dialect_str="duckdb",
            )
        )
    levels += [cll.JaroWinklerLevel(column, 0.7), cll.ElseLevel()]
    return cl.CustomComparison(
        output_column_name=column,
        comparison_description=column.replace("_", " ").capitalize(),
        comparison_levels=levels,
    )


def date_of_birth_with(typo_levels: list) -> ComparisonCreator:
    """Exact, day and month swapped, then ``typo_levels``, within a year, else.

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
            *typo_levels,
            cll.AbsoluteDateDifferenceLevel(
                "date_of_birth", threshold=1, metric="year", input_is_string=False
            ).configure(label_for_charts="Within one year"),
            cll.ElseLevel(),
        ],
    )


def tolerant_date_of_birth_comparison() -> ComparisonCreator:
    """Exact, day and month swapped, one typo or two adjacent digits transposed, two
    characters different, within a year, else.

    "1985-03-12" against "1985-03-21" or "1958-03-12" is one transposition
    (Damerau-Levenshtein 1); a keyboard slip is one substitution.
    """
    as_text = ColumnExpression("date_of_birth").cast_to_string()
    return date_of_birth_with(
        [
            cll.DamerauLevenshteinLevel(as_text, distance_threshold=1).configure(
                label_for_charts="One typo or two digits transposed"
            ),
            cll.LevenshteinLevel(as_text, distance_threshold=2).configure(
                label_for_charts="Two characters different"
            ),
        ]
    )


def phone_comparison(have: Set[str]) -> ComparisonCreator:
    """Same valid number, same number that fails validation, same national number, same
    last seven digits, else; exact levels are term-frequency adjusted.

    Validation decides nothing here; it only splits "equal" in two so that the model
    learns what an equal but invalid number is worth (without ``phone_valid`` data,
    when every number is valid or none is, one exact level). Without ``phone_national``
    (a table staged before Meld kept it) only the exact levels are built.
    """
    levels: list = [cll.NullLevel("phone")]
    if "phone_valid" in have:
        levels += [
            cll.CustomLevel(
                '"phone_l" = "phone_r" AND coalesce(CAST("phone_valid_l" AS BOOLEAN), true)',
                label_for_charts="Same valid number",
            ).configure(tf_adjustment_column="phone", tf_adjustment_weight=1.0),
            cll.ExactMatchLevel("phone", term_frequency_adjustments=True).configure(
                label_for_charts="Same number, fails validation"
            ),
        ]
    else:
        levels.append(
            cll.ExactMatchLevel("phone", term_frequency_adjustments=True).configure(
                label_for_charts="Same number"
            )
        )
    if "phone_national" in have:
        levels += [
            cll.CustomLevel(
                '"phone_national_l" = "phone_national_r"',
                label_for_charts="Same national number",
            ),
            cll.CustomLevel(
                f'length("phone_national_l") >= {PHONE_SUFFIX_DIGITS} '
                f'AND right("phone_national_l", {PHONE_SUFFIX_DIGITS}) '
                f'= right("phone_national_r", {PHONE_SUFFIX_DIGITS})',
                label_for_charts=f"Same last {PHONE_SUFFIX_DIGITS} digits",
                base_dialect_str="duckdb",
            ),
        ]
    levels.append(cll.ElseLevel())
    return cl.CustomComparison(
        output_column_name="phone", comparison_description="Phone", comparison_levels=levels
    )
