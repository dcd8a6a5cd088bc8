"""Pure standardisation functions for customer records.

Every function here is pure and deterministic: the pipeline calls it once per
distinct raw value, so regular expressions and lookup tables are built once, at
import time, and work that distinct values share (name parts, countries, e-mail
domains, one phone number spelled several ways) is cached. Functions that can
detect a data-quality problem return a :class:`Cleaned` holding the standardised
value and a short machine-readable reason (the constants ``INVALID_NAME`` ...
``DATE_OUT_OF_RANGE``) so that problems can be counted and audited instead of
silently dropped.

Two forms of text come out of this module:

* the *display* form (:func:`clean_display`, :func:`split_full_name`,
  :func:`parse_address`) keeps accents and sensible capitals for people to read;
* the *matching* form (:func:`fold_for_matching`, :func:`standardise_name`,
  :func:`standardise_street`) is lower-case ASCII for comparisons.

Records come from Swedish, Norwegian, German, Polish and British systems, so
the rules for titles, postcodes, addresses and countries cover those five.

Examples:
    >>> standardise_phone("070-123 45 67", "SE")
    Cleaned(value='+46701234567', problem=None)
    >>> split_full_name("Herr Müller, Jörg")
    ('Jörg', 'Müller')
"""

from __future__ import annotations

import calendar
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, datetime
from functools import lru_cache
from typing import Generic, TypeVar

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from unidecode import unidecode

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

T = TypeVar("T")

INVALID_NAME = "invalid_name"
INVALID_EMAIL = "invalid_email"
INVALID_PHONE = "invalid_phone"
INVALID_POSTCODE = "invalid_postcode"
UNPARSEABLE_DATE = "unparseable_date"
IMPOSSIBLE_DATE = "impossible_date"
DATE_OUT_OF_RANGE = "date_out_of_range"


@dataclass(frozen=True)
class Cleaned(Generic[T]):
    """A standardised value together with the data-quality problem found, if any.

    Attributes:
        value: The standardised value; ``None`` when the input was missing or invalid.
        problem: ``None`` when the input was fine or simply missing; otherwise a short
            machine-readable reason such as ``"invalid_email"``.

    Examples:
        >>> Cleaned("+46701234567", None).value
        '+46701234567'
        >>> Cleaned(None, INVALID_EMAIL).problem
        'invalid_email'
    """

    value: T | None
    problem: str | None = None


_MISSING: Cleaned = Cleaned(None, None)


# --------------------------------------------------------------------------------------
# Text: matching and display forms
# --------------------------------------------------------------------------------------

# Zero-width characters, word joiner, byte-order mark and soft hyphen.
_INVISIBLE = re.compile("[\u200b-\u200d\u2060\ufeff\u00ad]")
# Characters typed for an apostrophe; NFKC would turn the acute accent into a space.
_APOSTROPHES = str.maketrans(dict.fromkeys("\u00b4`\u2018\u2019\u02bc", "'"))
_NOT_MATCHABLE = re.compile(r"[^a-z0-9' -]+")
_HYPHEN_RUN = re.compile(r" *-[ -]*")
_APOSTROPHE_RUN = re.compile(r"'+")
# Separators inside one word after which a new capital may start.
_WORD_PARTS = re.compile(r"([-.'\u2019])")
_ROMAN_NUMERALS = frozenset({"ii", "iii", "iv"})  # not "vi": Vi is a given name
# Words kept lower-case in a display form when they sit between other words
# ("Ludwig van Beethoven", "Frankfurt am Main", "Stratford-upon-Avon").
_LOWER_CONNECTORS = frozenset(
    {
        "af", "am", "an", "and", "av", "da", "das", "de", "del", "della", "den", "der",
        "des", "di", "do", "dos", "du", "im", "of", "on", "ten", "ter", "the", "und",
        "upon", "van", "von", "zu", "zum", "zur",
    }
)  # fmt: skip


def _collapse(text: str | None, form: str) -> str:
    """Unicode-normalise, drop invisible characters and collapse whitespace.

    Examples:
        >>> _collapse("  Anna\\u00a0 Karin\\u200b ", "NFC")
        'Anna Karin'
    """
    if not text:
        return ""
    text = _INVISIBLE.sub("", unicodedata.normalize(form, text))
    return " ".join(text.split())


def fold_for_matching(text: str | None) -> str | None:
    """Fold text to lower-case ASCII letters, digits, spaces, hyphens and apostrophes.

    Applies NFKC, transliterates with ``unidecode`` (so ``ö`` becomes ``o``, ``ß``
    becomes ``ss``), replaces every other character with a space, joins hyphens
    that have spaces around them and collapses whitespace.

    Args:
        text: Any text, possibly ``None``.

    Returns:
        The folded text, or ``None`` when nothing matchable remains.

    Examples:
        >>> fold_for_matching("  Jörg   MÜLLER ")
        'jorg muller'
        >>> fold_for_matching("Ærø Straße")
        'aero strasse'
        >>> fold_for_matching("Anna - Karin D´Angelo")
        "anna-karin d'angelo"
        >>> fold_for_matching("???") is None
        True
    """
    if not text:
        return None
    ascii_text = unidecode(unicodedata.normalize("NFKC", text.translate(_APOSTROPHES))).lower()
    ascii_text = _NOT_MATCHABLE.sub(" ", ascii_text)
    ascii_text = _APOSTROPHE_RUN.sub("'", _HYPHEN_RUN.sub("-", ascii_text))
    words = (word.strip("-'") for word in ascii_text.split())
    folded = " ".join(word for word in words if word)
    return folded or None


def _needs_recase(text: str) -> bool:
    """Whether text is written entirely in capitals or entirely in lower case.

    ``ß`` has no capital in common use, so it is ignored ("STRAßE" is all caps).
    """
    letters = text.replace("ß", "")
    return letters.isupper() or letters.islower()


def _capitalise(part: str) -> str:
    """Capitalise one lower-case word part, treating a ``mc`` prefix as in McDonald."""
    if part.startswith("mc") and len(part) > 3:
        return "Mc" + part[2].upper() + part[3:]
    return part[:1].upper() + part[1:]


def _starts_word_part(parts: list[str], index: int) -> bool:
    """Whether ``parts[index]`` (after a separator) starts with a capital.

    It does after a dot ("J.R.R."), after a hyphen unless it is a connector between
    two parts ("Anna-Karin", "Stratford-upon-Avon"), and after a one-letter prefix and
    an apostrophe ("O'Brien", but "King's").
    """
    separator = parts[index - 1]
    if separator == ".":
        return True
    if separator == "-":
        return index == len(parts) - 1 or parts[index] not in _LOWER_CONNECTORS
    return index == 2 and len(parts[0]) == 1


def _recase_word(word: str, *, connector_lower: bool) -> str:
    """Title-case one word: capitals after hyphens, dots and an ``O'``-style prefix.

    Words holding a digit ("12A", "SW1A") are returned unchanged; Roman numerals are
    upper-cased; connectors ("van", "am") are lower-cased when ``connector_lower``.
    """
    lower = word.lower()
    if any(char.isdigit() for char in word):
        return word
    if lower in _ROMAN_NUMERALS:
        return word.upper()
    if connector_lower and lower in _LOWER_CONNECTORS:
        return lower
    parts = _WORD_PARTS.split(lower)
    for index in range(0, len(parts), 2):
        if index == 0 or _starts_word_part(parts, index):
            parts[index] = _capitalise(parts[index])
    return "".join(parts)


def _recase_words(words: list[str], *, leading_connector_lower: bool = False) -> str:
    """Title-case a list of words, keeping connectors lower between other words."""
    last = len(words) - 1
    return " ".join(
        _recase_word(
            word,
            connector_lower=(index > 0 or leading_connector_lower) and index < last,
        )
        for index, word in enumerate(words)
    )


def clean_display(text: str | None) -> str | None:
    """Tidy text for people to read: NFC, trimmed, single spaces, sensible capitals.

    Text written ALL IN CAPITALS or all in lower case is title-cased, keeping accents,
    hyphenated parts ("Anna-Karin"), ``O'``-prefixes and lower-case particles between
    words ("van", "von", "de", "am"). Mixed-case text is kept as written.

    Args:
        text: Any text, possibly ``None``.

    Returns:
        The display form, or ``None`` for missing or blank input.

    Examples:
        >>> clean_display("  JÖRG   MÜLLER ")
        'Jörg Müller'
        >>> clean_display("anna-karin o'brien")
        "Anna-Karin O'Brien"
        >>> clean_display("LUDWIG VAN BEETHOVEN")
        'Ludwig van Beethoven'
        >>> clean_display("MCDONALD")
        'McDonald'
    """
    cleaned = _collapse(text, "NFC")
    if not cleaned:
        return None
    if not _needs_recase(cleaned):
        return cleaned
    return _recase_words(cleaned.split(" "))


# --------------------------------------------------------------------------------------
# Names
# --------------------------------------------------------------------------------------

_TITLES = frozenset(
    {"dr", "mr", "mrs", "ms", "miss", "mx", "prof", "herr", "frau", "pan", "pani", "sir",
     "fru", "hr", "frk"}
)  # fmt: skip
_SUFFIXES = frozenset({"jr", "sr", "ii", "iii", "iv", "phd", "md", "esq"})
# Titles that are also real names: a value holding only this word is kept as a name.
_TITLES_THAT_ARE_NAMES = frozenset({"pan"})
_SURNAME_PARTICLES = frozenset(
    {"af", "av", "da", "das", "de", "del", "della", "den", "der", "des", "di", "do", "dos",
     "du", "la", "le", "ten", "ter", "und", "van", "von", "zu", "zum", "zur"}
)  # fmt: skip
_NAME_PLACEHOLDERS = frozenset(
    {"unknown", "unk", "null", "none", "nan", "n a", "xxx", "test", "okand", "ukjent",
     "unbekannt", "nieznany", "nieznana", "brak"}
)  # fmt: skip
# Split on whitespace and commas, and after a dot glued to the next word ("J.Smith").
# A dot splits only before a whole word, so "Ph.D." and "M.D." stay single tokens.
_NAME_TOKEN_SPLIT = re.compile(r"[\s,]+|(?<=\.)(?=[^\W\d_]{2})")
_NON_LETTER = re.compile(r"[^a-z]")
_HAS_WORD_CHAR = re.compile(r"[^\W_]")
_HAS_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=1 << 14)
def _token_key(token: str) -> str:
    """Lower-case ASCII letters of a token, for title look-ups ("Ph.D." -> "phd")."""
    return _NON_LETTER.sub("", unidecode(token).lower())


def _name_tokens(text: str) -> list[str]:
    """Split a name into tokens, dropping tokens without letters or digits ("&")."""
    return [tok for tok in _NAME_TOKEN_SPLIT.split(text) if tok and _HAS_WORD_CHAR.search(tok)]


_DOTTED_INITIALS = re.compile(r"^[^\W\d_]\.[^\W\d_]\.?$")


def _without_honorifics(tokens: list[str]) -> list[str]:
    """Drop leading titles and trailing suffixes; a lone title that is also a name stays.

    Examples:
        >>> _without_honorifics(["Prof.", "Dr.", "Jörg", "Müller", "PhD"])
        ['Jörg', 'Müller']
        >>> _without_honorifics(["Pan"])
        ['Pan']
        >>> _without_honorifics(["Mr"])
        []
    """
    start, end = 0, len(tokens)
    while start < end and _token_key(tokens[start]) in _TITLES:
        start += 1
    while (
        end > start
        and _token_key(tokens[end - 1]) in _SUFFIXES
        # "J.R." is initials, "Jr." the suffix; "M.D." stays a suffix.
        and not (
            _DOTTED_INITIALS.match(tokens[end - 1]) and _token_key(tokens[end - 1]) in ("jr", "sr")
        )
    ):
        end -= 1
    if start == end and len(tokens) == 1 and _token_key(tokens[0]) in _TITLES_THAT_ARE_NAMES:
        return tokens
    return tokens[start:end]


@lru_cache(maxsize=1 << 16)
def standardise_name(raw: str | None) -> Cleaned[str]:
    """Standardise one given name or surname for matching.

    Removes titles and honorifics (Dr, Mr, Herr, Frau, Pan, Pani, Fru, Hr, ...) at the
    start and suffixes (Jr, Sr, II, III, PhD, MD) at the end, then applies
    :func:`fold_for_matching`.

    Args:
        raw: The raw name, possibly ``None``.

    Returns:
        The folded name; ``invalid_name`` when the value holds digits or an ``@``, has no
        letters, is only a title, or is a placeholder such as "unknown" or "N/A".

    Examples:
        >>> standardise_name("Dr. Jörg")
        Cleaned(value='jorg', problem=None)
        >>> standardise_name("Smith Jr.")
        Cleaned(value='smith', problem=None)
        >>> standardise_name("12345")
        Cleaned(value=None, problem='invalid_name')
        >>> standardise_name("  ")
        Cleaned(value=None, problem=None)
    """
    text = _collapse(raw, "NFKC")
    if not text:
        return _MISSING
    if _HAS_DIGIT.search(text) or "@" in text:
        return Cleaned(None, INVALID_NAME)
    folded = fold_for_matching(" ".join(_without_honorifics(_name_tokens(text))))
    if folded is None or folded in _NAME_PLACEHOLDERS:
        return Cleaned(None, INVALID_NAME)
    return Cleaned(folded)


def _display_name(tokens: list[str], *, surname: bool = False) -> str:
    """Join name tokens for display, re-casing them only if written in one case."""
    text = " ".join(tokens)
    if not _needs_recase(text):
        return text
    return _recase_words(tokens, leading_connector_lower=surname)


def _split_tokens(tokens: list[str]) -> tuple[str | None, str | None]:
    """Split "First [Middle ...] [particles] Last" tokens into display (first, last)."""
    if not tokens:
        return None, None
    if len(tokens) == 1:
        return None, _display_name(tokens, surname=True)
    surname_start = len(tokens) - 1
    while surname_start > 1 and tokens[surname_start - 1].lower() in _SURNAME_PARTICLES:
        surname_start -= 1
    return _display_name(tokens[:1]), _display_name(tokens[surname_start:], surname=True)


def split_full_name(raw: str | None) -> tuple[str | None, str | None]:
    """Split a free-text full name into display ``(first, last)`` parts.

    Handles "First Last", "First Middle Last" (middle names are dropped),
    "Last, First [Middle]", surname particles ("Ludwig van Beethoven" ->
    ("Ludwig", "van Beethoven")), titles and suffixes ("Dr. Jörg Müller",
    "Smith Jr., John") and initials ("J. Smith" -> ("J.", "Smith")). A single name is
    taken as the surname. Each part written in one case is re-cased as in
    :func:`clean_display`; a surname keeps its leading particle lower-case.

    Args:
        raw: The raw full name, possibly ``None``.

    Returns:
        ``(first, last)``; either is ``None`` when absent.

    Examples:
        >>> split_full_name("Dr. Jörg Müller")
        ('Jörg', 'Müller')
        >>> split_full_name("ANNA VON DER LEYEN")
        ('Anna', 'von der Leyen')
        >>> split_full_name("Smith Jr., John")
        ('John', 'Smith')
        >>> split_full_name("Madonna")
        (None, 'Madonna')
    """
    text = _collapse(raw, "NFC")
    segments = [tokens for tokens in map(_name_tokens, text.split(",")) if tokens]
    # Segments holding only honorifics ("John Smith, Jr.") do not make a comma form.
    names = [core for core in map(_without_honorifics, segments) if core]
    if len(names) >= 2:  # "Last, First [Middle]"
        return _display_name(names[1][:1]), _display_name(names[0], surname=True)
    return _split_tokens(names[0] if names else [])


# --------------------------------------------------------------------------------------
# E-mail and phone
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
    text = _collapse(raw, "NFC")
    if not text:
        return _MISSING
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
    text = _collapse(raw, "NFKC")
    if not text:
        return _MISSING
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
# Dates
# --------------------------------------------------------------------------------------

_DEFAULT_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d.%m.%Y", "%Y%m%d", "%d-%m-%Y")
_TIME_SUFFIX = re.compile(
    r"(?:T|\s+)\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?\s*(?:Z|[+-]\d{2}(?::?\d{2})?)?$",
    re.IGNORECASE,
)
_FORMAT_PARTS = re.compile(r"(%.)")
_NUMERIC_DIRECTIVES = frozenset("dmYyHMSIj")
# Names in the current locale, as strptime reads them.
_NAME_DIRECTIVES = {
    "a": calendar.day_abbr,
    "A": calendar.day_name,
    "b": calendar.month_abbr,
    "B": calendar.month_name,
}


def _directive_shape(directive: str, *, glued: bool) -> str:
    """Regex for one strptime directive; ``glued`` ones (``%Y%m%d``) have a fixed width."""
    if directive == "Y":
        return r"\d{4}"
    if directive == "j":
        return r"\d{3}" if glued else r"\d{1,3}"
    if directive == "f":
        return r"\d{1,6}"
    if directive == "%":
        return "%"
    if directive in _NAME_DIRECTIVES:
        return (
            "(?:" + "|".join(re.escape(name) for name in _NAME_DIRECTIVES[directive] if name) + ")"
        )
    if directive in _NUMERIC_DIRECTIVES:
        return r"\d{2}" if glued else r"\d{1,2}"
    return ".+?"


def _is_glued(parts: list[str], index: int) -> bool:
    """Whether directive ``parts[index]`` touches another numeric one, as in ``%Y%m%d``.

    ``parts`` alternates literals (even indices, possibly empty) and directives.
    """

    def numeric(position: int) -> bool:
        return 0 < position < len(parts) and parts[position][1] in _NUMERIC_DIRECTIVES

    return (parts[index - 1] == "" and numeric(index - 2)) or (
        parts[index + 1] == "" and numeric(index + 2)
    )


@lru_cache(maxsize=64)
def _date_shape(fmt: str) -> re.Pattern[str]:
    """A regex matching the *shape* of dates written in ``fmt`` (digits in place).

    A string with the right shape that ``strptime`` still rejects names a day or month
    that does not exist ("31/02/1980"), which is a different problem from garbage.

    Examples:
        >>> bool(_date_shape("%d/%m/%Y").fullmatch("31/02/1980"))
        True
        >>> bool(_date_shape("%Y%m%d").fullmatch("1980121"))
        False
    """
    parts = _FORMAT_PARTS.split(fmt)  # literals at even, directives at odd indices
    pieces = []
    for index, part in enumerate(parts):
        if index % 2 == 0:
            pieces.extend(r"\s+" if char.isspace() else re.escape(char) for char in part)
            continue
        pieces.append(_directive_shape(part[1], glued=_is_glued(parts, index)))
    return re.compile("".join(pieces), re.IGNORECASE)


def _check_range(value: date, earliest: date | None, latest: date | None) -> Cleaned[date]:
    """Keep ``value`` only if it lies within the inclusive ``[earliest, latest]``."""
    if (earliest is not None and value < earliest) or (latest is not None and value > latest):
        return Cleaned(None, DATE_OUT_OF_RANGE)
    return Cleaned(value)


def parse_date(
    raw: str | None,
    fmt: str | None,
    *,
    earliest: date | None = None,
    latest: date | None = None,
) -> Cleaned[date]:
    """Parse a date strictly, telling garbage apart from impossible days.

    With ``fmt`` the value must match it (``datetime.strptime``); without it, ISO
    ``YYYY-MM-DD`` is tried, then ``%d/%m/%Y``, ``%d.%m.%Y``, ``%Y%m%d`` and
    ``%d-%m-%Y``. A trailing time ("1980-02-01 00:00:00", "1980-02-01T00:00:00Z")
    is ignored unless ``fmt`` itself includes it.

    Args:
        raw: The raw date, possibly ``None``.
        fmt: A ``strptime`` format, or ``None`` for the common formats above.
        earliest: The earliest acceptable date, inclusive.
        latest: The latest acceptable date, inclusive.

    Returns:
        The date; or ``impossible_date`` for a date-shaped value whose day or month does
        not exist, ``unparseable_date`` for anything else, ``date_out_of_range`` outside
        ``[earliest, latest]``.

    Examples:
        >>> parse_date("1980-02-01T00:00:00", None)
        Cleaned(value=datetime.date(1980, 2, 1), problem=None)
        >>> parse_date("31/02/1980", None)
        Cleaned(value=None, problem='impossible_date')
        >>> parse_date("01.02.1880", "%d.%m.%Y", earliest=date(1900, 1, 1))
        Cleaned(value=None, problem='date_out_of_range')
    """
    text = _collapse(raw, "NFKC")
    if not text:
        return _MISSING
    formats = (fmt,) if fmt else _DEFAULT_DATE_FORMATS
    without_time = _TIME_SUFFIX.sub("", text)
    candidates = (text,) if without_time == text else (text, without_time)
    date_shaped = False
    for candidate in candidates:
        for date_format in formats:
            if not _date_shape(date_format).fullmatch(candidate):
                continue
            date_shaped = True
            try:
                parsed = datetime.strptime(candidate, date_format).date()
            except ValueError:
                continue
            return _check_range(parsed, earliest, latest)
    return Cleaned(None, IMPOSSIBLE_DATE if date_shaped else UNPARSEABLE_DATE)


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
    text = _collapse(raw, "NFKC").upper()
    if not text:
        return _MISSING
    rule = _POSTCODE_RULES.get(standardise_country(country) or "")
    if rule is None:
        return Cleaned(text)
    pattern, template = rule
    match = pattern.fullmatch(text)
    if match is None:
        return Cleaned(None, INVALID_POSTCODE)
    return Cleaned(template.format(*match.groups()))


# --------------------------------------------------------------------------------------
# Addresses
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
    text = _collapse(raw, "NFC")
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
