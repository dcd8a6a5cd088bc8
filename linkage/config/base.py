"""Shared pieces of the config schema: strict models, name patterns, the error type, the
text encoding type and :func:`shown`, which every value quoted in a message goes through."""

from __future__ import annotations

import codecs
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict

from linkage.errors import MeldError

SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
ISO_COUNTRY_PATTERN = r"^[A-Za-z]{2}$"
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
CUSTOM_FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"

MAX_SHOWN_CHARS = 80
"""Longest value quoted in a config error; longer ones are cut and end in ``...``."""

_PREFERRED_ENCODING_NAMES = {"iso8859-1": "latin-1", "cp1252": "windows-1252"}
"""Codec names shown as the config has always spelled them (so fingerprints stay)."""


class ConfigError(MeldError, ValueError):
    """The project config is wrong; the message names the file, source and key."""


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, and values never change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def shown(value: object, limit: int = MAX_SHOWN_CHARS) -> str:
    """``repr(value)``, cut to ``limit`` characters with ``...`` when longer.

    Examples:
        >>> shown("utf-8")
        "'utf-8'"
        >>> shown("x" * 200, limit=12)
        "'xxxxxxxx..."
    """
    text = repr(value) if len(str(value)) < 10 * limit else repr(str(value)[: 2 * limit])
    return text if len(text) <= limit else text[: limit - 3] + "..."


def normalise_encoding(value: str) -> str:
    """A text encoding Python's ``codecs`` knows, under its canonical name.

    ``utf8``, ``UTF-8`` become ``utf-8``; ``cp1252`` becomes ``windows-1252`` and
    ``iso-8859-1`` becomes ``latin-1`` (the names Meld has always used); any other codec
    keeps Python's name (``iso8859-15``, ``utf-16``, ``cp850``, ...).

    Raises:
        ValueError: Python knows no such codec, or it does not turn bytes into text
            (``base64``, ``rot13``, ``undefined``).

    Examples:
        >>> normalise_encoding("CP1252"), normalise_encoding("ISO-8859-15")
        ('windows-1252', 'iso8859-15')
    """
    try:
        name = codecs.lookup(value).name
    except (LookupError, ValueError):
        raise ValueError(
            f"unknown encoding {shown(value)}; give a name Python's codecs know, "
            "e.g. 'utf-8', 'windows-1252', 'iso-8859-15', 'utf-16'"
        ) from None
    try:
        "id,name\n".encode(name).decode(name)
    except (LookupError, UnicodeError):
        raise ValueError(f"encoding {shown(value)} does not decode text files") from None
    return _PREFERRED_ENCODING_NAMES.get(name, name)


Encoding = Annotated[str, AfterValidator(normalise_encoding)]
"""A text encoding of CSV and JSON files, checked and normalised by
:func:`normalise_encoding`."""
