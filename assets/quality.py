"""Data quality of the ingested sources: the ``data_quality_report`` asset and, per source,
checks on ``staged_<source>`` (record conservation, unique ids, field quality rules and
row-count stability).

A failed check with ERROR severity on a blocking check stops everything downstream of
the staged source in that run, including the report; the failing check's own metadata
then carries the observed rates and rule outcomes.
"""

import dagster as dg
import pandas as pd

from assets.failures import failure_at
from assets.ingestion import INGESTION_GROUP
from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.charts import markdown_image
from linkage.config import ProjectConfig
from linkage.ingest.quality.checks import (
    SourceQuality,
    build_quality_report,
    field_quality,
    staged_id_uniqueness,
    staging_conservation,
)
from linkage.ingest.quality.report import quality_chart_png
from linkage.ingest.quality.rules import RuleOutcome
from linkage.ingest.quality.staging_runs import row_count_change
from linkage.tables import (
    DATA_QUALITY_PROFILE,
    QUALITY_REPORT_FILE,
    quarantine_table,
    raw_table,
    staged_table,
)


def _outcomes_markdown(outcomes: list[RuleOutcome]) -> str:
    if not outcomes:
        return "No quality rules apply to this source's fields."
    lines = ["| field | rule | observed | threshold | result |", "|---|---|---|---|---|"]
    for o in outcomes:
        observed = "n/a" if o.observed is None else f"{o.observed:.3f}"
        result = "pass" if o.passed else ("FAIL (blocking)" if o.blocking else "FAIL (warn)")
        lines.append(f"| {o.field} | {o.rule} | {observed} | {o.threshold:.3f} | {result} |")
    return "\n".join(lines)


def _rounded(value: object) -> float | None:
    return None if value is None or pd.isna(value) else round(float(value), 4)


def _profile_table(profile: pd.DataFrame) -> dg.TableMetadataValue:
    """The profile as a UI table: rates and masked top values, never raw values."""
    return dg.MetadataValue.table(
        records=[
            dg.TableRecord(
                {
                    "source": str(row.source_system),
                    "field": str(row.field),
                    "completeness": _rounded(row.completeness),
                    "validity": _rounded(row.validity),
                    "distinct": int(row.distinct_values),
                    "top_values_masked": str(row.top_values),
                }
            )
            for row in profile.itertuples()
        ],
        schema=dg.TableSchema(
            columns=[
                dg.TableColumn("source", "string"),
                dg.TableColumn("field", "string"),
                dg.TableColumn("completeness", "float"),
                dg.TableColumn("validity", "float"),
                dg.TableColumn("distinct", "int"),
                dg.TableColumn("top_values_masked", "string"),
            ]
        ),
    )


def build_quality_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """The ``data_quality_report`` asset over every staged source of the project."""
    report_path = project.artifacts / QUALITY_REPORT_FILE

    @dg.asset(
        name="data_quality_report",
        group_name=INGESTION_GROUP,
        kinds={"duckdb", "html"},
        deps=[staged_table(name) for name in project.sources],
        description=(
            "What a data steward looks at after each delivery: per source and mapped field, "
            "completeness (share of usable rows with a value), validity (share of values "
            "that passed validation), distinct values and the most frequent values with "
            "personal data masked, the staged row count against the previous run, and the "
            f"quality rules that failed. Stored in the `{DATA_QUALITY_PROFILE}` table and as "
            f"one offline HTML page, `{QUALITY_REPORT_FILE}` under the artifacts folder."
        ),
    )
    def data_quality_report(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        with warehouse.connect() as con, failure_at():
            report = build_quality_report(
                con,
                project.quality_specs(),
                top_values=project.quality.top_values,
                path=report_path,
                title=f"Meld data quality: {project.config_path.name}",
            )
            metadata = table_metadata(con, DATA_QUALITY_PROFILE)
        profile = report.profile
        context.log.info(
            "profiled %d field(s); %d rule(s) failed", len(profile), report.failed_rules
        )
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "profile": _profile_table(profile),
                "quality_chart": dg.MetadataValue.md(
                    markdown_image(quality_chart_png(profile), "completeness and validity")
                ),
                "report": dg.MetadataValue.path(str(report_path)),
                "failed_rules": report.failed_rules,
                **report.source_rates(),
            }
        )

    return [data_quality_report]


def _conservation_check(name: str) -> dg.AssetChecksDefinition:
    staged, raw, quarantine = staged_table(name), raw_table(name), quarantine_table(name)

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_conserves_records",
        blocking=True,
        description=f"Every row of {raw} is in {staged} or in {quarantine}.",
    )
    def conserves_records(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con, failure_at():
            counts = staging_conservation(con, name)
        return dg.AssetCheckResult(
            passed=counts.passed,
            metadata={
                "raw_rows": counts.raw_rows,
                "staged_rows": counts.staged_rows,
                "quarantined_rows": counts.quarantined_rows,
                "unaccounted": counts.unaccounted,
            },
        )

    return conserves_records


def _unique_ids_check(name: str) -> dg.AssetChecksDefinition:
    staged = staged_table(name)

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_unique_ids",
        blocking=True,
        description=f"Each source_record_id appears once in {staged}, and none is missing.",
    )
    def unique_ids(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con, failure_at():
            ids = staged_id_uniqueness(con, name)
        return dg.AssetCheckResult(
            passed=ids.passed,
            metadata={
                "rows": ids.rows,
                "distinct_ids": ids.distinct_ids,
                "duplicate_rows": ids.duplicate_rows,
                "missing_ids": ids.missing_ids,
            },
        )

    return unique_ids


def _field_quality_check(spec: SourceQuality) -> dg.AssetChecksDefinition:
    staged = staged_table(spec.source_system)

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_field_quality",
        blocking=spec.any_blocking,
        description=(
            "Null and validity rates of each mapped field against the quality rules of the "
            "config. Fails with WARN when only warning rules fail; with ERROR, stopping "
            "downstream assets, when a rule marked `blocking: true` fails."
        ),
    )
    def field_quality_check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con, failure_at():
            quality = field_quality(con, spec)
        metadata: dict = {
            "rule_outcomes": dg.MetadataValue.md(_outcomes_markdown(quality.outcomes)),
            "failed_rules": len(quality.failed),
            "failed_blocking_rules": len(quality.failed_blocking),
        }
        for rate in quality.rates:
            if rate.null_rate is not None:
                metadata[f"{rate.field}.null_rate"] = rate.null_rate
            if rate.valid_rate is not None:
                metadata[f"{rate.field}.valid_rate"] = rate.valid_rate
        return dg.AssetCheckResult(
            passed=not quality.failed,
            severity=(
                dg.AssetCheckSeverity.ERROR
                if quality.failed_blocking
                else dg.AssetCheckSeverity.WARN
            ),
            description=", ".join(f"{o.field} {o.rule}" for o in quality.failed) or None,
            metadata=metadata,
        )

    return field_quality_check


def _row_count_check(name: str, max_drop: float) -> dg.AssetChecksDefinition:
    staged = staged_table(name)

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_row_count_stable",
        description=(
            f"Staged rows did not fall by more than {max_drop:.0%} against the previous "
            "staging run (staging_runs)."
        ),
    )
    def row_count_stable(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con, failure_at():
            change = row_count_change(con, name)
        metadata: dict = {"max_row_drop": max_drop}
        if change.current is not None:
            metadata["staged_rows"] = change.current
        if change.previous is None:
            metadata["previous_run"] = "no previous staging run recorded"
        else:
            metadata["previous_staged_rows"] = change.previous
            metadata["previous_run_id"] = change.previous_run_id or ""
        if change.drop is not None:
            metadata["row_drop"] = change.drop
        return dg.AssetCheckResult(
            passed=not change.exceeds_drop(max_drop),
            severity=dg.AssetCheckSeverity.WARN,
            metadata=metadata,
        )

    return row_count_stable


def build_quality_checks(project: ProjectConfig) -> list[dg.AssetChecksDefinition]:
    """Four checks on each ``staged_<source>``: ``_conserves_records`` and ``_unique_ids``
    (blocking), ``_field_quality`` (WARN, or ERROR and blocking for blocking rules) and
    ``_row_count_stable`` (WARN)."""
    checks: list[dg.AssetChecksDefinition] = []
    for name in project.sources:
        checks += [
            _conservation_check(name),
            _unique_ids_check(name),
            _field_quality_check(project.quality_spec(name)),
            _row_count_check(name, project.quality.max_row_drop),
        ]
    return checks
