"""Home addresses of the demo persons: street, house number, postcode and city."""

from __future__ import annotations

import numpy as np

from linkage.demo.country_tables import COUNTRIES, CountrySpec
from linkage.demo.knobs import ZIPF_CITIES, ZIPF_STREETS
from linkage.demo.pools import NamePools
from linkage.demo.sampling import zipf_choice

__all__ = ["person_addresses"]


def _format_postcode(spec: CountrySpec, number: int) -> str:
    """A numeric postcode written the country's way (``123 45``, ``0150``, ``01-234``)."""
    head, tail = divmod(number, spec.postcode_split)
    return spec.postcode_format.format(number=number, head=head, tail=tail)


def _house_numbers(rng: np.random.Generator, code: str, size: int) -> list[str]:
    base = np.minimum(rng.geometric(1 / 25, size), 250).tolist()
    extra = rng.random(size).tolist()
    letters = rng.integers(0, 3, size).tolist()
    flats = rng.integers(1, 120, size).tolist()
    out = []
    for number, u, letter, flat in zip(base, extra, letters, flats, strict=True):
        if code == "PL" and u < 0.35:
            out.append(f"{number}/{flat}")
        elif u < 0.06:
            suffix = "abc"[letter]
            out.append(f"{number}{suffix}" if code == "DE" else f"{number}{suffix.upper()}")
        else:
            out.append(str(number))
    return out


def _uk_postcodes(rng: np.random.Generator, spec: CountrySpec, city_idx: np.ndarray) -> list[str]:
    """UK postcodes: one of the city's outward codes and a random inward code."""
    size = len(city_idx)
    letters = spec.postcode_inward_letters
    picks = rng.random(size).tolist()
    digits = rng.integers(0, 10, size).tolist()
    inward = rng.integers(0, len(letters), (size, 2)).tolist()
    return [
        f"{spec.cities[c].outward[int(u * len(spec.cities[c].outward))]} "
        f"{d}{letters[a]}{letters[b]}"
        for c, u, d, (a, b) in zip(city_idx.tolist(), picks, digits, inward, strict=True)
    ]


def person_addresses(
    rng: np.random.Generator, country: np.ndarray, pools: dict[str, NamePools]
) -> dict[str, np.ndarray]:
    """Street, house number, postcode and city for every person."""
    n = len(country)
    out = {key: np.empty(n, dtype=object) for key in ("street", "house_number", "postcode", "city")}
    for code, spec in COUNTRIES.items():
        idx = np.flatnonzero(country == code)
        streets = pools[code].streets
        out["street"][idx] = streets[zipf_choice(rng, len(streets), len(idx), ZIPF_STREETS)]
        out["house_number"][idx] = _house_numbers(rng, code, len(idx))
        city_idx = zipf_choice(rng, len(spec.cities), len(idx), ZIPF_CITIES)
        out["city"][idx] = [spec.cities[i].name for i in city_idx]
        if code == "GB":
            out["postcode"][idx] = _uk_postcodes(rng, spec, city_idx)
        else:
            low = np.array([c.low for c in spec.cities])[city_idx]
            high = np.array([c.high for c in spec.cities])[city_idx]
            numbers = low + (rng.random(len(idx)) * (high - low + 1)).astype(np.int64)
            out["postcode"][idx] = [_format_postcode(spec, int(v)) for v in numbers]
    return out
