"""Contact details: e-mail addresses (syntax-checked) and phone numbers (E.164).

E-mail syntax is checked with ``email_validator`` without any network look-up; phone
numbers are parsed and validated with ``phonenumbers``. Work that many values share
(one e-mail domain, one number spelled several ways) is cached.

Examples:
    >>> standardise_phone("070-123 45 67", "SE")
    Cleaned(value='+46701234567', problem=None)
    >>> standardise_email(" mailto:<John.Doe@Example.COM> ")
    Cleaned(value='john.doe@example.com', problem=None)
"""

from __future__ import annotations

import re
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from linkage.ingest.standardise.cleaned import INVALID_EMAIL, INVALID_PHONE, MISSING, Cleaned
from linkage.ingest.standardise.places import standardise_country
from linkage.ingest.standardise.text import collapse

__all__ = ["standardise_email", "standardise_phone"]

# --------------------------------------------------------------------------------------
# E-mail
# --------------------------------------------------------------------------------------

_MAILTO = re.compile(r"^mailto:\s*", re.IGNORECASE)
_ANGLE_ADDRESS = re.compile(r"<([^<>]*)>$")
# A lower-case ASCII address whose local part is a plain dot-atom: email_validator accepts
# such a local part as written, so only the domain needs its (slow) checks, once per domain.
_PLAIN_ADDRESS = re.compile(r"([a-z0-9_+-]+(?:\.[a-z0-9_+-]+)*)@([a-z0-9.-]+)")
_EMAIL_MAX_LENGTH = 254  # RFC 5321 limit, in UTF-8 bytes, as email_validator checks it


@lru_cache(maxsize=4096)
def _email_domain(domain: str) -> tuple[str, str] | None:
    """A domain's normalised and ASCII forms as email_validator gives them; None if invalid.

    The domain is validated behind a one-letter local part, which email_validator
    accepts, so the address is rejected only for its domain (or an impossible length).
    """
    try:
        probe = validate_email("a@" + domain, check_deliverability=False)
    except EmailNotValidError:
        return None
    return probe.domain, probe.ascii_domain


def _plain_email(address: str) -> Cleaned[str] | None:
    """``standardise_email`` of a plain ``local@domain`` address, without re-validating its
    domain; ``None`` when the address is not plain and needs the full validation."""
    match = _PLAIN_ADDRESS.fullmatch(address)
    if match is None:
        return None
    local, domain = match.groups()
    forms = _email_domain(domain)
    if forms is None:
        return Cleaned(None, INVALID_EMAIL)
    normalized, ascii_domain = forms
    # The length checks validate_email makes on the address as given, normalised and
    # with an ASCII domain; anything near the limit takes the full validation.
    longest_domain = max(len(domain), len(normalized.encode("utf-8")), len(ascii_domain))
    if len(local) + 1 + longest_domain > _EMAIL_MAX_LENGTH:
        return None
    return Cleaned(f"{local}@{normalized}".lower())


def standardise_email(raw: str | None) -> Cleaned[str]:
    """Standardise an e-mail address: trimmed, lower-case and syntax-checked.

    Removes a ``mailto:`` prefix and surrounding angle brackets (also in the
    ``Name <address>`` form), then validates the syntax with ``email_validator``
    without any network look-up.

    Args:
        raw: The raw e-mail address, possibly ``None``.

    Returns:
        The normalised lower-case address, or ``invalid_email``.

    Examples:
        >>> standardise_email(" mailto:<John.Doe@Example.COM> ")
        Cleaned(value='john.doe@example.com', problem=None)
        >>> standardise_email("john..doe@x.com")
        Cleaned(value=None, problem='invalid_email')
    """
    text = collapse(raw, "NFC")
    if not text:
        return MISSING
    text = _MAILTO.sub("", text)
    bracketed = _ANGLE_ADDRESS.search(text)
    address = (bracketed.group(1) if bracketed else text).strip().lower()
    if not address:
        return Cleaned(None, INVALID_EMAIL)
    plain = _plain_email(address)
    if plain is not None:
        return plain
    try:
        validated = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        return Cleaned(None, INVALID_EMAIL)
    return Cleaned(validated.normalized.lower())


# --------------------------------------------------------------------------------------
# Phone numbers
# --------------------------------------------------------------------------------------

_PHONE_EXTENSION = re.compile(
    r"\s*(?:(?:ext|extn|extension|ankn|anknytning|wew|dw|durchwahl)\.?|[x#])\s*:?\s*\d{1,6}$",
    re.IGNORECASE,
)
_TRUNK_IN_PARENS = re.compile(r"\(\s*0\s*\)")
_INTERNATIONAL_START = re.compile(r"^[^\d+]*(\+|00)")
_NON_DIGIT = re.compile(r"\D")


@lru_cache(maxsize=1024)
def _phone_region(region: str | None) -> str | None:
    """The ``phonenumbers`` region for an ISO code or country name, else ``None``."""
    if not region:
        return None
    code = region.strip().upper()
    if code in phonenumbers.SUPPORTED_REGIONS:
        return code
    return standardise_country(region)


def _phone_dial_string(text: str) -> str | None:
    """Reduce a phone number to ``+digits`` or ``digits`` for ``phonenumbers.parse``.

    Drops an extension, labels and other letters; drops a "(0)" trunk prefix after a
    country code (Poland and Norway have no trunk prefix, so ``phonenumbers`` would
    not); turns a leading ``00`` international prefix into ``+``.

    Examples:
        >>> _phone_dial_string("Tel: +46 (0)70-123 45 67 ext. 12")
        '+46701234567'
        >>> _phone_dial_string("(0)70 1234567")
        '0701234567'
        >>> _phone_dial_string("00 49 151 23456789")
        '+4915123456789'
    """
    text = _PHONE_EXTENSION.sub("", text)
    international = _INTERNATIONAL_START.match(text)
    if international:
        text = _TRUNK_IN_PARENS.sub("", text)
    digits = _NON_DIGIT.sub("", text)
    if not digits:
        return None
    if international and international.group(1) == "+":
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    return digits


def standardise_phone(raw: str | None, default_region: str | None) -> Cleaned[str]:
    """Standardise a phone number to E.164 ("+46701234567").

    National numbers ("070-123 45 67") are read in ``default_region``; numbers with a
    ``+`` or ``00`` international prefix parse in any region. Labels ("Tel:"),
    extensions ("ext. 12", "x12", "wew. 12") and a "(0)" trunk prefix are handled.

    Args:
        raw: The raw phone number, possibly ``None``.
        default_region: ISO 3166 alpha-2 code in any case (or a country name understood
            by :func:`standardise_country`); ``None`` or unknown means only
            international numbers can be read.

    Returns:
        The E.164 number, or ``invalid_phone`` when it cannot be parsed or is not a
        valid number for its country.

    Examples:
        >>> standardise_phone("0046 70 123 45 67", None)
        Cleaned(value='+46701234567', problem=None)
        >>> standardise_phone("070-123 45", "SE")
        Cleaned(value=None, problem='invalid_phone')
    """
    text = collapse(raw, "NFKC")
    if not text:
        return MISSING
    dial_string = _phone_dial_string(text)
    if dial_string is None:
        return Cleaned(None, INVALID_PHONE)
    e164 = _e164(dial_string, _phone_region(default_region))
    return Cleaned(None, INVALID_PHONE) if e164 is None else Cleaned(e164)


# phonenumbers compiles its metadata patterns on every call unless told to keep them.
phonenumbers.re_util.enable_pattern_cache()


@lru_cache(maxsize=1 << 17)
def _e164(dial_string: str, region: str | None) -> str | None:
    """E.164 form of a dial string (``+digits`` or ``digits``) read in ``region``; ``None``
    when ``phonenumbers`` cannot parse it or it is not a valid number.

    Cached: the many spellings of a number ("070-123 45 67", "070 1234567", "Tel:
    0701234567") reduce to the same dial string, which ``phonenumbers`` parses once.
    """
    try:
        number = phonenumbers.parse(dial_string, region)
    except phonenumbers.NumberParseException:
        return None
    return _valid_e164(
        number.country_code,
        number.national_number,
        bool(number.italian_leading_zero),
        number.number_of_leading_zeros,
    )


@lru_cache(maxsize=1 << 17)
def _valid_e164(
    country_code: int, national_number: int, italian_leading_zero: bool, leading_zeros: int | None
) -> str | None:
    """E.164 form of a parsed number, ``None`` when it is not valid for its country.

    Validity and format depend on these four parts alone, and one number comes as a
    national ("0701234567") and an international ("+46701234567") dial string: cached,
    each number is validated once.
    """
    number = phonenumbers.PhoneNumber(
        country_code=country_code,
        national_number=national_number,
        italian_leading_zero=italian_leading_zero or None,
        number_of_leading_zeros=leading_zeros,
    )
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
