"""Ingestion assets: ``raw_<source>`` and ``staged_<source>`` per configured source,
then ``quarantined_records`` and ``customer_records`` over all of them."""

from collections.abc import Callable

import dagster as dg
from dagster import AssetExecutionContext

from assets.failures import failure_at
from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.canonical import staged_columns
from linkage.config import ProjectConfig, SourceConfig
from linkage.ingest.quarantine import QUALITY_ISSUE_COLUMNS, QUARANTINE_COLUMNS
from linkage.ingest.raw_tables import SourceFile
from linkage.ingest.steps import load_source, stage_and_record
from linkage.ingest.union import union_tables
from linkage.tables import (
    CUSTOMER_RECORDS,
    DATA_QUALITY_ISSUES,
    QUARANTINED_RECORDS,
    quality_issues_table,
    quarantine_table,
    raw_history_table,
    raw_table,
    staged_table,
)

INGESTION_GROUP = "ingestion"


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
    spec = project.raw_source_spec(name)
    location = (
        str(spec.pattern) if spec.pattern else spec.database.describe() if spec.database else ""
    )

    @dg.asset(
        name=raw_table(name),
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        description=(
            f"Current records of source system `{name}` (from `{source.path or location}`), "
            "every column as text. New or changed deliveries are appended to "
            f"`{raw_history_table(name)}` (a file loaded before is skipped: loading is "
            "idempotent); this table holds each record's newest version with its file, row, "
            "line, delivery and SHA-256 fingerprint. Unreadable rows are kept for quarantine."
            + (" National ids are stored only as a keyed hash." if spec.national_id_column else "")
        ),
        metadata={"source_system": name, "location": location},
    )
    def raw(context: AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.connect() as con, failure_at(f"{project.config_path}: sources.{name}"):
            result = load_source(con, spec, run_id=context.run_id)
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
                "refused_by_erasure": result.refused_by_erasure,
                "history_rows": result.history_rows,
            }
        )

    return raw


def _staged_asset(project: ProjectConfig, name: str) -> dg.AssetsDefinition:
    spec = project.staging_spec(name)

    @dg.asset(
        name=staged_table(name),
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        deps=[raw_table(name)],
        description=(
            f"Source `{name}` in the canonical schema, standardised for matching: names "
            "lower-cased with accents folded (display forms kept), e-mails normalised, phones "
            "in E.164, dates parsed, free-text names and addresses split, identifiers "
            f"normalised. Unusable rows go to `{quarantine_table(name)}`; invalid field values "
            f"are nulled and listed in `{quality_issues_table(name)}`."
        ),
        metadata={"source_system": name},
    )
    def staged(
        context: AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        with warehouse.connect() as con, failure_at():
            result = stage_and_record(con, spec, run_id=context.run_id)
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
    table_of: Callable[[str], str],
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
        deps=[staged_table(source) for source in sources],
        description=description,
    )
    def union(warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.connect() as con, failure_at():
            by_source = union_tables(
                con, name, [table_of(s) for s in sources], columns, optional=optional
            )
            metadata = table_metadata(con, name)
        return dg.MaterializeResult(metadata={**metadata, "rows_by_source": by_source})

    return union


def build_ingestion_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """Raw and staged assets for every configured source, plus the two union tables."""
    assets: list[dg.AssetsDefinition] = []
    for name, source in project.sources.items():
        assets += [_raw_asset(project, name, source), _staged_asset(project, name)]
    assets.append(
        _union_asset(
            project,
            QUARANTINED_RECORDS,
            quarantine_table,
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
            quality_issues_table,
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
            staged_table,
            staged_columns(project.custom_fields),
            "All standardised records of all sources in one table, keyed by unique_id "
            "(`<source_system>:<source_record_id>`): the input of the linkage model.",
            optional=project.custom_fields,
        )
    )
    return assets
