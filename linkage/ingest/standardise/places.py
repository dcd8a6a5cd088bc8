"""Places: countries, postcodes, free-text address lines and streets.

Records come from Swedish, Norwegian, German, Polish and British systems, so the rules
for postcodes, addresses and countries cover those five.

Examples:
    >>> standardise_country("Deutschland")
    'DE'
    >>> standardise_postcode("sw1a1aa", "GB")
    Cleaned(value='SW1A 1AA', problem=None)
    >>> parse_address("Storgatan 12, SE-123 45 Stockholm, Sweden")
    ('Storgatan 12', '123 45', 'Stockholm')
    >>> standardise_street("Hauptstr. 5")
    'hauptstrasse 5'
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers

from linkage.ingest.standardise.cleaned import INVALID_POSTCODE, MISSING, Cleaned
from linkage.ingest.standardise.text import clean_display, collapse, fold_for_matching

__all__ = ["parse_address", "standardise_country", "standardise_postcode", "standardise_street"]

_HAS_DIGIT = re.compile(r"\d")

# --------------------------------------------------------------------------------------
# Countries and postcodes
# --------------------------------------------------------------------------------------

_COUNTRY_NAMES: dict[str, tuple[str, ...]] = {
    "SE": ("sweden", "sverige", "schweden", "szwecja", "swe"),
    "NO": ("norway", "norge", "noreg", "norwegen", "norwegia", "nor"),
    "DE": ("germany", "deutschland", "bundesrepublik deutschland", "tyskland", "niemcy",
           "deu", "ger"),
    "PL": ("poland", "polska", "polen", "rzeczpospolita polska", "pol"),
    "GB": ("united kingdom", "uk", "great britain", "britain", "england", "scotland",
           "wales", "northern ireland", "gbr", "storbritannien", "storbritannia",
           "grossbritannien", "vereinigtes konigreich", "wielka brytania",
           "zjednoczone krolestwo"),
}  # fmt: skip
_COUNTRY_ALIASES = {name: code for code, names in _COUNTRY_NAMES.items() for name in names}
# ISO 3166 alpha-2 codes as known to phonenumbers (plus a few of its own, such as "AC").
_COUNTRY_CODES = frozenset(phonenumbers.SUPPORTED_REGIONS)


@lru_cache(maxsize=1 << 12)
def standardise_country(raw: str | None) -> str | None:
    """ISO 3166 alpha-2 code from a code or a common country name.

    Any two-letter code known to ``phonenumbers`` is accepted; names are understood
    for the five source countries in English and in their own and neighbouring
    languages (Sverige, Norge, Deutschland, Polska, UK, England, Storbritannien, ...).

    Args:
        raw: A country code or name, possibly ``None``.

    Returns:
        The upper-case alpha-2 code, or ``None`` when missing or not recognised.

    Examples:
        >>> standardise_country("Deutschland")
        'DE'
        >>> standardise_country("U.K.")
        'GB'
        >>> standardise_country("se")
        'SE'
        >>> standardise_country("Atlantis") is None
        True
    """
    key = fold_for_matching(raw)
    if key is None:
        return None
    key = key.removeprefix("the ")
    if key in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[key]
    compact = key.replace(" ", "")
    if compact in _COUNTRY_ALIASES:
        return _COUNTRY_ALIASES[compact]
    code = compact.upper()
    return code if code in _COUNTRY_CODES else None


# A British postcode: outward code (area, district) and inward code (sector, unit).
_GB_OUTWARD = r"(?:GIR|[A-PR-UWYZ](?:\d[A-HJKPSTUW\d]?|[A-HK-Y]\d[ABEHMNPRV-Y\d]?))"
_GB_INWARD = r"\d[ABD-HJLNP-UW-Z]{2}"
# Per country: the whole postcode (optional country prefix) and how to write its groups.
_POSTCODE_RULES: dict[str, tuple[re.Pattern[str], str]] = {
    "SE": (re.compile(r"(?:(?:SE|S)[- ]?)?(\d{3}) ?(\d{2})"), "{}{}"),
    "NO": (re.compile(r"(?:(?:NO|N)[- ]?)?(\d{4})"), "{}"),
    "DE": (re.compile(r"(?:(?:DE|D)[- ]?)?(\d{5})"), "{}"),
    "PL": (re.compile(r"(?:PL[- ]?)?(\d{2})[- ]?(\d{3})"), "{}-{}"),
    "GB": (re.compile(rf"({_GB_OUTWARD}) ?({_GB_INWARD})"), "{} {}"),
}


def standardise_postcode(raw: str | None, country: str | None) -> Cleaned[str]:
    """Standardise a postcode to its country's canonical form.

    SE "12345" (also from "123 45" and "SE-123 45"), NO "0154", DE "10115",
    PL "00-001", GB "SW1A 1AA". For other or unknown countries the value is only
    upper-cased with single spaces.

    Args:
        raw: The raw postcode, possibly ``None``.
        country: ISO alpha-2 code or country name (see :func:`standardise_country`).

    Returns:
        The canonical postcode, or ``invalid_postcode`` when its shape is wrong for a
        known country.

    Examples:
        >>> standardise_postcode("SE-123 45", "SE")
        Cleaned(value='12345', problem=None)
        >>> standardise_postcode("sw1a1aa", "GB")
        Cleaned(value='SW1A 1AA', problem=None)
        >>> standardise_postcode("1234", "DE")
        Cleaned(value=None, problem='invalid_postcode')
    """
    text = collapse(raw, "NFKC").upper()
    if not text:
        return MISSING
    rule = _POSTCODE_RULES.get(standardise_country(country) or "")
    if rule is None:
        return Cleaned(text)
    pattern, template = rule
    match = pattern.fullmatch(text)
    if match is None:
        return Cleaned(None, INVALID_POSTCODE)
    return Cleaned(template.format(*match.groups()))


# --------------------------------------------------------------------------------------
# Addresses and streets
# --------------------------------------------------------------------------------------

_CONTINENTAL_POSTCODES = {
    "SE": r"\d{3} ?\d{2}",
    "NO": r"\d{4}",
    "DE": r"\d{5}",
    "PL": r"\d{2}-\d{3}",
}
_ANY_CONTINENTAL_POSTCODE = r"\d{2}-\d{3}|\d{3} \d{2}|\d{4,5}"


def _continental_address(postcode: str) -> re.Pattern[str]:
    """Regex for "street[,] [XX-]postcode city" with the given postcode pattern."""
    return re.compile(
        r"(?:(?P<street>.*?)(?P<sep>[\s,]+))?"
        r"(?:(?:SE|S|NO|N|DE|D|PL)-\s?)?"
        rf"(?P<postcode>{postcode})\s+(?P<city>[^\W\d_][^\d,]*)",
        re.IGNORECASE,
    )


_GB_ADDRESS = re.compile(
    rf"(?P<before>.*?)[\s,]*(?<![A-Z0-9])(?P<postcode>{_GB_OUTWARD} ?{_GB_INWARD})",
    re.IGNORECASE,
)
_CONTINENTAL_ADDRESS = {
    code: _continental_address(pc) for code, pc in _CONTINENTAL_POSTCODES.items()
}
_ANY_CONTINENTAL_ADDRESS = _continental_address(_ANY_CONTINENTAL_POSTCODE)

_Address = tuple[str | None, str | None, str | None]


def _strip_trailing_country(text: str) -> tuple[str, str | None]:
    """Remove a trailing country ("..., Sweden", "... Great Britain") and return its code.

    Two- and three-letter codes count only when written in capitals, so that "de" or
    "no" at the end of a line are not taken for countries.
    """
    words = text.split(" ")
    for size in (2, 1):
        if len(words) <= size:
            continue
        tail = " ".join(words[-size:])
        if len(tail) <= 3 and not tail.isupper():
            continue
        if code := standardise_country(tail):
            return " ".join(words[:-size]).rstrip(","), code
    return text, None


def _parse_gb(text: str) -> _Address | None:
    """Split "street[, city] POSTCODE" with a British postcode at the end."""
    match = _GB_ADDRESS.fullmatch(text)
    if match is None:
        return None
    before = match.group("before")
    street, comma, city = before.rpartition(",")
    if not comma or not city.strip() or _HAS_DIGIT.search(city):
        street, city = before, ""
    postcode = standardise_postcode(match.group("postcode"), "GB").value
    return clean_display(street), postcode, clean_display(city)


def _parse_continental(text: str, pattern: re.Pattern[str]) -> _Address | None:
    """Split "street, postcode city"; without a comma the street must end in a number."""
    match = pattern.fullmatch(text)
    if match is None:
        return None
    street = match.group("street") or ""
    has_comma = "," in (match.group("sep") or "")
    if street and not has_comma and not _HAS_DIGIT.search(street.rsplit(" ", 1)[-1]):
        return None
    postcode = " ".join(match.group("postcode").upper().split())
    return clean_display(street), postcode, clean_display(match.group("city"))


def _parse_with_hint(text: str, country: str | None) -> _Address | None:
    """Try the postcode patterns allowed by ``country`` (all of them when unknown)."""
    if country == "GB":
        return _parse_gb(text)
    if country in _CONTINENTAL_ADDRESS:
        return _parse_continental(text, _CONTINENTAL_ADDRESS[country])
    return _parse_gb(text) or _parse_continental(text, _ANY_CONTINENTAL_ADDRESS)


def parse_address(raw: str | None, country: str | None = None) -> _Address:
    """Split one free-text address line into display ``(street, postcode, city)``.

    Understands the continental "street, postcode city" order (SE, NO, DE, PL, with or
    without a comma and with an optional "SE-" style prefix) and the British
    "street, city POSTCODE" order. A trailing country name is removed and, when
    ``country`` is not given, used as the hint. Without a comma before a continental
    postcode the street must end in a house number, to avoid guessing.

    Args:
        raw: The raw address line, possibly ``None``.
        country: ISO alpha-2 code or country name used to pick the postcode pattern;
            ``None`` tries the British pattern first, then any continental one.

    Returns:
        ``(street, postcode, city)`` in display form. The postcode is upper-case as
        written (British ones as "SW1A 1AA"). When no postcode is found the result is
        ``(whole line cleaned, None, None)``; any part may be ``None``.

    Examples:
        >>> parse_address("Storgatan 12, SE-123 45 Stockholm, Sweden")
        ('Storgatan 12', '123 45', 'Stockholm')
        >>> parse_address("Flat 3, 12 High Street, Leeds LS1 4AP")
        ('Flat 3, 12 High Street', 'LS1 4AP', 'Leeds')
        >>> parse_address("Somewhere without a postcode")
        ('Somewhere without a postcode', None, None)
    """
    text = collapse(raw, "NFC")
    if not text:
        return None, None, None
    body, trailing_country = _strip_trailing_country(text)
    hint = standardise_country(country) if country else trailing_country
    parsed = _parse_with_hint(body, hint)
    if parsed is None:
        return clean_display(text), None, None
    return parsed


_SWEDISH_GATAN = re.compile(r"([^\W\d_]{4,})[gG]\.(?=[\s\d,]|$)")
_STREET_PREFIXES = frozenset({"ul", "ulica"})
_ENGLISH_SUFFIXES = {"st": "street", "rd": "road", "ave": "avenue", "ln": "lane", "dr": "drive"}
_GLUE_STRASSE = re.compile(r"(?<=[a-z])[ -]strasse\b")
_HOUSE_LETTER = re.compile(r"\b(\d+) ([a-z])\b")


# Norwegian "gata"/"gate" and "veien" are abbreviated "gt." and "vn.": all reduce to
# the short form for matching ("Kirkegata 21" = "Kirkegt. 21").
_NORWEGIAN_SUFFIX = re.compile(r"(?<=[a-z]{3})(gata|gate|veien)$")


def _norwegian_short(match: re.Match[str]) -> str:
    return "vn" if match.group(1) == "veien" else "gt"


def _expand_street_tokens(tokens: list[str]) -> list[str]:
    """Drop a Polish "ul." prefix and expand "str" and English suffix abbreviations."""
    if len(tokens) > 1 and tokens[0] in _STREET_PREFIXES:
        tokens = tokens[1:]
    tokens = [token[:-3] + "strasse" if token.endswith("str") else token for token in tokens]
    tokens = [_NORWEGIAN_SUFFIX.sub(_norwegian_short, token) for token in tokens]
    words = [index for index, token in enumerate(tokens) if token.isalpha()]
    if len(words) > 1 and tokens[words[-1]] in _ENGLISH_SUFFIXES:
        tokens[words[-1]] = _ENGLISH_SUFFIXES[tokens[words[-1]]]
    return tokens


def standardise_street(raw: str | None) -> str | None:
    """Matching form of a street: folded, with common abbreviations written out.

    "Hauptstr. 5", "Haupt-Straße 5" and "Hauptstraße 5" all become
    "hauptstrasse 5"; Swedish "Storg." becomes "storgatan"; a Polish "ul." prefix is
    dropped; a final English "St", "Rd", "Ave", "Ln" or "Dr" is written out; a house
    letter is joined to its number ("12 B" -> "12b").

    Args:
        raw: The raw street, possibly ``None``.

    Returns:
        The matching form, or ``None`` when nothing matchable remains.

    Examples:
        >>> standardise_street("Hauptstr. 5")
        'hauptstrasse 5'
        >>> standardise_street("ul. Kwiatowa 3")
        'kwiatowa 3'
        >>> standardise_street("12 High St.")
        '12 high street'
    """
    folded = fold_for_matching(_SWEDISH_GATAN.sub(r"\1gatan", raw) if raw else raw)
    if folded is None:
        return None
    text = " ".join(_expand_street_tokens(folded.split(" ")))
    return _HOUSE_LETTER.sub(r"\1\2", _GLUE_STRASSE.sub("strasse", text))
