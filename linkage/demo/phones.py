"""Mobile numbers of the demo persons and the ways people and systems write them."""

from __future__ import annotations

import numpy as np

from linkage.demo.country_tables import COUNTRIES, CountrySpec
from linkage.demo.sampling import dedupe

__all__ = ["PHONE_FORMATS", "format_phone", "unique_mobiles"]

PHONE_FORMATS = (
    "e164",
    "intl_spaced",
    "intl_00",
    "national",
    "national_compact",
    "trunk_paren",
    "dashed",
)


def _random_mobiles(rng: np.random.Generator, spec: CountrySpec, size: int) -> np.ndarray:
    """Random E.164 mobiles of one country, outside its excluded ranges."""
    excluded = tuple(f"+{spec.calling_code}{start}" for start in spec.excluded_mobile_ranges)
    numbers = np.empty(size, dtype=object)
    todo = np.arange(size)
    while len(todo):
        prefixes = rng.integers(0, len(spec.mobile_prefixes), len(todo)).tolist()
        rest = rng.random(len(todo)).tolist()
        numbers[todo] = [
            f"+{spec.calling_code}{prefix}"
            f"{int(u * 10 ** (length - len(prefix))):0{length - len(prefix)}d}"
            for (prefix, length), u in zip(
                (spec.mobile_prefixes[p] for p in prefixes), rest, strict=True
            )
        ]
        todo = todo[[numbers[i].startswith(excluded) for i in todo]] if excluded else todo[:0]
    return numbers


def unique_mobiles(rng: np.random.Generator, country: np.ndarray) -> np.ndarray:
    """Unique, valid mobile numbers in E.164, one per person."""

    def draw(indices: np.ndarray, _current: np.ndarray | None = None) -> np.ndarray:
        numbers = np.empty(len(indices), dtype=object)
        for code, spec in COUNTRIES.items():
            sub = np.flatnonzero(country[indices] == code)
            numbers[sub] = _random_mobiles(rng, spec, len(sub))
        return numbers

    return dedupe(draw(np.arange(len(country))), draw)


def _group(digits: str, sizes: tuple[int, ...], sep: str) -> str:
    if sum(sizes) != len(digits):
        return digits
    parts, start = [], 0
    for size in sizes:
        parts.append(digits[start : start + size])
        start += size
    return sep.join(parts)


def format_phone(e164: str, country: str, style: str) -> str:
    """Write an E.164 mobile number the way people and systems do.

    Args:
        e164: Number in E.164, e.g. ``"+46701234567"``.
        country: ISO code of the number's country.
        style: One of ``PHONE_FORMATS``.

    Returns:
        The formatted number.

    Examples:
        >>> format_phone("+46701234567", "SE", "national")
        '070-123 45 67'
        >>> format_phone("+46701234567", "SE", "intl_00")
        '0046 70 123 45 67'
        >>> format_phone("+4741234567", "NO", "trunk_paren")
        '(+47) 412 34567'
    """
    spec = COUNTRIES[country]
    nsn = e164[len(spec.calling_code) + 1 :]
    prefix, rest = nsn[: spec.phone_prefix_len], nsn[spec.phone_prefix_len :]
    grouped = _group(rest, spec.phone_groups, " ")
    cc, trunk = spec.calling_code, spec.trunk
    if style == "e164":
        return e164
    if style == "intl_spaced":
        return f"+{cc} {prefix} {grouped}"
    if style == "intl_00":
        return f"00{cc} {prefix} {grouped}"
    if style == "national":
        return f"{trunk}{prefix}{spec.national_separator}{grouped}"
    if style == "national_compact":
        return f"{trunk}{nsn}"
    if style == "trunk_paren":
        return f"({trunk}){prefix} {rest}" if trunk else f"(+{cc}) {prefix} {rest}"
    if style == "dashed":
        return f"+{cc}-{prefix}-{_group(rest, spec.phone_groups, '-')}"
    raise ValueError(f"unknown phone style {style!r}; expected one of {PHONE_FORMATS}")
