"""Values shown to people, masked: a steward sees a value's shape (``j***@g***.com``),
never the value itself.

Countries and cities are shown as they are; postcodes keep two characters; e-mails,
phones and names keep one character per part; dates and identifiers show only their
format.

Examples:
    >>> mask_value("email", "john.smith@gmail.com")
    'j***@g***.com'
    >>> mask_value("date_of_birth", "1984-03-02")
    '9999-99-99'
"""

from __future__ import annotations

import re

from linkage.canonical import IDENTIFIER_FIELDS

__all__ = ["SHAPE_FIELDS", "UNMASKED_FIELDS", "mask_value"]

UNMASKED_FIELDS: frozenset[str] = frozenset({"country", "city"})
"""Fields whose values are not personal on their own and are shown as delivered."""

SHAPE_FIELDS: frozenset[str] = frozenset({"date_of_birth", *IDENTIFIER_FIELDS})
"""Fields shown only as their format (``9999-99-99``); their top values are top formats."""


_WORD = re.compile(r"[^\W\d_]+|\d+", re.UNICODE)


def _shape(value: str) -> str:
    """Digits become 9 and letters X or x, other characters stay: the value's format."""
    return "".join(
        "9" if c.isdigit() else ("X" if c.isupper() else "x") if c.isalpha() else c for c in value
    )


def _initials(value: str) -> str:
    """Each word as its first letter and ``***``, numbers as 9s, punctuation kept."""
    return _WORD.sub(
        lambda m: "9" * len(m.group()) if m.group().isdigit() else m.group()[0] + "***", value
    )


def _mask_email(value: str) -> str:
    user, at, domain = value.rpartition("@")
    if not at or not user or not domain:
        return _initials(value)
    host, dot, tld = domain.rpartition(".")
    if not dot or not host:
        return f"{user[0]}***@{domain[0]}***"
    return f"{user[0]}***@{host[0]}***.{tld}"


def _mask_phone(value: str) -> str:
    """Keep the layout, a leading ``+`` and two-digit country code, and the last two digits."""
    digits = [i for i, c in enumerate(value) if c.isdigit()]
    if len(digits) < 6:
        return _shape(value).replace("9", "*")
    keep = set(digits[-2:])
    if value.lstrip().startswith("+"):
        keep |= set(digits[:2])
    return "".join(c if i in keep or not c.isdigit() else "*" for i, c in enumerate(value))


def _mask_postcode(value: str) -> str:
    return value[:2] + "".join(" " if c.isspace() else "*" for c in value[2:])


def mask_value(field: str, value: str | None, *, max_length: int = 40) -> str | None:
    """Show a value's shape without the value, so it can go into reports.

    Countries and cities are shown as they are; postcodes keep two characters; e-mails,
    phones and names keep one character per part; dates and identifiers show only their
    format. Unknown fields are masked like names.

    Examples:
        >>> mask_value("email", "john.smith@gmail.com")
        'j***@g***.com'
        >>> mask_value("phone", "+46 70 123 45 12")
        '+46 ** *** ** 12'
        >>> mask_value("first_name", "Anna")
        'A*** (4 chars)'
        >>> mask_value("date_of_birth", "1984-03-02")
        '9999-99-99'
        >>> mask_value("postcode", "111 22")
        '11* **'
        >>> mask_value("city", "Malmö")
        'Malmö'
    """
    if value is None:
        return None
    if field in UNMASKED_FIELDS:
        masked = value
    elif field == "email":
        masked = _mask_email(value)
    elif field == "phone":
        masked = _mask_phone(value)
    elif field == "postcode":
        masked = _mask_postcode(value)
    elif field in SHAPE_FIELDS:
        masked = _shape(value)
    elif field in ("street", "address"):
        masked = _initials(value)
    else:
        masked = f"{_initials(value)} ({len(value)} chars)"
    return masked if len(masked) <= max_length else masked[: max_length - 1] + "…"
