"""Assemble the Splink settings of a Meld linkage model."""

from __future__ import annotations

from collections.abc import Iterable

from splink import SettingsCreator

from linkage.blocking import PREDICTION_RULES, to_splink, usable_rules
from linkage.comparisons import default_comparisons


def build_settings(available: Iterable[str], *, em_max_iterations: int = 25) -> SettingsCreator:
    """Splink settings for deduplicating ``customer_records`` across all sources.

    Each identifier with data (national id, loyalty card, ...) gets an exact-match
    comparison and a prediction blocking rule of its own.

    Args:
        available: Matching columns that hold at least one value.
        em_max_iterations: Cap on EM iterations per training session.

    Returns:
        Settings for a ``dedupe_only`` model keyed on ``unique_id``.

    Raises:
        ValueError: No usable comparison or prediction rule: nothing to match on.
    """
    columns = list(available)
    comparisons = default_comparisons(columns)
    rules = usable_rules(PREDICTION_RULES, columns)
    if len(comparisons) < 2 or not rules:
        raise ValueError(
            "too little to match on: need at least two of first_name, last_name, "
            "date_of_birth, email, phone, address fields, identifiers (national_id, "
            f"loyalty_card, ...) with data; found {sorted(columns)}"
        )
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="unique_id",
        comparisons=comparisons,
        blocking_rules_to_generate_predictions=to_splink(rules),
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
        additional_columns_to_retain=["source_system"],
        max_iterations=em_max_iterations,
        em_convergence=0.0001,
    )
