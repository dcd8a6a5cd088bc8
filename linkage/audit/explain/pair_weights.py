"""Each comparison's share of a pair's match weight, read from the pair's scored row.

The scored row (from ``pairwise_matches`` or scored now) holds each comparison's gamma,
partial weight and term-frequency adjustment; the Splink linker of the model names the
level, its m and u, and the columns it compares.

Examples:
    ```py
    with splink_session(records, stored.model) as (linker, api, mem):
        weights = comparison_weights(linker, stored.model, row, role=analyst)
    ```
"""

from __future__ import annotations

import logging
from typing import Any

from splink import Linker

from linkage.audit.explain.pair_explanation import ComparisonWeight
from linkage.privacy.role_policy import Role
from linkage.privacy.role_sql import masked_value

logger = logging.getLogger(__name__)


def comparison_weights(
    linker: Linker, model: dict[str, Any], row: dict[str, Any], *, role: Role
) -> tuple[ComparisonWeight, ...]:
    """Each comparison's level and weights in the pair's scored row; the compared values
    as ``role`` sees them (a column it does not see is left out)."""
    json_levels = {c["output_column_name"]: c["comparison_levels"] for c in model["comparisons"]}
    weights = []
    for comparison in linker._settings_obj.comparisons:
        gamma = int(row[comparison._gamma_column_name])
        level = comparison._get_comparison_level_by_comparison_vector_value(gamma)
        stored_level = json_levels[comparison.output_column_name][
            comparison.comparison_levels.index(level)
        ]
        has_tf = any(lv._has_tf_adjustments for lv in comparison.comparison_levels)
        tf_column = (
            level._tf_adjustment_input_column.unquote().name if level._has_tf_adjustments else None
        )
        columns = [c.unquote().name for c in comparison._input_columns_used_by_case_statement]
        weights.append(
            ComparisonWeight(
                comparison=comparison.output_column_name,
                gamma=gamma,
                level=level.label_for_charts,
                partial_weight=float(row[comparison._mw_column_name]),
                m_probability=None if level.is_null_level else level.m_probability,
                u_probability=None if level.is_null_level else level.u_probability,
                m_estimated=_estimated(level.is_null_level, stored_level, "m_probability"),
                u_estimated=_estimated(level.is_null_level, stored_level, "u_probability"),
                tf_column=tf_column,
                tf_adjustment=(float(row[comparison._mw_tf_adj_column_name]) if has_tf else None),
                term_frequency_l=row.get(f"tf_{tf_column}_l") if tf_column else None,
                term_frequency_r=row.get(f"tf_{tf_column}_r") if tf_column else None,
                values_l=_shown(role, columns, row, "_l"),
                values_r=_shown(role, columns, row, "_r"),
            )
        )
    return tuple(weights)


def _estimated(null_level: bool, stored_level: dict[str, Any], key: str) -> bool | None:
    """Whether the model holds the probability ``key`` of a level (None: null level)."""
    return None if null_level else stored_level.get(key) is not None


def _shown(role: Role, columns: list[str], row: dict[str, Any], side: str) -> dict[str, Any]:
    """One record's compared values, by column, as ``role`` sees them."""
    shown = {}
    for column in columns:
        visible, value = masked_value(role, column, row.get(column + side))
        if visible:
            shown[column] = value
    return shown
