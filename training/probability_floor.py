"""Keep training from making accidental vetoes: a floor under every m and u.

EM drives the m probability of a level towards zero when its training pairs hold no
match at that level: on data where that error never happened, "date of birth one
character different" came out at m = 1.9e-19, a weight of -52.8, so one typo outweighed
every other agreement. The same happens to u for a level random pairs never reach.
After training, :func:`apply_probability_floor`:

- raises every trained m below ``floor`` to ``floor`` (m is not renormalised: the m
  of a comparison then sums to slightly more than 1, which scoring never uses), and
  every u below the resolution of u sampling (one pair in ``u_max_pairs``) to it;
- gives a level EM never observed a neutral weight (m = u), and reports it;
- reports each level whose weight is still beyond :data:`WEIGHT_BOUND` either way.

Levels whose m or u the config fixed are left exactly as configured. The floor is
``model.probability_floor`` (default 0.001, chosen with ``benchmarks/ablation.py``):
with it, a disagreement costs at most ``log2(floor / u)``, about -10 bits for a level
of u near 1. u keeps its sampled value: a small u is real evidence (two random people
rarely share a street and a postcode), and flooring it would weaken every agreement.

Examples:
    ```py
    report = apply_probability_floor(linker, 1e-3)
    report.unobserved  # ["date_of_birth / Two characters different"]
    ```
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from splink.internals import expectation_maximisation

logger = logging.getLogger(__name__)

WEIGHT_BOUND = 15.0
"""A level whose match weight lies beyond +/- this many bits is reported: at -15 one
disagreement outweighs an exact name, date of birth and e-mail together."""


@dataclass
class FloorReport:
    """What the floor changed and what still looks extreme, by ``comparison / level``."""

    floor: float
    raised: list[str] = field(default_factory=list)
    """Levels whose m or u was raised to the floor."""
    unobserved: list[str] = field(default_factory=list)
    """Levels training never observed; they were given a neutral weight."""
    extreme: dict[str, float] = field(default_factory=dict)
    """Levels whose final weight lies beyond :data:`WEIGHT_BOUND`, with the weight."""

    def as_dict(self) -> dict[str, Any]:
        """Plain data for MLflow and run metadata."""
        return {
            "floor": self.floor,
            "raised": self.raised,
            "unobserved": self.unobserved,
            "extreme_weights": self.extreme,
        }


def _trained(level: Any, kind: str) -> bool:
    return bool(getattr(level, f"_{kind}_is_trained"))


def _fixed(level: Any, kind: str) -> bool:
    return bool(getattr(level, f"_fix_{kind}_probability", False))


def apply_probability_floor(linker: Any, floor: float, u_floor: float) -> FloorReport:
    """Raise m below ``floor`` and u below ``u_floor``, neutralise levels EM never
    observed, report extreme weights.

    Args:
        linker: A trained Splink ``Linker``; its settings are changed in place, so
            the model saved afterwards carries the floored values.
        floor: The smallest m a level may have; 0 only reports.
        u_floor: The smallest u: the resolution of u sampling (one pair in the sample).
            A level random pairs never reach gets this u, the honest "rarer than one in
            the sample", rather than no estimate.

    Returns:
        What changed, level by level, and which weights are still extreme.
    """
    report = FloorReport(floor=floor)
    for comparison in linker._settings_obj.comparisons:
        levels = [lv for lv in comparison.comparison_levels if not lv.is_null_level]
        for level in levels:
            name = f"{comparison.output_column_name} / {level.label_for_charts}"
            if not _trained(level, "u") and not _fixed(level, "u"):
                level.u_probability = u_floor
            if not _trained(level, "m") and not _fixed(level, "m"):
                report.unobserved.append(name)
                level.m_probability = level.u_probability
                continue
            for kind, smallest in (("m", floor), ("u", u_floor)):
                value = getattr(level, f"{kind}_probability")
                if value is not None and value < smallest and not _fixed(level, kind):
                    setattr(level, f"{kind}_probability", smallest)
                    if name not in report.raised:
                        report.raised.append(name)
        for level in levels:
            m, u = level.m_probability, level.u_probability
            if m and u:
                weight = math.log2(m / u)
                if abs(weight) > WEIGHT_BOUND:
                    name = f"{comparison.output_column_name} / {level.label_for_charts}"
                    report.extreme[name] = round(weight, 2)
    if report.unobserved:
        logger.warning(
            "levels never observed in training, given a neutral weight: %s",
            "; ".join(report.unobserved),
        )
    if report.extreme:
        logger.warning(
            "levels with a weight beyond +/-%.0f: %s",
            WEIGHT_BOUND,
            "; ".join(f"{k} ({v:+.1f})" for k, v in report.extreme.items()),
        )
    return report


SMALLEST_FLOAT_PROBABILITY = 1e-300
"""Splink refuses an m or u below this; EM can underflow to exactly 0 on small data."""


@contextmanager
def em_probability_floor(floor: float) -> Iterator[None]:
    """Keep every m that EM estimates at or above ``floor`` while the block runs.

    Splink's EM writes each new m with ``populate_m_u_from_lookup``; this wraps it so a
    level whose m collapses between iterations (or underflows to exactly 0, which Splink
    then refuses) starts the next iteration from the floor instead of a veto. With
    ``floor`` 0 only exact zeros are lifted, to the smallest value Splink accepts.
    """
    original = expectation_maximisation.populate_m_u_from_lookup
    smallest = max(floor, SMALLEST_FLOAT_PROBABILITY)

    def floored(fixed: Any, level: Any, column: str, lookup: dict) -> None:
        entry = lookup.get(column, {}).get(level.comparison_vector_value)
        if entry is not None:
            value = entry.get("m_probability")
            if isinstance(value, float) and value < smallest:
                entry["m_probability"] = smallest
        original(fixed, level, column, lookup)

    expectation_maximisation.populate_m_u_from_lookup = floored
    try:
        yield
    finally:
        expectation_maximisation.populate_m_u_from_lookup = original
