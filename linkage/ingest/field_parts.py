"""Each canonical field's raw value split into the columns of its lookup table.

Staging standardises each distinct raw value of a field once, with the function here for
that field, and joins the results back (see :class:`linkage.ingest.lookups.LookupTables`).
Each function returns a tuple: the standardised value (display and matching forms where
the field has both) and the data-quality problem found, if any. Large fields are mapped
in worker processes, so every function is module-level and picklable; fields that need
settings (a date format, an identifier kind) are mapped with a ``functools.partial``.

Examples:
    >>> phone_parts("070-123 45 67", "SE")
    ('+46701234567', '701234567', True, None)
    >>> full_name_parts("Dr. Jörg Müller")
    ('Jörg', 'jorg', 'Müller', 'muller', None)
"""

from __future__ import annotations

from datetime import date

import jellyfish

from linkage.ingest.identifiers import INVALID_HASH_TOKEN, normalise_identifier
from linkage.ingest.standardise.cleaned import INVALID_POSTCODE
from linkage.ingest.standardise.contact import (
    email_match_form,
    phone_match_forms,
    standardise_email,
)
from linkage.ingest.standardise.dates import parse_date
from linkage.ingest.standardise.names import split_full_name, standardise_name
from linkage.ingest.standardise.places import (
    parse_address,
    standardise_country,
    standardise_postcode,
    standardise_street,
)
from linkage.ingest.standardise.text import clean_display, collapse, fold_for_matching

__all__ = [
    "address_parts",
    "city_parts",
    "country_parts",
    "custom_columns",
    "custom_parts",
    "date_parts",
    "email_parts",
    "full_name_parts",
    "identifier_parts",
    "name_parts",
    "phone_parts",
    "phonetic_parts",
    "postcode_parts",
    "street_parts",
]


def identifier_parts(field: str, raw: str) -> tuple[str | None, str | None]:
    """Normalise an identifier; a national id arrives already hashed by the loader."""
    if field == "national_id":
        if raw == INVALID_HASH_TOKEN:
            return None, "invalid_identifier"
        return raw, None
    cleaned = normalise_identifier(raw, field)
    return cleaned.value, cleaned.problem


def name_parts(raw: str) -> tuple[str | None, str | None, str | None]:
    """Display form, matching form and problem of a given name or surname."""
    cleaned = standardise_name(raw)
    display = clean_display(raw)
    if cleaned.value != fold_for_matching(raw):
        # A title or suffix was removed for matching ("Dr. Jörg"): drop it for display too.
        display = " ".join(part for part in split_full_name(raw) if part) or display
    return display if cleaned.value else None, cleaned.value, cleaned.problem


def full_name_parts(raw: str) -> tuple[str | None, ...]:
    """Display and matching forms of the given name and surname in a full name, and
    ``invalid_name`` when neither is usable."""
    first, last = split_full_name(raw)
    if (
        first is None
        and last is not None
        and standardise_name(raw).value == (fold_for_matching(raw))
    ):
        # A lone name with no title ("Nela" signing a ticket) is a given name;
        # with a title ("Herr Müller") it stays the surname.
        first, last = last, None
    first_clean = standardise_name(first) if first else None
    last_clean = standardise_name(last) if last else None
    problem = None
    if not (first_clean and first_clean.value) and not (last_clean and last_clean.value):
        problem = "invalid_name"
    return (
        first if first_clean and first_clean.value else None,
        first_clean.value if first_clean else None,
        last if last_clean and last_clean.value else None,
        last_clean.value if last_clean else None,
        problem,
    )


def phonetic_parts(name: str) -> tuple[str | None]:
    """The Metaphone code of a matching name (``jellyfish``): "catherine" and "kathryn"
    are both ``K0RN``, "smith" and "smyth" ``SM0``.

    Examples:
        >>> phonetic_parts("kathryn")
        ('K0RN',)
    """
    return (jellyfish.metaphone(name) or None,)


def custom_parts(raw: str) -> tuple[str | None]:
    """The matching form of a custom field."""
    return (fold_for_matching(raw),)


def custom_columns(name: str) -> tuple[str, str]:
    """Raw and folded column of a custom field in the working table; never ``*_date``,
    which the lookup tables would cast to DATE."""
    return f"__custom_{name}__raw", f"__custom_{name}__value"


def address_parts(raw: str, country: str | None) -> tuple[str | None, ...]:
    """Street, postcode and city of an address line, in display form."""
    street, postcode, city = parse_address(raw, country)
    return street, postcode, city


def email_parts(raw: str, match_invalid: bool = True) -> tuple[str | None, str | None]:
    """The normalised e-mail address and its problem; with ``match_invalid`` an invalid
    address of the shape ``user@domain`` keeps its lower-case form for matching."""
    cleaned = email_match_form(raw) if match_invalid else standardise_email(raw)
    return cleaned.value, cleaned.problem


def phone_parts(
    raw: str, region: str | None, match_invalid: bool = True
) -> tuple[str | None, str | None, bool | None, str | None]:
    """The phone number's matching form, national significant number, validity and
    problem, read in ``region`` when national.

    The matching form is E.164 for a valid number; an invalid one keeps ``+<country
    code><digits>`` (see :func:`~linkage.ingest.standardise.contact.phone_match_forms`)
    unless ``match_invalid`` is false, which nulls it as older Meld versions did.
    """
    forms = phone_match_forms(raw, region)
    if not forms.valid and not match_invalid:
        return None, None, None, forms.problem
    return forms.number, forms.national, forms.valid, forms.problem


def postcode_parts(
    raw: str, country: str | None, region: str | None, match_invalid: bool = True
) -> tuple[str | None, str | None]:
    """Validate against the record's own country; a source default is only a guess.

    A postcode of the wrong shape for its country keeps its upper-case form for
    matching when ``match_invalid`` (two records with the same odd postcode agree),
    with the problem ``invalid_postcode``.
    """
    cleaned = standardise_postcode(raw, country or region)
    if cleaned.value is None and country is None:
        cleaned = standardise_postcode(raw, None)
    if cleaned.problem == INVALID_POSTCODE and match_invalid:
        return collapse(raw, "NFKC").upper() or None, cleaned.problem
    return cleaned.value, cleaned.problem


def street_parts(raw: str) -> tuple[str | None, str | None]:
    """Display and matching forms of a street."""
    return clean_display(raw), standardise_street(raw)


def city_parts(raw: str) -> tuple[str | None, str | None]:
    """Display and matching forms of a city."""
    return clean_display(raw), fold_for_matching(raw)


def date_parts(
    raw: str, fmt: str | None, earliest: date, latest: date
) -> tuple[date | None, str | None]:
    """The date, parsed with ``fmt`` and kept only within ``[earliest, latest]``, and its
    problem."""
    cleaned = parse_date(raw, fmt, earliest=earliest, latest=latest)
    return cleaned.value, cleaned.problem


def country_parts(raw: str) -> tuple[str | None, str | None]:
    """The ISO country code, or ``invalid_country`` when not recognised."""
    country = standardise_country(raw)
    return country, None if country else "invalid_country"
