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


def default_comparisons(available: Iterable[str]) -> list[ComparisonCreator]:
    """Comparisons for each canonical column in ``available``, in a fixed order.

    Args:
        available: Columns of ``customer_records`` that hold at least one value.

    Returns:
        Splink comparison creators; names carry term-frequency adjustments.
    """
    have = set(available)
    builders = {
        "first_name": lambda: cl.NameComparison("first_name"),
        "last_name": lambda: cl.NameComparison("last_name"),
        "date_of_birth": date_of_birth_comparison,
        "email": lambda: cl.EmailComparison("email"),
        "phone": lambda: cl.ExactMatch("phone").configure(term_frequency_adjustments=True),
        "street": lambda: cl.LevenshteinAtThresholds("street", 2),
        "postcode": lambda: cl.ExactMatch("postcode").configure(term_frequency_adjustments=True),
        "city": lambda: cl.ExactMatch("city").configure(term_frequency_adjustments=True),
    }
    return [build() for column, build in builders.items() if column in have]
