"""Ingestion assets: ``raw_<source>`` and ``staged_<source>`` per configured source,
then ``quarantined_records`` and ``customer_records`` over all of them."""

import dagster as dg
from dagster import AssetExecutionContext
from duckdb import DuckDBPyConnection

from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.canonical import staged_columns
from linkage.config.project import ProjectConfig, SourceConfig
from linkage.ingest.data_quality import record_staging_run
from linkage.ingest.deliveries import DatabaseSpec, SourceError, SourceFile, load_raw_source
from linkage.ingest.identifiers import MissingKeyError, hashing_key, national_id_hasher
from linkage.ingest.staging import (
    QUALITY_ISSUE_COLUMNS,
    QUARANTINE_COLUMNS,
    FieldSpec,
    stage_source,
)
from linkage.tables import CUSTOMER_RECORDS, DATA_QUALITY_ISSUES, QUARANTINED_RECORDS
from linkage.warehouse import quote, table_columns, table_exists

INGESTION_GROUP = "ingestion"


def _database_spec(project: ProjectConfig, source: SourceConfig) -> DatabaseSpec | None:
    if source.database is None:
        return None
    db = source.database
    return DatabaseSpec(
        kind=db.kind,
        path=project.resolve(db.path) if db.path else None,
        url_env=db.url_env,
        table=db.table,
        query=db.query,
    )


def _deliveries_table(files: tuple[SourceFile, ...]) -> dg.MetadataValue:
    columns = ["file", "status", "rows", "new", "changed", "unchanged", "unreadable", "sha256"]
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "file": f.path.name,
                    "status": "already loaded" if f.skipped else "loaded",
                    "rows": f.rows,
                    "new": f.new_records,
                    "changed": f.changed_records,
                    "unchanged": f.unchanged_records,
                    "unreadable": f.problem_rows,
                    "sha256": f.sha256[:16],
                }
            )
            for f in files
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn(c, "string" if c in ("file", "status", "sha256") else "int")
                for c in columns
            ]
        ),
    )


def _raw_asset(project: ProjectConfig, name: str, source: SourceConfig) -> dg.AssetsDefinition:
    pattern = project.resolve(source.path) if source.path else None
    database = _database_spec(project, source)
    location = str(pattern) if pattern else database.describe() if database else ""
    mapped = {f"fields.{field}": spec.column for field, spec in source.fields.items()}
    mapped.update(
        {f"custom_fields.{field}": column for field, column in source.custom_fields.items()}
    )
    hashed = source.fields.get("national_id")

    @dg.asset(
        name=f"raw_{name}",
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        description=(
            f"Current records of source system `{name}` (from `{source.path or location}`), "
            "every column as text. New or changed deliveries are appended to "
            f"`raw_history_{name}` (a file loaded before is skipped: loading is idempotent); "
            "this table holds each record's newest version with its file, row, line, "
            "delivery and SHA-256 fingerprint. Unreadable rows are kept for quarantine."
            + (" National ids are stored only as a keyed hash." if hashed else "")
        ),
        metadata={"source_system": name, "location": location},
    )
    def raw(context: AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        where = f"{project.config_path}: sources.{name}"
        transforms = {}
        if hashed is not None:
            try:
                key = hashing_key(project.national_id_key_env)
            except MissingKeyError as exc:
                raise dg.Failure(description=f"{where}: {exc}") from exc
            transforms[hashed.column] = national_id_hasher(key)
        with warehouse.connect() as con:
            try:
                result = load_raw_source(
                    con,
                    source_system=name,
                    pattern=pattern,
                    database=database,
                    id_column=source.id_column,
                    mapped_columns=mapped,
                    delimiter=source.delimiter,
                    encoding=source.encoding,
                    column_transforms=transforms,
                    run_id=context.run_id,
                )
            except SourceError as exc:
                raise dg.Failure(description=f"{where}: {exc}") from exc
            metadata = table_metadata(con, result.table)
        new = result.new_files
        context.log.info(
            "%d new delivery(ies), %d already loaded; %d current records",
            len(new),
            len(result.skipped_files),
            result.rows,
        )
        unreadable = sum(f.problem_rows for f in new)
        if unreadable:
            context.log.warning(
                "%d row(s) could not be read faithfully (malformed or undecodable); "
                "they go to quarantine",
                unreadable,
            )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "deliveries": _deliveries_table(result.files),
                "new_deliveries": len(new),
                "skipped_deliveries": len(result.skipped_files),
                "new_records": sum(f.new_records for f in new),
                "changed_records": sum(f.changed_records for f in new),
                "unreadable_rows": unreadable,
                "history_rows": result.history_rows,
            }
        )

    return raw


def _staged_asset(project: ProjectConfig, name: str, source: SourceConfig) -> dg.AssetsDefinition:
    fields = {field: FieldSpec(spec.column, spec.format) for field, spec in source.fields.items()}

    @dg.asset(
        name=f"staged_{name}",
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        deps=[f"raw_{name}"],
        description=(
            f"Source `{name}` in the canonical schema, standardised for matching: names "
            "lower-cased with accents folded (display forms kept), e-mails normalised, phones "
            "in E.164, dates parsed, free-text names and addresses split, identifiers "
            f"normalised. Unusable rows go to `quarantine_{name}`; invalid field values are "
            f"nulled and listed in `quality_issues_{name}`."
        ),
        metadata={"source_system": name},
    )
    def staged(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            result = stage_source(
                con,
                source_system=name,
                fields=fields,
                default_country=source.default_country,
                dob_range=project.dob_range,
                required_fields=source.required_fields,
                max_field_length=project.quality.max_field_length,
                custom_fields=source.custom_fields,
            )
            record_staging_run(
                con,
                source_system=name,
                run_id=context.run_id,
                raw_rows=result.raw_rows,
                staged_rows=result.staged_rows,
                quarantined_rows=result.quarantined_rows,
            )
            metadata = table_metadata(con, result.staged_table)
        context.log.info(
            "staged %d of %d rows, quarantined %d",
            result.staged_rows,
            result.raw_rows,
            result.quarantined_rows,
        )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "raw_rows": result.raw_rows,
                "quarantined_rows": result.quarantined_rows,
                "quarantine_reasons": result.quarantine_reasons,
                "invalid_values_by_field": result.field_problems,
            }
        )

    return staged


def _union_asset(
    project: ProjectConfig,
    name: str,
    table_prefix: str,
    columns: dict[str, str],
    description: str,
    optional: tuple[str, ...] = (),
) -> dg.AssetsDefinition:
    """``optional`` columns (custom fields) are NULL for sources whose table lacks them."""
    sources = list(project.sources)

    @dg.asset(
        name=name,
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        deps=[f"staged_{source}" for source in sources],
        description=description,
    )
    def union(warehouse: WarehouseResource) -> dg.MaterializeResult:
        def select(con: DuckDBPyConnection, table: str) -> str:
            present = set(table_columns(con, table))
            items = ", ".join(
                f"NULL::{kind} AS {quote(c)}" if c in optional and c not in present else quote(c)
                for c, kind in columns.items()
            )
            return f"SELECT {items} FROM {quote(table)}"

        with warehouse.connect() as con:
            selects = [
                select(con, table_prefix + source)
                for source in sources
                if table_exists(con, table_prefix + source)
            ]
            if selects:
                con.execute(
                    f"CREATE OR REPLACE TABLE {quote(name)} AS "
                    + " UNION ALL BY NAME ".join(selects)
                )
            else:
                typed = ", ".join(f"{quote(c)} {t}" for c, t in columns.items())
                con.execute(f"CREATE OR REPLACE TABLE {quote(name)} ({typed})")
            metadata = table_metadata(con, name)
            by_source = dict(
                con.execute(
                    f"SELECT source_system, count(*) FROM {quote(name)} GROUP BY 1 ORDER BY 1"
                ).fetchall()
            )
        return dg.MaterializeResult(
            metadata={**metadata, "rows_by_source": {str(k): int(v) for k, v in by_source.items()}}
        )

    return union


def build_ingestion_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """Raw and staged assets for every configured source, plus the two union tables."""
    assets: list[dg.AssetsDefinition] = []
    for name, source in project.sources.items():
        assets += [_raw_asset(project, name, source), _staged_asset(project, name, source)]
    assets.append(
        _union_asset(
            project,
            QUARANTINED_RECORDS,
            "quarantine_",
            QUARANTINE_COLUMNS,
            "Every source row that could not be used, with its source, row number, the field "
            "at fault, the reason and the raw values. Nothing is dropped silently: each raw "
            "row is either here or in customer_records.",
        )
    )
    assets.append(
        _union_asset(
            project,
            DATA_QUALITY_ISSUES,
            "quality_issues_",
            QUALITY_ISSUE_COLUMNS,
            "Every field value that failed validation (bad e-mail, phone, date, postcode, "
            "name, identifier, or too long), per source record and field, with the problem "
            "and the raw value. The value was nulled for matching; the record was still "
            "staged.",
        )
    )
    assets.append(
        _union_asset(
            project,
            CUSTOMER_RECORDS,
            "staged_",
            staged_columns(project.custom_fields),
            "All standardised records of all sources in one table, keyed by unique_id "
            "(`<source_system>:<source_record_id>`): the input of the linkage model.",
            optional=project.custom_fields,
        )
    )
    return assets
