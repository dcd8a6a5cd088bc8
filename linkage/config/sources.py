"""The ``sources`` and ``quality`` sections: where each source system's records are, how
its columns map to canonical fields, and the data-quality rules they must meet."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from linkage.canonical import CANONICAL_FIELDS, STAGED_COLUMNS
from linkage.config.base import (
    CUSTOM_FIELD_PATTERN,
    ENV_VAR_PATTERN,
    ISO_COUNTRY_PATTERN,
    Encoding,
    StrictModel,
    shown,
)
from linkage.ingest.raw_tables import LINEAGE_COLUMNS

RESERVED_FIELD_NAMES: frozenset[str] = frozenset(
    {
        *CANONICAL_FIELDS,
        *STAGED_COLUMNS,
        *LINEAGE_COLUMNS,
        "address",
        "unique_id",
        "source_dataset",
        "match_weight",
        "match_probability",
        "link_veto",
        "customer_id",
        "household_id",
    }
)
"""Names a custom field may not take: canonical fields, staged and lineage columns and
columns Meld or Splink add to pairs and customers."""
RESERVED_FIELD_PREFIXES: tuple[str, ...] = ("gamma_", "tf_", "bf_", "mw_", "match_")
"""Prefixes of the columns Splink adds per comparison."""


class FieldMapping(StrictModel):
    """Where a canonical field comes from in a source, and how to read it."""

    column: str = Field(min_length=1, description="Column name in the source file.")
    format: str | None = Field(
        default=None, description="strptime format for dates, e.g. '%d/%m/%Y'."
    )


class DatabaseSource(StrictModel):
    """A table or query in another database, read through DuckDB or SQLAlchemy.

    Credentials never sit in the YAML: a SQLAlchemy URL (PostgreSQL, MySQL, SQLite, ...)
    is read from the environment variable named by ``url_env``.
    """

    kind: Literal["duckdb", "sqlalchemy"] = Field(
        description="'duckdb' reads a DuckDB file; 'sqlalchemy' any database with a URL."
    )
    path: str | None = Field(default=None, description="DuckDB file (kind duckdb).")
    url_env: str | None = Field(
        default=None,
        pattern=ENV_VAR_PATTERN,
        description="Environment variable holding the SQLAlchemy URL (kind sqlalchemy).",
    )
    table: str | None = Field(default=None, min_length=1, description="Table to read.")
    query: str | None = Field(default=None, min_length=1, description="SELECT to run.")

    @model_validator(mode="after")
    def _one_location(self) -> DatabaseSource:
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        if self.kind == "duckdb" and not self.path:
            raise ValueError("kind duckdb needs 'path' (the DuckDB file)")
        if self.kind == "sqlalchemy" and not self.url_env:
            raise ValueError(
                "kind sqlalchemy needs 'url_env', the environment variable holding the URL"
            )
        return self


class FieldQualityRule(StrictModel):
    """Thresholds for one field's null and validity rates in a delivery."""

    max_null_rate: float | None = Field(
        default=None, ge=0.0, le=1.0, description="Highest share of rows without a value."
    )
    min_valid_rate: float | None = Field(
        default=None,
        ge=0.0,
        le=1.0,
        description="Lowest share of present values that pass validation.",
    )
    blocking: bool = Field(
        default=False, description="Stop downstream assets when the rule fails (else warn)."
    )


class QualityConfig(StrictModel):
    """Data-quality rules shared by all sources; a source may override per field."""

    fields: dict[str, FieldQualityRule] = Field(
        default_factory=lambda: {"*": FieldQualityRule(min_valid_rate=0.9)},
        description="Rules per canonical field; '*' applies to every mapped field.",
    )
    max_row_drop: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="Warn when a source's staged rows fall by more than this share.",
    )
    max_field_length: int = Field(
        default=1000, ge=10, description="Longer values are nulled as 'too_long'."
    )
    top_values: int = Field(default=10, ge=1, le=100, description="Top values in the report.")
    match_invalid_values: bool = Field(
        default=True,
        description="Phones, e-mails and postcodes that fail validation stay comparable "
        "for matching (flagged in data_quality_issues); false nulls them.",
    )

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldQualityRule]) -> dict[str, FieldQualityRule]:
        unknown = sorted(set(value) - set(CANONICAL_FIELDS) - {"*"})
        if unknown:
            raise ValueError(f"unknown canonical field(s) {shown(unknown)}")
        return value


class SourceConfig(StrictModel):
    """One source system: where its records are and how its columns map to canonical
    fields. Give either ``path`` (files) or ``database`` (a table or query)."""

    path: str | None = Field(
        default=None, min_length=1, description="File or glob: .csv, .parquet, .json, .jsonl."
    )
    database: DatabaseSource | None = None
    id_column: str = Field(min_length=1, description="The record's id in its source.")
    default_country: str | None = Field(
        default=None,
        pattern=ISO_COUNTRY_PATTERN,
        description="ISO country for phone numbers without a country code.",
    )
    delimiter: str | None = Field(default=None, max_length=1, description="CSV delimiter.")
    encoding: Encoding = Field(
        default="utf-8",
        description="Text encoding of CSV and JSON Lines files: any name Python's codecs "
        "know (utf-8, windows-1252, iso-8859-15, utf-16, ...).",
    )
    fields: dict[str, FieldMapping] = Field(min_length=1)
    required_fields: list[str] = Field(
        default_factory=list,
        description="Fields a row cannot do without: missing or invalid means quarantine.",
    )
    quality: dict[str, FieldQualityRule] = Field(
        default_factory=dict, description="Per-field rules overriding the project's."
    )
    custom_fields: dict[str, str] = Field(
        default_factory=dict,
        description="Custom field name to source column, e.g. {birth_place: place_of_birth}: "
        "staged as folded text, compared by exact match with term-frequency adjustment "
        "unless model.comparisons says otherwise.",
    )

    @field_validator("custom_fields")
    @classmethod
    def _custom_field_names(cls, value: dict[str, str]) -> dict[str, str]:
        for name, column in value.items():
            if not re.fullmatch(CUSTOM_FIELD_PATTERN, name):
                raise ValueError(
                    f"custom field name {shown(name)} must match {CUSTOM_FIELD_PATTERN} "
                    "(lower_snake_case, at most 40 characters)"
                )
            if name in RESERVED_FIELD_NAMES or name.startswith(RESERVED_FIELD_PREFIXES):
                raise ValueError(
                    f"custom field name {shown(name)} clashes with a canonical field or a column "
                    "Meld adds; choose another name"
                )
            if not isinstance(column, str) or not column:
                raise ValueError(f"custom field {shown(name)}: give the source column's name")
        return value

    @model_validator(mode="after")
    def _one_location(self) -> SourceConfig:
        if (self.path is None) == (self.database is None):
            raise ValueError("give exactly one of 'path' (files) or 'database'")
        unmapped = sorted(set(self.required_fields) - set(self.fields))
        if unmapped:
            raise ValueError(f"required_fields {shown(unmapped)} are not mapped in 'fields'")
        unknown = sorted(set(self.quality) - set(CANONICAL_FIELDS) - {"*"})
        if unknown:
            raise ValueError(f"quality: unknown canonical field(s) {shown(unknown)}")
        return self

    def quality_rule(self, field: str, project: QualityConfig) -> FieldQualityRule | None:
        """The rule for a field: this source's, else the project's, else the '*' ones."""
        for rules in (self.quality, project.fields):
            if field in rules:
                return rules[field]
        for rules in (self.quality, project.fields):
            if "*" in rules:
                return rules["*"]
        return None

    @field_validator("fields", mode="before")
    @classmethod
    def _column_shorthand(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        return {
            key: {"column": spec} if isinstance(spec, str) else spec for key, spec in value.items()
        }

    @field_validator("fields")
    @classmethod
    def _known_fields(cls, value: dict[str, FieldMapping]) -> dict[str, FieldMapping]:
        unknown = sorted(set(value) - set(CANONICAL_FIELDS))
        if unknown:
            raise ValueError(
                f"unknown canonical field(s) {shown(unknown)}; "
                f"expected some of {list(CANONICAL_FIELDS)}"
            )
        return value

    @field_validator("default_country")
    @classmethod
    def _upper_country(cls, value: str | None) -> str | None:
        return value.upper() if value else value
