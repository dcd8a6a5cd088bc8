"""The demo generator's per-country tables, read from ``linkage/demo/countries/*.json``.

Each file describes one country: its names, cities with postcode ranges (or UK outward
codes) and exonyms, common surnames and streets, e-mail domains, titles, nicknames,
street abbreviations, mobile number ranges and how its phone numbers and postcodes are
written. The files are package data, read once at import.

Two entries need a word of explanation: Faker calls Norwegian Bokmål ``no_NO`` (so
``NO.json`` has ``"faker_locale": "no_NO"``), and UK mobiles 07700 0xxxxx-09xxxx are
partly unallocated, so the UK's ``077`` prefixes start at ``0771``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, fields
from importlib.resources import files

__all__ = ["CITY_EXONYMS", "COUNTRIES", "COUNTRY_CODES", "City", "CountrySpec", "load_country"]


@dataclass(frozen=True)
class City:
    """A city with its postcodes: a numeric range, or UK outward codes."""

    name: str
    low: int = 0
    high: int = 0
    outward: tuple[str, ...] = ()
    exonyms: tuple[str, ...] = ()
    """Names foreigners use for the city (München -> Munich)."""


@dataclass(frozen=True)
class CountrySpec:
    """Everything country-specific the generator needs."""

    code: str
    locale: str
    faker_locale: str
    names: tuple[str, ...]
    calling_code: str
    trunk: str
    mobile_prefixes: tuple[tuple[str, int], ...]
    """(prefix of the national significant number, its total length)."""
    phone_prefix_len: int
    phone_groups: tuple[int, ...]
    """National grouping of the digits after the prefix; () keeps them together."""
    cities: tuple[City, ...]
    common_last_names: tuple[str, ...]
    common_streets: tuple[str, ...]
    email_domains: tuple[str, ...]
    titles_male: tuple[str, ...]
    titles_female: tuple[str, ...]
    nicknames_male: dict[str, tuple[str, ...]] = field(default_factory=dict)
    nicknames_female: dict[str, tuple[str, ...]] = field(default_factory=dict)
    street_abbreviations: tuple[tuple[str, str], ...] = ()
    excluded_mobile_ranges: tuple[str, ...] = ()
    """Starts of national numbers inside ``mobile_prefixes`` that belong elsewhere."""
    national_separator: str = " "
    """Between the prefix and the rest of a nationally written number (070-123 45 67)."""
    postcode_format: str = ""
    """``str.format`` template of a numeric postcode, with ``number`` and its ``head``
    and ``tail`` split at ``postcode_split``; empty for UK postcodes."""
    postcode_split: int = 1
    postcode_inward_letters: str = ""
    """Letters of UK inward codes (the ``4AA`` of ``SW1A 1AA``)."""
    street_stems: tuple[str, ...] = ()
    """UK street names are a stem and a suffix: ``Station`` + ``Road``."""
    street_suffixes: tuple[str, ...] = ()
    street_prefixes: tuple[tuple[str, float], ...] = ()
    """Polish street prefixes (``ul. ``, ``al. ``, ``pl. ``) with their weights."""


def _frozen(value: object) -> object:
    """JSON lists as tuples (nested too), dict values likewise."""
    if isinstance(value, list):
        return tuple(_frozen(item) for item in value)
    if isinstance(value, dict):
        return {key: _frozen(item) for key, item in value.items()}
    return value


def load_country(code: str) -> CountrySpec:
    """Read one country's table from the package data.

    Args:
        code: ISO code of the country, the name of its file (``SE`` -> ``SE.json``).

    Returns:
        The country's specification.

    Raises:
        FileNotFoundError: If the package has no table for ``code``.
        TypeError: If the file has a key ``CountrySpec`` does not know.

    Examples:
        >>> load_country("SE").calling_code
        '46'
    """
    path = files("linkage.demo") / "countries" / f"{code}.json"
    raw = json.loads(path.read_text(encoding="utf-8"))
    known = {spec_field.name for spec_field in fields(CountrySpec)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise TypeError(f"{path}: unknown keys {unknown}; expected some of {sorted(known)}")
    values = {key: _frozen(value) for key, value in raw.items() if key != "cities"}
    cities = tuple(City(**_frozen(city)) for city in raw["cities"])
    return CountrySpec(cities=cities, **values)


COUNTRY_CODES: tuple[str, ...] = ("SE", "NO", "DE", "PL", "GB")
"""Countries in generation order: random draws are made country by country in this order."""

COUNTRIES: dict[str, CountrySpec] = {code: load_country(code) for code in COUNTRY_CODES}

CITY_EXONYMS: dict[str, tuple[str, ...]] = {
    city.name: city.exonyms for spec in COUNTRIES.values() for city in spec.cities if city.exonyms
}
