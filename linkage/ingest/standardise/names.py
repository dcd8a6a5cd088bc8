"""Names: given names and surnames for matching, and free-text full names split.

Titles and honorifics (Dr, Mr, Herr, Frau, Pan, Pani, Fru, Hr, ...) at the start and
suffixes (Jr, Sr, II, III, PhD, MD) at the end are removed; the rules cover Swedish,
Norwegian, German, Polish and British names.

Examples:
    >>> standardise_name("Dr. Jörg")
    Cleaned(value='jorg', problem=None)
    >>> split_full_name("Herr Müller, Jörg")
    ('Jörg', 'Müller')
"""

from __future__ import annotations

import re
from functools import lru_cache

from unidecode import unidecode

from linkage.ingest.standardise.cleaned import INVALID_NAME, MISSING, Cleaned
from linkage.ingest.standardise.text import (
    collapse,
    fold_for_matching,
    needs_recase,
    recase_words,
)

__all__ = ["split_full_name", "standardise_name"]

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
    text = collapse(raw, "NFKC")
    if not text:
        return MISSING
    if _HAS_DIGIT.search(text) or "@" in text:
        return Cleaned(None, INVALID_NAME)
    folded = fold_for_matching(" ".join(_without_honorifics(_name_tokens(text))))
    if folded is None or folded in _NAME_PLACEHOLDERS:
        return Cleaned(None, INVALID_NAME)
    return Cleaned(folded)


def _display_name(tokens: list[str], *, surname: bool = False) -> str:
    """Join name tokens for display, re-casing them only if written in one case."""
    text = " ".join(tokens)
    if not needs_recase(text):
        return text
    return recase_words(tokens, leading_connector_lower=surname)


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
    text = collapse(raw, "NFC")
    segments = [tokens for tokens in map(_name_tokens, text.split(",")) if tokens]
    # Segments holding only honorifics ("John Smith, Jr.") do not make a comma form.
    names = [core for core in map(_without_honorifics, segments) if core]
    if len(names) >= 2:  # "Last, First [Middle]"
        return _display_name(names[1][:1]), _display_name(names[0], surname=True)
    return _split_tokens(names[0] if names else [])
