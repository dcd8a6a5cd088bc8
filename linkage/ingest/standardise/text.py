"""Text in the two forms standardisation produces, and the helpers they share.

* the *display* form (:func:`clean_display`) keeps accents and sensible capitals for
  people to read;
* the *matching* form (:func:`fold_for_matching`) is lower-case ASCII for comparisons.

:func:`collapse` (Unicode normalisation, invisible characters dropped, whitespace
collapsed) is the first step of every standardisation function.

Examples:
    >>> fold_for_matching("  Jörg   MÜLLER ")
    'jorg muller'
    >>> clean_display("anna-karin o'brien")
    "Anna-Karin O'Brien"
"""

from __future__ import annotations

import re
import unicodedata

from unidecode import unidecode

__all__ = ["clean_display", "collapse", "fold_for_matching", "needs_recase", "recase_words"]

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


def collapse(text: str | None, form: str) -> str:
    """Unicode-normalise, drop invisible characters and collapse whitespace.

    Examples:
        >>> collapse("  Anna\\u00a0 Karin\\u200b ", "NFC")
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


def needs_recase(text: str) -> bool:
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


def recase_words(words: list[str], *, leading_connector_lower: bool = False) -> str:
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
    cleaned = collapse(text, "NFC")
    if not cleaned:
        return None
    if not needs_recase(cleaned):
        return cleaned
    return recase_words(cleaned.split(" "))
