"""The ingestion steps of a run, one call each: load a source's deliveries into
``raw_<source>``, stage them into ``staged_<source>``, and union every source.

Each step takes a plain spec that :class:`linkage.config.ProjectConfig` builds from the
project config (:meth:`~linkage.config.ProjectConfig.raw_source_spec`,
:meth:`~linkage.config.ProjectConfig.staging_spec`), so it runs without Dagster.

Examples:
    ```py
    loaded = load_source(con, project.raw_source_spec("crm_contacts"), run_id="r1")
    staged = stage_and_record(con, project.staging_spec("crm_contacts"), run_id="r1")
    ```
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import duckdb

from linkage.ingest.deliveries import RawLoadResult, load_raw_source
from linkage.ingest.identifiers import hashing_key, national_id_hasher
from linkage.ingest.quality.staging_runs import record_staging_run
from linkage.ingest.readers.database import DatabaseSpec
from linkage.ingest.staging import FieldSpec, StageResult, stage_source


@dataclass(frozen=True)
class RawSourceSpec:
    """Where a source's records are and which of its columns Meld reads."""

    source_system: str
    id_column: str
    mapped_columns: Mapping[str, str]
    """Config key (for messages) to source column, for every mapped field."""
    pattern: Path | None = None
    database: DatabaseSpec | None = None
    delimiter: str | None = None
    encoding: str = "utf-8"
    national_id_column: str | None = None
    """Source column of the national id, stored only as a keyed hash."""
    national_id_key_env: str | None = None
    """Environment variable holding the hashing key."""


@dataclass(frozen=True)
class StagingSpec:
    """How a source's raw columns become canonical, standardised fields."""

    source_system: str
    fields: Mapping[str, FieldSpec]
    default_country: str | None = None
    dob_range: tuple[date, date] | None = None
    required_fields: Sequence[str] = ()
    max_field_length: int = 1000
    custom_fields: Mapping[str, str] = field(default_factory=dict)
    match_invalid_values: bool = True
    """Invalid phones, e-mails and postcodes keep a comparable form for matching."""


def load_source(
    con: duckdb.DuckDBPyConnection, spec: RawSourceSpec, *, run_id: str | None = None
) -> RawLoadResult:
    """Load a source's new deliveries into ``raw_<source>`` (see
    :func:`linkage.ingest.deliveries.load_raw_source`); national ids are hashed with the
    key from ``spec.national_id_key_env`` before anything is written.

    Raises:
        MissingKeyError: The source maps a national id and the key is not set.
        SourceError: A file or database cannot be read as the spec says.
    """
    transforms: dict[str, Callable[[str], str]] = {}
    if spec.national_id_column is not None:
        key = hashing_key(spec.national_id_key_env)
        transforms[spec.national_id_column] = national_id_hasher(key)
    return load_raw_source(
        con,
        source_system=spec.source_system,
        pattern=spec.pattern,
        database=spec.database,
        id_column=spec.id_column,
        mapped_columns=dict(spec.mapped_columns),
        delimiter=spec.delimiter,
        encoding=spec.encoding,
        column_transforms=transforms,
        run_id=run_id,
    )


def stage_and_record(
    con: duckdb.DuckDBPyConnection, spec: StagingSpec, *, run_id: str
) -> StageResult:
    """Stage ``raw_<source>`` into ``staged_<source>`` (quarantining unusable rows) and
    record the run's counts in ``staging_runs`` for the row-count check."""
    result = stage_source(
        con,
        source_system=spec.source_system,
        fields=dict(spec.fields),
        default_country=spec.default_country,
        dob_range=spec.dob_range,
        required_fields=spec.required_fields,
        max_field_length=spec.max_field_length,
        custom_fields=spec.custom_fields,
        match_invalid_values=spec.match_invalid_values,
    )
    record_staging_run(
        con,
        source_system=spec.source_system,
        run_id=run_id,
        raw_rows=result.raw_rows,
        staged_rows=result.staged_rows,
        quarantined_rows=result.quarantined_rows,
    )
    return result
