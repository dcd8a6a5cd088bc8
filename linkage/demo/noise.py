"""Record-level noise on text: typos, lost diacritics, nicknames, case and whitespace.

Error rates come from :mod:`linkage.demo.knobs` and are multiplied by the source's
``noise`` factor.
"""

from __future__ import annotations

import random

import numpy as np
from unidecode import unidecode

from linkage.demo.country_tables import COUNTRIES
from linkage.demo.knobs import (
    P_DIACRITICS_LOST,
    P_EXTRA_WHITESPACE,
    P_LOWER,
    P_TRANSLITERATED,
    P_TYPO,
    P_UPPER,
)
from linkage.demo.sampling import apply, mask, py_random

__all__ = ["KEYBOARD_NEIGHBOURS", "TRANSLITERATION", "nicknames", "spelling_noise", "surface_noise"]

TRANSLITERATION = str.maketrans(
    {
        "ö": "oe",
        "ä": "ae",
        "ü": "ue",
        "å": "aa",
        "ø": "oe",
        "æ": "ae",
        "ß": "ss",
        "Ö": "Oe",
        "Ä": "Ae",
        "Ü": "Ue",
        "Å": "Aa",
        "Ø": "Oe",
        "Æ": "Ae",
    }
)

_KEYBOARD_ROWS = ("qwertyuiop", "asdfghjkl", "zxcvbnm")


def _keyboard_neighbours() -> dict[str, str]:
    neighbours: dict[str, str] = {}
    for r, row in enumerate(_KEYBOARD_ROWS):
        for c, ch in enumerate(row):
            near = [row[j] for j in (c - 1, c + 1) if 0 <= j < len(row)]
            near += [_KEYBOARD_ROWS[k][c] for k in (r - 1, r + 1) if 0 <= k < 3 and c < 7]
            neighbours[ch] = "".join(near)
    return neighbours


KEYBOARD_NEIGHBOURS = _keyboard_neighbours()


def _typo(value: str, rnd: random.Random) -> str:
    """One substitution (a neighbouring key), transposition or deletion."""
    if len(value) < 3:
        return value
    pos = rnd.randrange(1, len(value) - 1)
    kind = rnd.randrange(3)
    if kind == 0:
        near = KEYBOARD_NEIGHBOURS.get(value[pos].lower(), "aeinorst")
        sub = rnd.choice(near)
        return value[:pos] + (sub.upper() if value[pos].isupper() else sub) + value[pos + 1 :]
    if kind == 1:
        return value[:pos] + value[pos + 1] + value[pos] + value[pos + 2 :]
    return value[:pos] + value[pos + 1 :]


def _whitespace(value: str, rnd: random.Random) -> str:
    kind = rnd.randrange(3)
    if kind == 0:
        return f" {value}"
    if kind == 1 and " " in value:
        return value.replace(" ", "  ", 1)
    return f"{value}  "


def spelling_noise(values: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Lost or transliterated diacritics, then typos."""
    rnd = py_random(rng)
    lost = mask(rng, len(values), P_DIACRITICS_LOST * noise)
    values = apply(values, lost, unidecode)
    transliterated = mask(rng, len(values), P_TRANSLITERATED * noise) & ~lost
    values = apply(values, transliterated, lambda v: v.translate(TRANSLITERATION))
    return apply(values, mask(rng, len(values), P_TYPO * noise), lambda v: _typo(v, rnd))


def surface_noise(values: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Upper or lower case and stray whitespace."""
    rnd = py_random(rng)
    draw = rng.random(len(values))
    upper = draw < P_UPPER * noise
    lower = (draw >= P_UPPER * noise) & (draw < (P_UPPER + P_LOWER) * noise)
    values = apply(values, upper, str.upper)
    values = apply(values, lower, str.lower)
    spaced = mask(rng, len(values), P_EXTRA_WHITESPACE * noise)
    return apply(values, spaced, lambda v: _whitespace(v, rnd))


def nicknames(
    first: np.ndarray, country: np.ndarray, rng: np.random.Generator, p: float
) -> np.ndarray:
    """First names replaced, with probability ``p``, by one of their nicknames (if any)."""
    rnd = py_random(rng)
    out = first.copy()
    for i in np.flatnonzero(mask(rng, len(first), p)):
        spec = COUNTRIES[country[i]]
        options = spec.nicknames_male.get(out[i]) or spec.nicknames_female.get(out[i])
        if options:
            out[i] = rnd.choice(options)
    return out
