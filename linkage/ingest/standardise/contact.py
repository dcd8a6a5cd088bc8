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
from dataclasses import dataclass
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

from linkage.ingest.standardise.cleaned import INVALID_EMAIL, INVALID_PHONE, MISSING, Cleaned
from linkage.ingest.standardise.places import standardise_country
from linkage.ingest.standardise.text import collapse

__all__ = [
    "PhoneForms",
    "email_match_form",
    "phone_match_forms",
    "standardise_email",
    "standardise_phone",
]

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


_EMAIL_SHAPE = re.compile(r"[^@\s]+@[^@\s]+")


def email_match_form(raw: str | None) -> Cleaned[str]:
    """An e-mail address as matching compares it, even when it fails validation.

    A valid address is its :func:`standardise_email` form. An invalid one that still has
    the shape ``user@domain`` ("john..doe@x.com", "anna@gmail") keeps its trimmed,
    lower-case form with the problem: two records with the same mistyped address are
    still evidence. Anything else is ``None`` with the problem.

    Examples:
        >>> email_match_form("John..Doe@X.com")
        Cleaned(value='john..doe@x.com', problem='invalid_email')
        >>> email_match_form("not an address")
        Cleaned(value=None, problem='invalid_email')
    """
    cleaned = standardise_email(raw)
    if cleaned.value is not None or cleaned.problem is None:
        return cleaned
    text = _MAILTO.sub("", collapse(raw, "NFC") or "")
    bracketed = _ANGLE_ADDRESS.search(text)
    address = (bracketed.group(1) if bracketed else text).strip().lower()
    if _EMAIL_SHAPE.fullmatch(address) and len(address) <= _EMAIL_MAX_LENGTH:
        return Cleaned(address, INVALID_EMAIL)
    return cleaned


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


# --------------------------------------------------------------------------------------
# Phone numbers as matching compares them
# --------------------------------------------------------------------------------------

MIN_COMPARABLE_DIGITS = 6
"""A number with fewer digits than this ("112", "12345") identifies nobody: no matching form."""
_ONE_DIGIT_REPEATED = re.compile(r"^(\d)\1*$")


@dataclass(frozen=True)
class PhoneForms:
    """The forms of one phone number that matching compares.

    Attributes:
        number: E.164 when valid; otherwise ``+<country code><national number>`` when
            ``phonenumbers`` can read it, else its digits. ``None`` only for a number
            with no usable digits (too short, one digit repeated).
        national: The national significant number (no country code, no trunk 0): the
            same for "+49 151 2345678" and "0151 2345678" read in the wrong region.
        valid: ``phonenumbers.is_valid_number``; ``None`` without a number.
        problem: ``invalid_phone`` when not valid, else ``None``.
    """

    number: str | None
    national: str | None
    valid: bool | None
    problem: str | None


def phone_match_forms(raw: str | None, default_region: str | None) -> PhoneForms:
    """Every comparable form of a phone number, valid or not.

    Validation flags a number; it does not take it away from matching. A number the
    carrier tables call invalid (an old plan, a typo, a test number) is still the same
    evidence on two records that both carry it.

    Examples:
        >>> phone_match_forms("070-123 45 67", "SE")
        PhoneForms(number='+46701234567', national='701234567', valid=True, problem=None)
        >>> phone_match_forms("070-123 45", "SE")
        PhoneForms(number='+467012345', national='7012345', valid=False, problem='invalid_phone')
        >>> phone_match_forms("0151 23456789", "SE").national
        '15123456789'
        >>> phone_match_forms("+49 151 23456789", None).national
        '15123456789'
    """
    text = collapse(raw, "NFKC")
    if not text:
        return PhoneForms(None, None, None, None)
    dial_string = _phone_dial_string(text)
    if dial_string is None:
        return PhoneForms(None, None, None, INVALID_PHONE)
    return _phone_forms(dial_string, _phone_region(default_region))


@lru_cache(maxsize=1 << 17)
def _phone_forms(dial_string: str, region: str | None) -> PhoneForms:
    digits = dial_string.lstrip("+")
    if len(digits) < MIN_COMPARABLE_DIGITS or _ONE_DIGIT_REPEATED.match(digits):
        return PhoneForms(None, None, None, INVALID_PHONE)
    try:
        number = phonenumbers.parse(dial_string, region)
    except phonenumbers.NumberParseException:
        national = digits.lstrip("0") or None
        return PhoneForms(dial_string, national, False, INVALID_PHONE)
    national = str(number.national_number)
    if len(national) < MIN_COMPARABLE_DIGITS - 1 or _ONE_DIGIT_REPEATED.match(national):
        return PhoneForms(None, None, None, INVALID_PHONE)  # "+46 000 000 000"
    e164 = _valid_e164(
        number.country_code,
        number.national_number,
        bool(number.italian_leading_zero),
        number.number_of_leading_zeros,
    )
    if e164 is not None:
        return PhoneForms(e164, national, True, None)
    return PhoneForms(f"+{number.country_code}{national}", national, False, INVALID_PHONE)
