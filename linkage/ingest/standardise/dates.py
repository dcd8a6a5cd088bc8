"""Dates parsed strictly, telling garbage apart from days that do not exist.

Examples:
    >>> parse_date("1980-02-01T00:00:00", None)
    Cleaned(value=datetime.date(1980, 2, 1), problem=None)
    >>> parse_date("31/02/1980", None)
    Cleaned(value=None, problem='impossible_date')
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime
from functools import lru_cache

from linkage.ingest.standardise.cleaned import (
    DATE_OUT_OF_RANGE,
    IMPOSSIBLE_DATE,
    MISSING,
    UNPARSEABLE_DATE,
    Cleaned,
)
from linkage.ingest.standardise.text import collapse

__all__ = ["parse_date"]

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
    text = collapse(raw, "NFKC")
    if not text:
        return MISSING
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
