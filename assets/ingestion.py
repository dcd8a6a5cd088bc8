"""Ingestion assets: ``raw_<source>`` and ``staged_<source>`` per configured source,
then ``quarantined_records`` and ``customer_records`` over all of them."""

import dagster as dg
from dagster import AssetExecutionContext

from assets.metadata import table_metadata
from linkage.canonical import STAGED_COLUMNS
from linkage.sources import SourceError, load_raw_source
from linkage.staging import QUARANTINE_COLUMNS, FieldSpec, stage_source
from linkage.warehouse import quote, table_exists
from orchestration.project import ProjectConfig, SourceConfig
from orchestration.resources import WarehouseResource

INGESTION_GROUP = "ingestion"


def _raw_asset(project: ProjectConfig, name: str, source: SourceConfig) -> dg.AssetsDefinition:
    pattern = project.resolve(source.path)
    mapped = {f"fields.{field}": spec.column for field, spec in source.fields.items()}

    @dg.asset(
        name=f"raw_{name}",
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        description=(
            f"Rows of source system `{name}` exactly as delivered in `{source.path}`, every "
            "column as text, with source_system, source_record_id, row number, file and its "
            "SHA-256 fingerprint, and load time."
        ),
        metadata={"source_system": name, "path": str(pattern)},
    )
    def raw(context: AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            try:
                result = load_raw_source(
                    con,
                    source_system=name,
                    pattern=pattern,
                    id_column=source.id_column,
                    mapped_columns=mapped,
                    delimiter=source.delimiter,
                    encoding=source.encoding,
                )
            except SourceError as exc:
                raise dg.Failure(
                    description=f"{project.config_path}: sources.{name}: {exc}"
                ) from exc
            metadata = table_metadata(con, result.table)
        context.log.info("loaded %d rows from %d file(s)", result.rows, len(result.files))
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "files": dg.MetadataValue.table(
                    records=[
                        dg.TableRecord(
                            {
                                "file": f.path.name,
                                "rows": f.rows,
                                "bytes": f.size_bytes,
                                "sha256": f.sha256[:16],
                            }
                        )
                        for f in result.files
                    ],
                    schema=dg.TableSchema(
                        columns=[
                            dg.TableColumn("file", "string"),
                            dg.TableColumn("rows", "int"),
                            dg.TableColumn("bytes", "int"),
                            dg.TableColumn("sha256", "string"),
                        ]
                    ),
                ),
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
            "in E.164, dates parsed, free-text names and addresses split. Unusable rows go to "
            f"`quarantine_{name}`; invalid field values are nulled and listed in "
            f"`quality_issues_{name}`."
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
    project: ProjectConfig, name: str, table_prefix: str, columns: dict[str, str], description: str
) -> dg.AssetsDefinition:
    sources = list(project.sources)

    @dg.asset(
        name=name,
        group_name=INGESTION_GROUP,
        kinds={"duckdb"},
        deps=[f"staged_{source}" for source in sources],
        description=description,
    )
    def union(warehouse: WarehouseResource) -> dg.MaterializeResult:
        column_list = ", ".join(quote(c) for c in columns)
        with warehouse.connect() as con:
            selects = [
                f"SELECT {column_list} FROM {quote(table_prefix + source)}"
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
            "quarantined_records",
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
            "customer_records",
            "staged_",
            STAGED_COLUMNS,
            "All standardised records of all sources in one table, keyed by unique_id "
            "(`<source_system>:<source_record_id>`): the input of the linkage model.",
        )
    )
    return assets
