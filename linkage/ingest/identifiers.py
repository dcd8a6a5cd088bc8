"""Identifiers beyond names: national ids, loyalty cards, device and cookie ids,
customer numbers.

They are exact-match evidence, so standardising them means removing the formatting
people and systems add (spaces, dashes, dots, case) and nothing more. A national id
is personal data of the most sensitive kind: Meld keeps only a keyed hash
(HMAC-SHA256) of its normalised form, with the key taken from an environment
variable, so equal ids still match while the warehouse never holds the number.

Examples:
    ```py
    normalise_identifier(" 1234-5678 ", "loyalty_card").value   # '12345678'
    keyed_hash("198501011234", b"secret")                      # 64 hex characters
    ```
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable

from linkage.canonical import IDENTIFIER_FIELDS
from linkage.errors import MeldError
from linkage.ingest.standardise.cleaned import Cleaned

__all__ = [
    "IDENTIFIER_FIELDS",
    "MissingKeyError",
    "hash_national_id",
    "hashing_key",
    "keyed_hash",
    "national_id_hasher",
    "normalise_identifier",
]

CASE_SENSITIVE_IDS: frozenset[str] = frozenset({"device_id", "cookie_id"})
"""Identifiers issued by machines: kept as given, only trimmed."""

INVALID_IDENTIFIER = "invalid_identifier"
MIN_IDENTIFIER_LENGTH = 4
MAX_IDENTIFIER_LENGTH = 200
DEFAULT_NATIONAL_ID_KEY_ENV = "MELD_NATIONAL_ID_KEY"

_FORMATTING = re.compile(r"[\s\-./_]+")
_PLACEHOLDER = re.compile(r"^(.)\1*$")  # 0000, XXXX, ----


class MissingKeyError(MeldError, RuntimeError):
    """The environment variable holding the national-id hashing key is not set."""


def normalise_identifier(raw: str | None, field: str) -> Cleaned[str]:
    """Strip formatting from an identifier; reject placeholders and implausible lengths.

    Args:
        raw: The value as delivered.
        field: One of :data:`IDENTIFIER_FIELDS`; device and cookie ids keep their case
            and inner punctuation, the others are upper-cased without separators.

    Returns:
        The normalised identifier, or a problem ``invalid_identifier``.

    Examples:
        >>> normalise_identifier("19850101-1234", "national_id").value
        '198501011234'
        >>> normalise_identifier("0000", "loyalty_card").problem
        'invalid_identifier'
    """
    if raw is None:
        return Cleaned(None)
    text = raw.strip()
    if not text:
        return Cleaned(None)
    value = text if field in CASE_SENSITIVE_IDS else _FORMATTING.sub("", text).upper()
    if (
        len(value) < MIN_IDENTIFIER_LENGTH
        or len(value) > MAX_IDENTIFIER_LENGTH
        or _PLACEHOLDER.match(value)
        or any(ch.isspace() for ch in value)
    ):
        return Cleaned(None, INVALID_IDENTIFIER)
    return Cleaned(value)


def keyed_hash(value: str, key: bytes) -> str:
    """HMAC-SHA256 of a normalised identifier, as hex."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()


def hashing_key(env_var: str = DEFAULT_NATIONAL_ID_KEY_ENV) -> bytes:
    """The national-id hashing key from the environment.

    Raises:
        MissingKeyError: The variable is unset or empty; the message says which.
    """
    value = os.environ.get(env_var, "")
    if not value:
        raise MissingKeyError(
            f"national_id is mapped but the hashing key is missing: set the environment "
            f"variable {env_var} (national ids are stored only as a keyed hash)"
        )
    return value.encode("utf-8")


def hash_national_id(raw: str | None, key: bytes) -> Cleaned[str]:
    """Normalise a national id and replace it by its keyed hash.

    Examples:
        >>> a = hash_national_id("850101-1234", b"k").value
        >>> a == hash_national_id("8501011234", b"k").value
        True
    """
    cleaned = normalise_identifier(raw, "national_id")
    if cleaned.value is None:
        return cleaned
    return Cleaned(keyed_hash(cleaned.value, key))


INVALID_HASH_TOKEN = "<invalid>"
"""Stored instead of a national id too malformed to hash (the value is not kept)."""


def national_id_hasher(key: bytes) -> Callable[[str], str]:
    """A function the loader applies to each raw national id before writing anything:
    the keyed hash of its normalised form, or :data:`INVALID_HASH_TOKEN`.

    Examples:
        >>> hasher = national_id_hasher(b"k")
        >>> hasher("0000")
        '<invalid>'
    """

    def hasher(raw: str) -> str:
        return hash_national_id(raw, key).value or INVALID_HASH_TOKEN

    return hasher
