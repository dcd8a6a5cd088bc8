"""Phone numbers that ``phonenumbers`` calls invalid, as real customer data is full of.

A share of persons give a number that ``phonenumbers.is_valid_number`` rejects: one
from a range that was never or is no longer allocated (old numbering plans, retired
prefixes), one with a digit too many or too few, or a made-up test number typed into a
form. The number is the person's in every record, like any number, so two records
with the same invalid number are still evidence that they are one person. Made-up
numbers (``+46 000 000 000``) are shared by every person who typed them; all other
invalid numbers are unique.
"""

from __future__ import annotations

import random
from functools import cache

import numpy as np
import phonenumbers

from linkage.demo.country_tables import COUNTRIES, CountrySpec
from linkage.demo.knobs import INVALID_PHONE_KINDS
from linkage.demo.sampling import dedupe, mask, object_array, py_random, zipf_choice

__all__ = ["MADE_UP_DIGITS", "made_up_numbers", "unallocated_leads", "with_invalid_numbers"]

MADE_UP_DIGITS = ("0", "0123456789", "1234567890", "1", "9", "5", "12", "123")
"""Digit patterns of made-up numbers, most common first; repeated to the number's length."""
_MAX_ROUNDS = 50
_ROUNDS_BEFORE_UNALLOCATED = 3
"""A digit more or less can stay valid (German 17x mobiles have 10 or 11 digits); after
this many tries such numbers are moved to an unallocated range instead."""


def _is_valid(e164: str) -> bool:
    return phonenumbers.is_valid_number(phonenumbers.parse(e164))


@cache
def made_up_numbers(code: str) -> tuple[str, ...]:
    """The made-up numbers of one country that ``phonenumbers`` rejects, most common first.

    Examples:
        >>> made_up_numbers("SE")[0]
        '+46000000000'
    """
    spec = COUNTRIES[code]
    length = spec.mobile_prefixes[0][1]
    candidates = (
        f"+{spec.calling_code}{(pattern * length)[:length]}" for pattern in MADE_UP_DIGITS
    )
    return tuple(number for number in candidates if not _is_valid(number))


_PROBE_TAILS = ("0", "1234567890", "5", "9876543210", "2468", "13579")
"""Digit patterns after a two-digit lead that :func:`unallocated_leads` tries."""


@cache
def unallocated_leads(code: str) -> tuple[str, ...]:
    """Two-digit starts of national numbers that no valid number of mobile length has.

    Examples:
        >>> "71" in unallocated_leads("SE")
        True
    """
    spec = COUNTRIES[code]
    tail_length = spec.mobile_prefixes[0][1] - 2
    tails = [(pattern * tail_length)[:tail_length] for pattern in _PROBE_TAILS]
    return tuple(
        str(lead)
        for lead in range(10, 100)
        if not any(_is_valid(f"+{spec.calling_code}{lead}{tail}") for tail in tails)
    )


def _candidate(number: str, spec: CountrySpec, kind: str, rnd: random.Random) -> str:
    """One invalid-looking variant of a valid E.164 ``number`` of the country ``spec``."""
    head = f"+{spec.calling_code}"
    nsn = number[len(head) :]
    if kind == "extra_digit":
        pos = rnd.randrange(spec.phone_prefix_len, len(nsn) + 1)
        return head + nsn[:pos] + rnd.choice("0123456789") + nsn[pos:]
    if kind == "missing_digit":
        pos = rnd.randrange(spec.phone_prefix_len, len(nsn))
        return head + nsn[:pos] + nsn[pos + 1 :]
    if kind == "unallocated":
        return head + rnd.choice(unallocated_leads(spec.code)) + nsn[2:]
    raise ValueError(f"unknown invalid phone kind {kind!r}; expected one of {INVALID_PHONE_KINDS}")


def _invalid_variants(
    numbers: np.ndarray, country: np.ndarray, kinds: np.ndarray, rnd: random.Random
) -> np.ndarray:
    """An invalid variant of each valid number, of the given kind where one exists.

    Raises:
        RuntimeError: If some numbers are still valid after ``_MAX_ROUNDS`` tries.
    """
    out = np.empty(len(numbers), dtype=object)
    todo = np.arange(len(numbers))
    kinds = kinds.copy()
    for round_ in range(_MAX_ROUNDS):
        if round_ == _ROUNDS_BEFORE_UNALLOCATED:
            kinds[todo] = "unallocated"
        out[todo] = [
            _candidate(numbers[i], COUNTRIES[country[i]], kinds[i], rnd) for i in todo.tolist()
        ]
        todo = todo[[_is_valid(out[i]) for i in todo.tolist()]]
        if not len(todo):
            return out
    raise RuntimeError(
        f"{len(todo)} numbers still valid after {_MAX_ROUNDS} tries, e.g. {out[todo[0]]!r}"
    )


def with_invalid_numbers(
    rng: np.random.Generator, country: np.ndarray, mobile: np.ndarray, p: float
) -> np.ndarray:
    """The persons' numbers, a share ``p`` of them replaced by numbers that are invalid.

    Args:
        rng: The random stream of this step.
        country: ISO code of each person's country.
        mobile: Each person's valid, unique mobile number in E.164.
        p: Share of persons whose number is invalid.

    Returns:
        The numbers in E.164 form (``+`` and digits); the invalid ones are unique
        except the made-up numbers, which several persons share.

    Examples:
        >>> rng = np.random.default_rng(1)
        >>> numbers = with_invalid_numbers(rng, np.array(["SE"]), np.array(["+46701234567"]), 1.0)
        >>> phonenumbers.is_valid_number(phonenumbers.parse(numbers[0]))
        False
    """
    out = mobile.copy()
    chosen = np.flatnonzero(mask(rng, len(mobile), p))
    if not len(chosen):
        return out
    names = list(INVALID_PHONE_KINDS)
    weights = np.array(list(INVALID_PHONE_KINDS.values()))
    kinds = np.array(names, dtype=object)[
        rng.choice(len(names), len(chosen), p=weights / weights.sum())
    ]
    rnd = py_random(rng)
    made_up = chosen[kinds == "made_up"]
    for code in COUNTRIES:
        persons = made_up[country[made_up] == code]
        pool = made_up_numbers(code)
        out[persons] = object_array(pool[i] for i in zipf_choice(rng, len(pool), len(persons), 1.0))
    varied, varied_kinds = chosen[kinds != "made_up"], kinds[kinds != "made_up"]

    def draw(indices: np.ndarray, _current: np.ndarray | None = None) -> np.ndarray:
        return _invalid_variants(
            mobile[varied[indices]], country[varied[indices]], varied_kinds[indices], rnd
        )

    out[varied] = dedupe(draw(np.arange(len(varied))), draw)
    return out
