"""The fields of one source's records, drawn from the persons behind them, with noise.

Each helper takes the :class:`Draws` of one source (the persons behind its records,
the source's random stream and its :class:`~linkage.demo.source_plans.SourcePlan`)
and returns one array per field.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from linkage.demo.country_tables import CITY_EXONYMS, COUNTRIES
from linkage.demo.knobs import (
    P_CITY_EXONYM,
    P_COUNTRY_LOWER,
    P_DOB_SWAPPED,
    P_EMAIL_CAPITALISED,
    P_EMAIL_UPPER,
    P_NICKNAME,
    P_OLD_ADDRESS,
    P_OLD_EMAIL,
    P_POSTCODE_UNFORMATTED,
    P_STREET_ABBREVIATED,
    Profile,
)
from linkage.demo.noise import nicknames, spelling_noise, surface_noise
from linkage.demo.phones import format_phone
from linkage.demo.record_errors import dob_errors, email_typos, name_errors
from linkage.demo.sampling import apply, mask, object_array, pick, py_random
from linkage.demo.source_plans import NATIONAL_PHONE_STYLES, SourcePlan

__all__ = [
    "Address",
    "Draws",
    "full_names",
    "record_addresses",
    "record_countries",
    "record_dobs",
    "record_emails",
    "record_names",
    "record_phones",
]


@dataclass(frozen=True)
class Draws:
    """What a source needs to build its records.

    Attributes:
        people: The persons' columns (see :func:`linkage.demo.persons.build_persons`).
        owners: The person index of each record.
        occurrence: The record's rank among its person's records in the source.
        rng: The source's random stream, for the base records.
        plan: The source's plan, already adjusted to the profile.
        profile: The profile whose errors are added to the base records.
        errors: The source's stream for the profile's errors, so that they never
            shift the base records.
    """

    people: dict[str, np.ndarray]
    owners: np.ndarray
    occurrence: np.ndarray
    rng: np.random.Generator
    plan: SourcePlan
    profile: Profile
    errors: np.random.Generator

    @property
    def size(self) -> int:
        """Number of records."""
        return len(self.owners)

    def column(self, name: str) -> np.ndarray:
        """The persons' ``name`` value behind each record."""
        return self.people[name][self.owners]


def record_names(d: Draws) -> tuple[np.ndarray, np.ndarray]:
    """First and last names with nicknames, diacritics, typos and the profile's name errors.

    Case noise comes later, from the source; a profile's swapped case comes here.
    """
    country = d.column("country")
    first = nicknames(d.column("first_name"), country, d.rng, P_NICKNAME)
    first = spelling_noise(first, d.rng, d.plan.noise)
    last = spelling_noise(d.column("last_name"), d.rng, d.plan.noise)
    return name_errors(first, last, d.errors, d.profile, d.plan.noise)


def record_dobs(d: Draws, template: str) -> np.ndarray:
    """Dates of birth written with ``template``; some with day and month swapped or mistyped."""
    dob = d.column("date_of_birth").astype("datetime64[D]")
    years = dob.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dob.astype("datetime64[M]").astype(np.int64) % 12 + 1
    days = (dob - dob.astype("datetime64[M]")).astype(np.int64) + 1
    swap = mask(d.rng, d.size, P_DOB_SWAPPED * d.plan.noise) & (days <= 12) & (days != months)
    months, days = np.where(swap, days, months), np.where(swap, months, days)
    years, months, days = dob_errors(
        years, months, days, d.errors, d.profile.p_dob_digit * d.plan.noise
    )
    return object_array(
        template.format(y=y, m=m, d=dd)
        for y, m, dd in zip(years.tolist(), months.tolist(), days.tolist(), strict=True)
    )


def record_emails(d: Draws, extra_alt: np.ndarray | None = None) -> np.ndarray:
    """Current or older e-mail per record, sometimes upper-cased, capitalised or mistyped."""
    use_alt = d.column("email_changed") & mask(d.rng, d.size, P_OLD_EMAIL)
    if extra_alt is not None:
        use_alt |= extra_alt
    emails = pick(d.column("email"), use_alt, d.column("alt_email"))
    draw = d.rng.random(d.size)
    upper = draw < P_EMAIL_UPPER * d.plan.noise
    capital = (draw >= P_EMAIL_UPPER * d.plan.noise) & (
        draw < (P_EMAIL_UPPER + P_EMAIL_CAPITALISED) * d.plan.noise
    )
    emails = apply(emails, upper, str.upper)
    emails = apply(emails, capital, _capitalise_local_part)
    return email_typos(emails, d.errors, d.profile.p_email_typo * d.plan.noise)


def _capitalise_local_part(email: str) -> str:
    """``anna.svensson@gmail.com`` -> ``Anna.Svensson@gmail.com``."""
    local, _, domain = email.partition("@")
    return ".".join(part.capitalize() for part in local.split(".")) + "@" + domain


def _weighted_styles(rng: np.random.Generator, formats: dict[str, float], size: int) -> np.ndarray:
    styles = np.array(list(formats), dtype=object)
    weights = np.array(list(formats.values()), dtype=float)
    return styles[rng.choice(len(styles), size, p=weights / weights.sum())]


def record_phones(d: Draws) -> np.ndarray:
    """Each record's mobile in one of the source's phone styles.

    A share ``plan.to_national_phones`` of the international ones is then written in a
    national style instead, drawn from the profile's own stream.
    """
    styles = _weighted_styles(d.rng, d.plan.phone_formats, d.size)
    international = ~np.isin(styles, list(NATIONAL_PHONE_STYLES))
    rewritten = international & mask(d.errors, d.size, d.plan.to_national_phones)
    national = _weighted_styles(d.errors, NATIONAL_PHONE_STYLES, d.size)
    styles = pick(styles, rewritten, national)
    return object_array(
        format_phone(number, code, style)
        for number, code, style in zip(
            d.column("mobile"), d.column("country"), styles.tolist(), strict=True
        )
    )


def _abbreviate(street: str, code: str) -> str:
    for long, short in COUNTRIES[code].street_abbreviations:
        if long in street:
            return street.replace(long, short, 1)
    return street


def _unformat_postcode(postcode: str, code: str) -> str:
    if code in ("DE", "NO"):
        return postcode.lstrip("0") or postcode  # lost leading zero
    return postcode.replace(" ", "").replace("-", "")


@dataclass(frozen=True)
class Address:
    """One source's address fields, one value per record."""

    street_line: np.ndarray
    postcode: np.ndarray
    city: np.ndarray


def record_addresses(d: Draws) -> Address:
    """Current or older address per record with abbreviations and format noise."""
    country = d.column("country")
    old = d.column("moved") & mask(d.rng, d.size, P_OLD_ADDRESS)
    street, house, postcode, city = (
        pick(d.column(key), old, d.column(f"old_{key}"))
        for key in ("street", "house_number", "postcode", "city")
    )
    abbreviated = mask(d.rng, d.size, P_STREET_ABBREVIATED)
    street = object_array(
        _abbreviate(s, c) if a else s for s, c, a in zip(street, country, abbreviated, strict=True)
    )
    street = spelling_noise(street, d.rng, d.plan.noise * 0.5)
    line = object_array(
        f"{h} {s}" if c == "GB" else f"{s} {h}"
        for s, h, c in zip(street, house, country, strict=True)
    )
    unformatted = mask(d.rng, d.size, P_POSTCODE_UNFORMATTED * d.plan.noise)
    postcode = object_array(
        _unformat_postcode(p, c) if u else p
        for p, c, u in zip(postcode, country, unformatted, strict=True)
    )
    rnd = py_random(d.rng)
    exonym = mask(d.rng, d.size, P_CITY_EXONYM)
    city = apply(city, exonym, lambda v: rnd.choice(CITY_EXONYMS.get(v, (v,))))
    city = spelling_noise(city, d.rng, d.plan.noise * 0.5)
    return Address(line, postcode, city)


def record_countries(d: Draws, p_name: float) -> np.ndarray:
    """Country codes, some written as a country name (with ``p_name``) or lower-cased."""
    rnd = py_random(d.rng)
    country = d.column("country").copy()
    as_name = mask(d.rng, d.size, p_name)
    country = apply(country, as_name, lambda v: rnd.choice(COUNTRIES[v].names))
    lower = mask(d.rng, d.size, P_COUNTRY_LOWER * d.plan.noise)
    return apply(country, lower, str.lower)


def full_names(
    d: Draws, first: np.ndarray, last: np.ndarray, p_reversed: float, p_title: float
) -> np.ndarray:
    """Full names as ``First Last``, ``Last, First`` or ``Title First Last``."""
    rnd = py_random(d.rng)
    draw = d.rng.random(d.size).tolist()
    names = []
    for f, last_name, u, code, sex in zip(
        first, last, draw, d.column("country"), d.column("gender"), strict=True
    ):
        if u < p_reversed:
            names.append(f"{last_name}, {f}")
        elif u < p_reversed + p_title:
            spec = COUNTRIES[code]
            title = rnd.choice(spec.titles_male if sex == "M" else spec.titles_female)
            names.append(f"{title} {f} {last_name}")
        else:
            names.append(f"{f} {last_name}")
    return surface_noise(object_array(names), d.rng, d.plan.noise)
