"""Keyed hashes (HMAC-SHA256) of personal values, and the key they are made with.

An erasure keeps no personal data, only keyed hashes: of the subject (in the ledger)
and of each erased record's ``(source, record id)``, e-mail and phone (in the deny
list). Without the key a hash cannot be tested against guesses, so a short record id
or a phone number cannot be found by trying every candidate.

The key comes from the environment variable :data:`KEY_ENV` when set, else from the
file :data:`KEY_FILE_NAME` beside the warehouse, created once with mode 0600. Losing
the key makes the deny list useless, so back the file up with the warehouse; a wrong
key is detected through :func:`key_id` rather than silently letting erased records in.

Values are put in one form before hashing, so the forms a source delivers all give
the same hash: e-mails standardised (:func:`email_form`), phones as their full number
and their national significant number (:func:`phone_forms`).

Examples:
    >>> key = b"k" * 32
    >>> keyed_hash(key, "email", "anna@example.com") == keyed_hash(key, "email", "anna@example.com")
    True
    >>> keyed_hash(key, "email", "anna@example.com") == keyed_hash(key, "phone", "anna@example.com")
    False
    >>> sorted(phone_forms("+46 70-123 45 67")) == sorted(phone_forms("0046701234567"))
    True
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import re
import secrets
from pathlib import Path

from linkage.errors import MeldError
from linkage.ingest.standardise.contact import phone_match_forms, standardise_email

logger = logging.getLogger(__name__)

KEY_ENV = "MELD_ERASURE_KEY"
"""Environment variable holding the erasure key (any text of 16 characters or more)."""
KEY_FILE_NAME = ".meld_erasure_key"
"""The key file, in the warehouse's folder, used when :data:`KEY_ENV` is not set."""
MIN_KEY_CHARS = 16
MIN_PHONE_DIGITS = 6
_KEY_ID_LABEL = "meld-erasure-key-id"
_PHONE_TEXT = re.compile(r"^[\s\d+()./-]+$")


class ErasureKeyError(MeldError, RuntimeError):
    """The erasure key is missing, too short or not the one the deny list was made with."""


def key_file(warehouse: Path) -> Path:
    """Where the key file of a warehouse lives.

    Examples:
        >>> key_file(Path("/data/meld/warehouse.duckdb")).as_posix()
        '/data/meld/.meld_erasure_key'
    """
    return warehouse.parent / KEY_FILE_NAME


def _from_env() -> bytes | None:
    text = os.environ.get(KEY_ENV)
    if text is None or not text.strip():
        return None
    if len(text.strip()) < MIN_KEY_CHARS:
        raise ErasureKeyError(
            f"{KEY_ENV} is set but shorter than {MIN_KEY_CHARS} characters; "
            "use a long random value (for example `openssl rand -hex 32`)"
        )
    return text.strip().encode("utf-8")


def _create_key_file(path: Path) -> bytes:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = secrets.token_hex(32)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(text + "\n")
    logger.info("created the erasure key file %s (mode 0600); back it up", path)
    return text.encode("utf-8")


def erasure_key(warehouse: Path | None, *, create: bool) -> bytes | None:
    """The erasure key: :data:`KEY_ENV`, else the key file beside ``warehouse``.

    Args:
        warehouse: The warehouse file (None for an in-memory database: env only).
        create: Create the key file when there is no key yet (an erasure does; the
            ingestion filter does not, since a missing key there is an error).

    Returns:
        The key, or None when there is none and ``create`` is False.

    Raises:
        ErasureKeyError: The environment key is too short, or the key file is empty.
    """
    env = _from_env()
    if env is not None:
        return env
    if warehouse is None:
        return None
    path = key_file(warehouse)
    if path.exists():
        text = path.read_text(encoding="utf-8").strip()
        if len(text) < MIN_KEY_CHARS:
            raise ErasureKeyError(f"the erasure key file {path} is empty or too short")
        return text.encode("utf-8")
    return _create_key_file(path) if create else None


def keyed_hash(key: bytes, kind: str, value: str) -> str:
    """HMAC-SHA256 of ``value`` under ``key``, separated by ``kind`` (hex)."""
    message = f"{kind}\x1f{value}".encode()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def key_id(key: bytes) -> str:
    """A short fingerprint of the key, stored with each deny-list entry, so a different
    key is noticed (it reveals nothing of the key).

    Examples:
        >>> len(key_id(b"x" * 32))
        16
    """
    return keyed_hash(key, "key", _KEY_ID_LABEL)[:16]


def record_hash(key: bytes, source_system: str, record_id: str) -> str:
    """Keyed hash of one source record, ``(source, record id)``."""
    return keyed_hash(key, "record", f"{source_system}\x1f{record_id.strip()}")


def email_form(raw: str | None) -> str | None:
    """The form an e-mail is hashed in: standardised, else trimmed and lower-case.

    Examples:
        >>> email_form(" Anna.Berg@Example.COM ")
        'anna.berg@example.com'
        >>> email_form("") is None
        True
    """
    if raw is None or not raw.strip():
        return None
    return standardise_email(raw).value or raw.strip().lower()


def phone_forms(raw: str | None) -> set[str]:
    """The digit forms a phone is hashed in: its full number (country code and all,
    when it has one) and its national significant number (no country code, no trunk
    ``0``), so the national and international spellings of a number meet; numbers with
    fewer than six digits give none.

    Examples:
        >>> sorted(phone_forms("070-123 45 67"))
        ['0701234567', '701234567']
        >>> sorted(phone_forms("+46 70 123 45 67"))
        ['46701234567', '701234567']
        >>> phone_forms("0046701234567") == phone_forms("+46701234567")
        True
        >>> phone_forms("n/a")
        set()
    """
    if raw is None:
        return set()
    forms = phone_match_forms(raw, None)
    found = {forms.number.lstrip("+") if forms.number else None, forms.national}
    return {f for f in found if f and f.isdigit() and len(f) >= MIN_PHONE_DIGITS}


def looks_like_phone(text: str) -> bool:
    """Whether ``text`` reads as a phone number: only digits, spaces and ``+()./-``,
    with at least six digits.

    Examples:
        >>> looks_like_phone("+44 7741 356704"), looks_like_phone("cus_12ab")
        (True, False)
    """
    return bool(_PHONE_TEXT.match(text)) and bool(phone_forms(text))
