"""What a standardisation function returns: the value and the problem found, if any.

Functions that can detect a data-quality problem return a :class:`Cleaned` holding the
standardised value and a short machine-readable reason (the constants ``INVALID_NAME``
... ``DATE_OUT_OF_RANGE``) so that problems can be counted and audited instead of
silently dropped.

Examples:
    >>> Cleaned("jorg", None).value
    'jorg'
    >>> MISSING
    Cleaned(value=None, problem=None)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = [
    "DATE_OUT_OF_RANGE",
    "IMPOSSIBLE_DATE",
    "INVALID_EMAIL",
    "INVALID_NAME",
    "INVALID_PHONE",
    "INVALID_POSTCODE",
    "MISSING",
    "UNPARSEABLE_DATE",
    "Cleaned",
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


MISSING: Cleaned = Cleaned(None, None)
"""A missing (or blank) input: no value and no problem."""
