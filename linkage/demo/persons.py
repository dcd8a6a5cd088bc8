"""The true persons behind the demo records: names, households, birth dates and contacts.

The generator invents persons in five countries. A quarter live in two-person
households (same family name, same address, similar age); some have moved or changed
e-mail address, so older values linger in some systems.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from linkage.demo.addresses import person_addresses
from linkage.demo.country_tables import COUNTRIES
from linkage.demo.emails import person_emails, unique_emails
from linkage.demo.invalid_phones import with_invalid_numbers
from linkage.demo.knobs import (
    COUNTRY_WEIGHTS,
    DEFAULT_PROFILE,
    MAX_AGE,
    MIN_AGE,
    P_EMAIL_CHANGED,
    P_FAMILY_EMAIL,
    P_HOUSEHOLD,
    P_MOVED,
    P_PARTNER_OPPOSITE_GENDER,
    REFERENCE_DATE,
    ZIPF_FIRST_NAMES,
    ZIPF_LAST_NAMES,
    profile_named,
)
from linkage.demo.phones import unique_mobiles
from linkage.demo.pools import NamePools, build_pools
from linkage.demo.sampling import mask, stage_rngs, zipf_choice

__all__ = ["build_persons"]


def _pair_households(
    rng: np.random.Generator, country: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Choose (head, partner) index pairs living together, within one country."""
    heads, partners = [], []
    for code in COUNTRIES:
        idx = np.flatnonzero(country == code)
        pairs = int(round(len(idx) * P_HOUSEHOLD / 2))
        chosen = rng.choice(idx, size=2 * pairs, replace=False)
        heads.append(chosen[:pairs])
        partners.append(chosen[pairs:])
    return np.concatenate(heads), np.concatenate(partners)


def _first_names(
    rng: np.random.Generator,
    country: np.ndarray,
    gender: np.ndarray,
    pools: dict[str, NamePools],
    heads: np.ndarray,
    partners: np.ndarray,
) -> np.ndarray:
    """Zipf-drawn first names; partners never share the head's first name."""
    names = np.empty(len(country), dtype=object)
    for code, pool in pools.items():
        for sex, values in (("M", pool.first_male), ("F", pool.first_female)):
            idx = np.flatnonzero((country == code) & (gender == sex))
            chosen = zipf_choice(rng, len(values), len(idx), ZIPF_FIRST_NAMES)
            names[idx] = values[chosen]
    for head, partner in zip(heads.tolist(), partners.tolist(), strict=True):
        if names[head] == names[partner]:
            pool = pools[country[partner]]
            values = pool.first_male if gender[partner] == "M" else pool.first_female
            position = int(np.flatnonzero(values == names[partner])[0])
            names[partner] = values[(position + 1) % len(values)]
    return names


def _feminine_pl(surname: str) -> str:
    """Polish adjectival surnames change ending with gender: Kowalski -> Kowalska."""
    if surname.endswith(("ki", "ny")):
        return surname[:-1] + "a"
    return surname


def _last_names(
    rng: np.random.Generator,
    country: np.ndarray,
    gender: np.ndarray,
    pools: dict[str, NamePools],
    heads: np.ndarray,
    partners: np.ndarray,
) -> np.ndarray:
    """Zipf-drawn family names shared within households, gendered in Poland."""
    family = np.empty(len(country), dtype=object)
    for code, pool in pools.items():
        idx = np.flatnonzero(country == code)
        family[idx] = pool.last[zipf_choice(rng, len(pool.last), len(idx), ZIPF_LAST_NAMES)]
    family[partners] = family[heads]
    feminine = np.flatnonzero((country == "PL") & (gender == "F"))
    family[feminine] = [_feminine_pl(name) for name in family[feminine]]
    return family


def _dates_of_birth(
    rng: np.random.Generator, size: int, heads: np.ndarray, partners: np.ndarray
) -> np.ndarray:
    """Ages 18-90 weighted towards working age; partners are of similar age."""
    youngest = REFERENCE_DATE - np.timedelta64(int(MIN_AGE * 365.25) + 1, "D")
    oldest = REFERENCE_DATE - np.timedelta64(int(MAX_AGE * 365.25) - 1, "D")
    span = (youngest - oldest).astype(np.int64)
    dob = oldest + (span * rng.beta(2.6, 2.0, size)).astype(np.int64).astype("timedelta64[D]")
    offset = rng.normal(0, 4 * 365, len(partners)).astype(np.int64).astype("timedelta64[D]")
    dob[partners] = np.maximum(np.minimum(dob[heads] + offset, youngest), oldest)
    return dob


def _countries_and_households(
    rng: np.random.Generator, persons: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Country and gender per person, and the (head, partner) pairs living together."""
    codes = list(COUNTRY_WEIGHTS)
    weights = np.array(list(COUNTRY_WEIGHTS.values()))
    country = np.array(codes, dtype=object)[rng.choice(len(codes), persons, p=weights)]
    gender = np.where(rng.random(persons) < 0.5, "F", "M").astype(object)
    heads, partners = _pair_households(rng, country)
    same = rng.random(len(partners)) >= P_PARTNER_OPPOSITE_GENDER
    gender[partners] = np.where(same, gender[heads], np.where(gender[heads] == "F", "M", "F"))
    return country, gender, heads, partners


def _homes(
    rng: np.random.Generator,
    country: np.ndarray,
    pools: dict[str, NamePools],
    heads: np.ndarray,
    partners: np.ndarray,
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], np.ndarray]:
    """Current and old address fields (old ones null unless moved) and the ``moved`` flag."""
    address = person_addresses(rng, country, pools)
    old = person_addresses(rng, country, pools)
    moved = mask(rng, len(country), P_MOVED)
    moved[partners] = moved[heads]
    for key in address:  # partners live, and lived, with the head
        address[key][partners] = address[key][heads]
        old[key][partners] = old[key][heads]
        old[key][~moved] = None
    return address, old, moved


def _email_pairs(
    rng: np.random.Generator,
    country: np.ndarray,
    first: np.ndarray,
    last: np.ndarray,
    dob: np.ndarray,
    heads: np.ndarray,
    partners: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Each person's e-mail and a second address; some households share one e-mail."""
    persons = len(country)
    both = unique_emails(
        rng,
        np.concatenate(
            [
                person_emails(rng, country, first, last, dob),
                person_emails(rng, country, first, last, dob),
            ]
        ),
    )
    email, alt_email = both[:persons], both[persons:]
    shared = mask(rng, len(heads), P_FAMILY_EMAIL)
    email[partners[shared]] = email[heads[shared]]
    return email, alt_email


def build_persons(persons: int, seed: int, profile: str = DEFAULT_PROFILE) -> pd.DataFrame:
    """The true persons behind the generated records.

    ``generate`` calls this with the same arguments, so tests can compare the
    records with the persons they were derived from.

    Args:
        persons: Number of persons, at least 1.
        seed: Seed; the same seed gives the same persons.
        profile: Name of a profile in :data:`linkage.demo.knobs.PROFILES`; it decides
            how many persons give a phone number that is not valid. Everything else
            about the persons is the same in every profile.

    Returns:
        One row per person: ``person_id``, ``country``, ``gender``, ``first_name``,
        ``last_name``, ``date_of_birth`` (datetime64), ``email``, ``alt_email``
        (an older e-mail where ``email_changed``, else a second address used for
        duplicate sign-ups), ``email_changed``, ``mobile`` (E.164 form; valid unless
        the profile makes it invalid), ``street``,
        ``house_number``, ``postcode``, ``city``, ``moved``, the ``old_*`` address
        fields (null unless ``moved``) and ``household_id`` (null if living alone).

    Raises:
        ValueError: If ``persons`` is below 1 or the profile is unknown.

    Examples:
        >>> people = build_persons(10, seed=1)
        >>> len(people), people["person_id"].iloc[0]
        (10, 'P0000001')
    """
    if persons < 1:
        raise ValueError(f"persons must be at least 1, got {persons}")
    spec = profile_named(profile)
    rngs = stage_rngs(seed)
    pools = build_pools(rngs["pools"])
    rng = rngs["persons"]
    country, gender, heads, partners = _countries_and_households(rng, persons)
    first = _first_names(rng, country, gender, pools, heads, partners)
    last = _last_names(rng, country, gender, pools, heads, partners)
    dob = _dates_of_birth(rng, persons, heads, partners)
    address, old, moved = _homes(rng, country, pools, heads, partners)
    mobile = unique_mobiles(rng, country)
    mobile = with_invalid_numbers(rngs["person_errors"], country, mobile, spec.p_invalid_phone)
    email, alt_email = _email_pairs(rng, country, first, last, dob, heads, partners)
    household = np.full(persons, None, dtype=object)
    household[heads] = household[partners] = [f"H{i + 1:07d}" for i in range(len(heads))]
    return pd.DataFrame(
        {
            "person_id": [f"P{i + 1:07d}" for i in range(persons)],
            "country": country,
            "gender": gender,
            "first_name": first,
            "last_name": last,
            "date_of_birth": dob,
            "email": email,
            "alt_email": alt_email,
            "email_changed": mask(rng, persons, P_EMAIL_CHANGED),
            "mobile": mobile,
            **address,
            "moved": moved,
            **{f"old_{key}": values for key, values in old.items()},
            "household_id": household,
        }
    )
