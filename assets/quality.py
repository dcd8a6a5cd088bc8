"""Data quality of the ingested sources: the ``data_quality_report`` asset and, per source,
checks on ``staged_<source>`` (record conservation, unique ids, field quality rules and
row-count stability).

A failed check with ERROR severity on a blocking check stops everything downstream of
the staged source in that run, including the report; the failing check's own metadata
then carries the observed rates and rule outcomes.
"""

import dagster as dg
import pandas as pd

from assets.ingestion import INGESTION_GROUP
from assets.metadata import table_metadata
from assets.resources import WarehouseResource
from linkage.charts import markdown_image
from linkage.config.project import FieldQualityRule, ProjectConfig, SourceConfig
from linkage.ingest.data_quality import (
    RowCountChange,
    RuleOutcome,
    evaluate_quality_rules,
    field_rates,
    profile_sources,
    rates_from_profile,
    row_count_change,
)
from linkage.ingest.quality_report import quality_chart_png, write_quality_report
from linkage.tables import DATA_QUALITY_PROFILE, QUALITY_REPORT_FILE
from linkage.warehouse import quote, row_count


def _mapped(source: SourceConfig) -> dict[str, str]:
    """Canonical and custom fields of a source, each to its source column."""
    return {
        **{field: spec.column for field, spec in source.fields.items()},
        **source.custom_fields,
    }


def _rules(project: ProjectConfig, source: SourceConfig) -> dict[str, FieldQualityRule | None]:
    return {field: source.quality_rule(field, project.quality) for field in _mapped(source)}


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


def _source_rates(profile: pd.DataFrame, source: str) -> dict[str, float]:
    """Completeness over all mapped cells of a source, validity over all present values."""
    mine = profile[profile["source_system"] == source]
    cells = int(mine["rows"].sum())
    present = int(mine["present"].sum())
    rates = {}
    if cells:
        rates[f"{source}.completeness"] = present / cells
    if present:
        rates[f"{source}.validity"] = (present - int(mine["invalid"].sum())) / present
    return rates


def build_quality_assets(project: ProjectConfig) -> list[dg.AssetsDefinition]:
    """The ``data_quality_report`` asset over every staged source of the project."""
    sources = {name: _mapped(source) for name, source in project.sources.items()}
    report_path = project.artifacts / QUALITY_REPORT_FILE

    @dg.asset(
        name="data_quality_report",
        group_name=INGESTION_GROUP,
        kinds={"duckdb", "html"},
        deps=[f"staged_{name}" for name in project.sources],
        description=(
            "What a data steward looks at after each delivery: per source and mapped field, "
            "completeness (share of usable rows with a value), validity (share of values "
            "that passed validation), distinct values and the most frequent values with "
            "personal data masked, the staged row count against the previous run, and the "
            "quality rules that failed. Stored in the `data_quality_profile` table and as "
            f"one offline HTML page, `{QUALITY_REPORT_FILE}` under the artifacts folder."
        ),
    )
    def data_quality_report(
        context: dg.AssetExecutionContext, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        with warehouse.connect() as con:
            profile = profile_sources(con, sources, top_values=project.quality.top_values)
            changes: dict[str, RowCountChange] = {
                name: row_count_change(con, name) for name in sources
            }
            metadata = table_metadata(con, DATA_QUALITY_PROFILE)
        outcomes = {
            name: evaluate_quality_rules(rates_from_profile(profile, name), _rules(project, source))
            for name, source in project.sources.items()
        }
        write_quality_report(
            profile,
            report_path,
            title=f"Meld data quality: {project.config_path.name}",
            row_counts=changes,
            rule_outcomes=outcomes,
        )
        failed = sum(not o.passed for found in outcomes.values() for o in found)
        context.log.info("profiled %d field(s); %d rule(s) failed", len(profile), failed)
        rates = {k: v for name in sources for k, v in _source_rates(profile, name).items()}
        return dg.MaterializeResult(
            metadata={
                **metadata,
                "profile": _profile_table(profile),
                "quality_chart": dg.MetadataValue.md(
                    markdown_image(quality_chart_png(profile), "completeness and validity")
                ),
                "report": dg.MetadataValue.path(str(report_path)),
                "failed_rules": failed,
                **rates,
            }
        )

    return [data_quality_report]


def _source_checks(
    project: ProjectConfig, name: str, source: SourceConfig
) -> list[dg.AssetChecksDefinition]:
    staged, raw, quarantine = f"staged_{name}", f"raw_{name}", f"quarantine_{name}"
    fields = _mapped(source)
    rules = _rules(project, source)
    any_blocking = any(rule is not None and rule.blocking for rule in rules.values())
    max_drop = project.quality.max_row_drop

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_conserves_records",
        blocking=True,
        description=f"Every row of {raw} is in {staged} or in {quarantine}.",
    )
    def conserves_records(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            raw_rows = row_count(con, raw)
            staged_rows = row_count(con, staged)
            quarantined = row_count(con, quarantine)
        return dg.AssetCheckResult(
            passed=raw_rows == staged_rows + quarantined,
            metadata={
                "raw_rows": raw_rows,
                "staged_rows": staged_rows,
                "quarantined_rows": quarantined,
                "unaccounted": raw_rows - staged_rows - quarantined,
            },
        )

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_unique_ids",
        blocking=True,
        description=f"Each source_record_id appears once in {staged}, and none is missing.",
    )
    def unique_ids(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            rows, distinct, missing = con.execute(
                "SELECT count(*), count(DISTINCT source_record_id), "
                f"count(*) - count(source_record_id) FROM {quote(staged)}"
            ).fetchall()[0]
        return dg.AssetCheckResult(
            passed=rows == distinct and missing == 0,
            metadata={
                "rows": int(rows),
                "distinct_ids": int(distinct),
                "duplicate_rows": int(rows - missing - distinct),
                "missing_ids": int(missing),
            },
        )

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_field_quality",
        blocking=any_blocking,
        description=(
            "Null and validity rates of each mapped field against the quality rules of the "
            "config. Fails with WARN when only warning rules fail; with ERROR, stopping "
            "downstream assets, when a rule marked `blocking: true` fails."
        ),
    )
    def field_quality(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
            rates = field_rates(con, name, fields)
        outcomes = evaluate_quality_rules(rates, rules)
        failed = [o for o in outcomes if not o.passed]
        blocking_failed = [o for o in failed if o.blocking]
        metadata: dict = {
            "rule_outcomes": dg.MetadataValue.md(_outcomes_markdown(outcomes)),
            "failed_rules": len(failed),
            "failed_blocking_rules": len(blocking_failed),
        }
        for rate in rates:
            if rate.null_rate is not None:
                metadata[f"{rate.field}.null_rate"] = rate.null_rate
            if rate.valid_rate is not None:
                metadata[f"{rate.field}.valid_rate"] = rate.valid_rate
        return dg.AssetCheckResult(
            passed=not failed,
            severity=dg.AssetCheckSeverity.ERROR if blocking_failed else dg.AssetCheckSeverity.WARN,
            description=", ".join(f"{o.field} {o.rule}" for o in failed) or None,
            metadata=metadata,
        )

    @dg.asset_check(
        asset=staged,
        name=f"{staged}_row_count_stable",
        description=(
            f"Staged rows did not fall by more than {max_drop:.0%} against the previous "
            "staging run (staging_runs)."
        ),
    )
    def row_count_stable(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        with warehouse.connect() as con:
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

    return [conserves_records, unique_ids, field_quality, row_count_stable]


def build_quality_checks(project: ProjectConfig) -> list[dg.AssetChecksDefinition]:
    """Four checks on each ``staged_<source>``: ``_conserves_records`` and ``_unique_ids``
    (blocking), ``_field_quality`` (WARN, or ERROR and blocking for blocking rules) and
    ``_row_count_stable`` (WARN)."""
    checks: list[dg.AssetChecksDefinition] = []
    for name, source in project.sources.items():
        checks += _source_checks(project, name, source)
    return checks
