"""Pools of first names, family names and streets, built once per country with Faker.

Faker is only used, seeded, to build these pools; persons then draw from them with
Zipf-like weights, so common names are common.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from faker import Faker

from linkage.demo.country_tables import COUNTRIES, CountrySpec
from linkage.demo.sampling import object_array, zipf_choice

__all__ = ["NamePools", "build_pools"]


@dataclass(frozen=True)
class NamePools:
    """Values ranked by popularity (most common first) for one country."""

    first_male: np.ndarray
    first_female: np.ndarray
    last: np.ndarray
    streets: np.ndarray


def _ranked(draws: Iterable[str], head: Sequence[str] = ()) -> list[str]:
    """Distinct ``draws``, most frequent first, after the values in ``head``."""
    counts = Counter(draws)
    ranked = sorted(counts, key=lambda value: -counts[value])  # stable: ties keep first seen
    return list(dict.fromkeys([*head, *ranked]))


def _with_nickname_names(ranked: list[str], formal: Iterable[str]) -> np.ndarray:
    """Place names that have nicknames at popular ranks so nicknames actually occur."""
    formal = list(formal)
    rest = [name for name in ranked if name not in formal]
    for i, name in enumerate(formal):
        rest.insert(min(4 + 7 * i, len(rest)), name)
    return object_array(rest)


def _street_pool(spec: CountrySpec, fake: Faker, rng: np.random.Generator) -> list[str]:
    if spec.code == "GB":
        stems = [*spec.street_stems, *(fake.last_name() for _ in range(300))]
        suffixes = spec.street_suffixes
        draws = [
            f"{stems[int(s)]} {suffixes[int(x)]}"
            for s, x in zip(
                zipf_choice(rng, len(stems), 3000, 0.6),
                rng.integers(0, len(suffixes), 3000),
                strict=True,
            )
        ]
        return _ranked(draws, spec.common_streets)
    if spec.code == "PL":
        choices = [prefix for prefix, _ in spec.street_prefixes]
        weights = [weight for _, weight in spec.street_prefixes]
        prefixes = rng.choice(choices, size=2000, p=weights)
        return _ranked((f"{p}{fake.street_name()}" for p in prefixes), spec.common_streets)
    return _ranked((fake.street_name() for _ in range(2000)), spec.common_streets)


def build_pools(rng: np.random.Generator) -> dict[str, NamePools]:
    """Build name and street pools for every country with seeded Faker instances."""
    pools: dict[str, NamePools] = {}
    for spec in COUNTRIES.values():
        fake = Faker(spec.faker_locale)
        fake.seed_instance(int(rng.integers(2**31)))
        draw_last = fake.last_name_male if spec.code == "PL" else fake.last_name
        pools[spec.code] = NamePools(
            first_male=_with_nickname_names(
                _ranked(fake.first_name_male() for _ in range(2500)), spec.nicknames_male
            ),
            first_female=_with_nickname_names(
                _ranked(fake.first_name_female() for _ in range(2500)), spec.nicknames_female
            ),
            last=object_array(_ranked((draw_last() for _ in range(3000)), spec.common_last_names)),
            streets=object_array(_street_pool(spec, fake, rng)),
        )
    return pools
