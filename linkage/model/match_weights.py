"""Match weights of a Fellegi-Sunter model: probabilities and m/u as log2 odds.

A match weight is the log2 of a Bayes factor. A probability ``p`` is ``log2(p / (1 - p))``
and a comparison level's partial weight is ``log2(m / u)``; a pair's match weight is
the prior's weight plus the partial weights of the levels it reached.

Examples:
    >>> match_weight(0.5)
    0.0
    >>> model = {"comparisons": [{"output_column_name": "email", "comparison_levels": [
    ...     {"label_for_charts": "Exact match", "m_probability": 0.8, "u_probability": 0.1}]}]}
    >>> level_weights(model)[0]["weight"]
    3.0
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)


def match_weight(probability: float | None) -> float | None:
    """The match weight ``log2(p / (1 - p))`` of a probability strictly between 0 and 1.

    Examples:
        >>> match_weight(0.5)
        0.0
        >>> round(match_weight(0.8), 3)
        2.0
        >>> match_weight(1.0) is None
        True
    """
    if probability is None or not 0.0 < probability < 1.0:
        return None
    return math.log2(probability / (1.0 - probability))


def _partial_weight(level: Mapping[str, Any]) -> float | None:
    """``log2(m / u)`` of one level; 0 for a null level, None when m or u is missing."""
    m, u = level.get("m_probability"), level.get("u_probability")
    if level.get("is_null_level"):
        return 0.0
    if m is None or not u:
        return None
    if m == 0:
        return float("-inf")
    return math.log2(m / u)


def _level_notes(level: Mapping[str, Any]) -> str:
    """What is special about a level: null, term-frequency adjusted, m or u fixed."""
    notes = []
    if level.get("is_null_level"):
        notes.append("null level")
    if level.get("tf_adjustment_column"):
        notes.append(f"term frequency adjusted on {level['tf_adjustment_column']}")
    if level.get("fix_m_probability"):
        notes.append("m fixed")
    if level.get("fix_u_probability"):
        notes.append("u fixed")
    return ", ".join(notes)


def level_weights(model: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Every comparison level of a Splink model with m, u and partial match weight.

    The weight is ``log2(m / u)``; 0 for null levels (they carry no evidence), ``-inf``
    when m is 0, and None when m or u was not estimated.

    Examples:
        >>> model = {"comparisons": [{"output_column_name": "email", "comparison_levels": [
        ...     {"label_for_charts": "email is NULL", "is_null_level": True},
        ...     {"label_for_charts": "Exact match", "m_probability": 0.8,
        ...      "u_probability": 0.1},
        ...     {"label_for_charts": "All other", "u_probability": 0.9}]}]}
        >>> [(row["level"], row["weight"]) for row in level_weights(model)]
        [('email is NULL', 0.0), ('Exact match', 3.0), ('All other', None)]
    """
    rows = []
    for comparison in model.get("comparisons") or []:
        name = comparison.get("output_column_name") or comparison.get("comparison_description", "?")
        for level in comparison.get("comparison_levels") or []:
            rows.append(
                {
                    "comparison": name,
                    "level": level.get("label_for_charts") or level.get("sql_condition", "?"),
                    "m": level.get("m_probability"),
                    "u": level.get("u_probability"),
                    "weight": _partial_weight(level),
                    "notes": _level_notes(level),
                }
            )
    return rows
