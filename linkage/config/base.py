"""Shared pieces of the config schema: strict models, name patterns and the error type."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from linkage.errors import MeldError

SOURCE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"
ISO_COUNTRY_PATTERN = r"^[A-Za-z]{2}$"
ENV_VAR_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,99}$"
CUSTOM_FIELD_PATTERN = r"^[a-z][a-z0-9_]{0,39}$"


class ConfigError(MeldError, ValueError):
    """The project config is wrong; the message names the file, source and key."""


class StrictModel(BaseModel):
    """A config section: unknown keys are errors, and values never change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
