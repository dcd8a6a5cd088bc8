"""Pure standardisation functions for customer records, one module per kind of value.

Every function here is pure and deterministic: the pipeline calls it once per
distinct raw value, so regular expressions and lookup tables are built once, at
import time, and work that distinct values share (name parts, countries, e-mail
domains, one phone number spelled several ways) is cached. Functions that can
detect a data-quality problem return a :class:`~linkage.ingest.standardise.cleaned.Cleaned`
holding the standardised value and a short machine-readable reason.

- :mod:`~linkage.ingest.standardise.cleaned`: the result type and the problem names;
- :mod:`~linkage.ingest.standardise.text`: the display form (accents and sensible
  capitals, for people to read) and the matching form (lower-case ASCII, for comparisons);
- :mod:`~linkage.ingest.standardise.names`: names, full names split, titles and suffixes;
- :mod:`~linkage.ingest.standardise.contact`: e-mail addresses and phone numbers;
- :mod:`~linkage.ingest.standardise.dates`: dates parsed strictly;
- :mod:`~linkage.ingest.standardise.places`: countries, postcodes, addresses, streets.

Records come from Swedish, Norwegian, German, Polish and British systems, so the rules
for titles, postcodes, addresses and countries cover those five.

Examples:
    >>> standardise_phone("070-123 45 67", "SE")
    Cleaned(value='+46701234567', problem=None)
    >>> split_full_name("Herr Müller, Jörg")
    ('Jörg', 'Müller')
"""

from __future__ import annotations

from linkage.ingest.standardise.cleaned import (
    DATE_OUT_OF_RANGE,
    IMPOSSIBLE_DATE,
    INVALID_EMAIL,
    INVALID_NAME,
    INVALID_PHONE,
    INVALID_POSTCODE,
    UNPARSEABLE_DATE,
    Cleaned,
)
from linkage.ingest.standardise.contact import standardise_email, standardise_phone
from linkage.ingest.standardise.dates import parse_date
from linkage.ingest.standardise.names import split_full_name, standardise_name
from linkage.ingest.standardise.places import (
    parse_address,
    standardise_country,
    standardise_postcode,
    standardise_street,
)
from linkage.ingest.standardise.text import clean_display, fold_for_matching

__all__ = [
    "IMPOSSIBLE_DATE",
    "INVALID_EMAIL",
    "INVALID_NAME",
    "INVALID_PHONE",
    "INVALID_POSTCODE",
    "DATE_OUT_OF_RANGE",
    "UNPARSEABLE_DATE",
    "Cleaned",
    "clean_display",
    "fold_for_matching",
    "parse_address",
    "parse_date",
    "split_full_name",
    "standardise_country",
    "standardise_email",
    "standardise_name",
    "standardise_phone",
    "standardise_postcode",
    "standardise_street",
]
