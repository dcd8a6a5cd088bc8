"""The canonical customer schema every source is mapped onto.

Source configs map their own column names onto these fields. Staging turns them
into the matching columns below (folded, normalised) plus display columns that keep
accents and case for golden records.
"""

from __future__ import annotations

from collections.abc import Iterable

IDENTIFIER_FIELDS: tuple[str, ...] = (
    "national_id",
    "loyalty_card",
    "customer_number",
    "device_id",
    "cookie_id",
)
"""Optional identifiers that match only when exactly equal (see :mod:`linkage.ingest.identifiers`).
``national_id`` is stored only as a keyed hash."""

CANONICAL_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "full_name",
    "date_of_birth",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
    "country",
    "address",
    *IDENTIFIER_FIELDS,
)
"""Fields a source may map. ``full_name`` and ``address`` are split during staging."""

IDENTIFYING_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "email",
    "phone",
    *IDENTIFIER_FIELDS,
)
"""A staged record needs at least one of these to be matchable."""

STAGED_COLUMNS: dict[str, str] = {
    "unique_id": "VARCHAR",
    "source_system": "VARCHAR",
    "source_record_id": "VARCHAR",
    "source_row_number": "BIGINT",
    "loaded_at": "TIMESTAMP",
    "first_name": "VARCHAR",
    "last_name": "VARCHAR",
    "date_of_birth": "DATE",
    "email": "VARCHAR",
    "phone": "VARCHAR",
    "street": "VARCHAR",
    "postcode": "VARCHAR",
    "city": "VARCHAR",
    "country": "VARCHAR",
    **dict.fromkeys(IDENTIFIER_FIELDS, "VARCHAR"),
    "first_name_display": "VARCHAR",
    "last_name_display": "VARCHAR",
    "street_display": "VARCHAR",
    "city_display": "VARCHAR",
    "phone_national": "VARCHAR",
    "phone_valid": "BOOLEAN",
    "first_name_phonetic": "VARCHAR",
    "last_name_phonetic": "VARCHAR",
}
"""Columns of every ``staged_<source>`` table and of ``customer_records``, in order.
The last four are matching aids: the phone's national significant number (the same
whichever country a national-format number was read in), whether the phone passed
validation (an invalid number keeps its matching form in ``phone``), and the Metaphone
code of each matching name.
``unique_id`` is ``<source_system>:<source_record_id>``, the record's id across sources."""

CUSTOM_FIELD_TYPE = "VARCHAR"
"""Custom fields (``custom_fields:`` of a source) are staged as folded text."""


def staged_columns(custom_fields: Iterable[str] = ()) -> dict[str, str]:
    """:data:`STAGED_COLUMNS` followed by the project's custom fields, as text.

    Examples:
        >>> list(staged_columns(["birth_place"]))[-2:]
        ['city_display', 'birth_place']
    """
    return {**STAGED_COLUMNS, **dict.fromkeys(custom_fields, CUSTOM_FIELD_TYPE)}


MATCHING_COLUMNS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "date_of_birth",
    "email",
    "phone",
    "street",
    "postcode",
    "city",
    "country",
    *IDENTIFIER_FIELDS,
)
"""Columns the linkage model compares."""
