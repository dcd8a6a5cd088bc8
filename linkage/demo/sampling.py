"""Seeded random streams and the small array helpers the demo generator draws with.

Randomness comes from ``numpy.random.default_rng`` seeded from the ``seed`` argument,
one independent stream per stage, so that stages never shift each other.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd

from linkage.demo.source_plans import SOURCE_PLANS

__all__ = [
    "STAGES",
    "apply",
    "dedupe",
    "mask",
    "object_array",
    "pick",
    "py_random",
    "stage_rngs",
    "unique_ints",
    "zipf_choice",
]

STAGES = (
    "pools",
    "persons",
    "allocation",
    *SOURCE_PLANS,
    "identifiers",
    "person_errors",
    *(f"{name}_errors" for name in SOURCE_PLANS),
)
"""Stages in spawn order; new stages go last so that earlier ones keep their streams.

The ``*_errors`` stages draw the errors a profile adds (see
:data:`linkage.demo.knobs.PROFILES`), so that no profile shifts the base records."""


def stage_rngs(seed: int) -> dict[str, np.random.Generator]:
    """One independent generator per stage, so stages never shift each other."""
    children = np.random.SeedSequence(seed).spawn(len(STAGES))
    return {
        stage: np.random.default_rng(child) for stage, child in zip(STAGES, children, strict=True)
    }


def py_random(rng: np.random.Generator) -> random.Random:
    """A seeded ``random.Random`` for per-item choices inside small subsets."""
    return random.Random(int(rng.integers(2**62)))


def zipf_choice(rng: np.random.Generator, pool_size: int, size: int, exponent: float) -> np.ndarray:
    """Indices into a pool ranked by popularity, drawn with Zipf-like weights."""
    weights = 1.0 / np.arange(1, pool_size + 1) ** exponent
    return rng.choice(pool_size, size=size, p=weights / weights.sum())


def mask(rng: np.random.Generator, size: int, p: float) -> np.ndarray:
    """``size`` independent draws that each hold with probability ``p``."""
    return rng.random(size) < p


def apply(values: np.ndarray, where: np.ndarray, fn: Callable[[str], str]) -> np.ndarray:
    """Return a copy of ``values`` with ``fn`` applied where ``where`` holds and not null."""
    out = values.copy()
    for i in np.flatnonzero(where):
        if out[i] is not None:
            out[i] = fn(out[i])
    return out


def pick(values: np.ndarray, condition: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Element-wise ``other`` where ``condition`` holds, else ``values`` (object arrays)."""
    out = values.copy()
    out[condition] = other[condition]
    return out


_MAX_DEDUPE_ROUNDS = 50


def dedupe(
    values: np.ndarray, redraw: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """Replace later duplicates by ``redraw(indices, current)`` until all values are unique.

    Raises:
        RuntimeError: If duplicates remain after ``_MAX_DEDUPE_ROUNDS`` rounds, which
            means ``redraw`` cannot produce enough distinct values.
    """
    values = values.copy()
    for _ in range(_MAX_DEDUPE_ROUNDS):
        duplicated = pd.Series(values).duplicated().to_numpy()
        if not duplicated.any():
            return values
        idx = np.flatnonzero(duplicated)
        values[idx] = redraw(idx, values[idx])
    raise RuntimeError(
        f"{int(duplicated.sum())} values still duplicated after {_MAX_DEDUPE_ROUNDS} rounds, "
        f"e.g. {values[duplicated][0]!r}"
    )


def unique_ints(rng: np.random.Generator, size: int, high: int) -> np.ndarray:
    """``size`` distinct integers in ``[0, high)``."""
    values = rng.integers(0, high, size, dtype=np.int64)
    return dedupe(values, lambda idx, _: rng.integers(0, high, len(idx), dtype=np.int64))


def object_array(values: Iterable[object]) -> np.ndarray:
    """A one-dimensional object array of ``values`` (never a 2-D array of tuples)."""
    items = list(values)
    out = np.empty(len(items), dtype=object)
    out[:] = items
    return out
