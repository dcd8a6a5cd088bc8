"""The data-quality steps of a run, one call each: the report over every source, and the
facts each staged source's checks judge (conservation, unique ids, field rules).

Examples:
    ```py
    report = build_quality_report(con, project.quality_specs(), top_values=10, path=p, title=t)
    report.failed_rules, report.source_rates()
    staging_conservation(con, "crm_contacts").passed
    ```
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pandas as pd

from linkage.ingest.quality.profiling import profile_sources, rates_from_profile
from linkage.ingest.quality.report import write_quality_report
from linkage.ingest.quality.rules import (
    FieldRates,
    QualityRule,
    RuleOutcome,
    evaluate_quality_rules,
    field_rates,
)
from linkage.ingest.quality.staging_runs import RowCountChange, row_count_change
from linkage.tables import quarantine_table, raw_table, staged_table
from linkage.warehouse import quote, row_count


@dataclass(frozen=True)
class SourceQuality:
    """A source's mapped fields (canonical and custom, to source column) and the quality
    rule of each (None: no rule)."""

    source_system: str
    fields: Mapping[str, str]
    rules: Mapping[str, QualityRule | None] = field(default_factory=dict)

    @property
    def any_blocking(self) -> bool:
        """Whether a failed rule of this source stops downstream work."""
        return any(rule is not None and rule.blocking for rule in self.rules.values())


@dataclass(frozen=True)
class QualityReport:
    """The data-quality profile of every source, with row counts and rule outcomes."""

    profile: pd.DataFrame
    row_counts: dict[str, RowCountChange]
    outcomes: dict[str, list[RuleOutcome]]
    path: Path

    @property
    def failed_rules(self) -> int:
        return sum(not o.passed for found in self.outcomes.values() for o in found)

    def source_rates(self) -> dict[str, float]:
        """``<source>.completeness`` over all mapped cells of each source and
        ``<source>.validity`` over all present values."""
        rates: dict[str, float] = {}
        for source in self.outcomes:
            mine = self.profile[self.profile["source_system"] == source]
            cells = int(mine["rows"].sum())
            present = int(mine["present"].sum())
            if cells:
                rates[f"{source}.completeness"] = present / cells
            if present:
                rates[f"{source}.validity"] = (present - int(mine["invalid"].sum())) / present
        return rates


def build_quality_report(
    con: duckdb.DuckDBPyConnection,
    sources: Sequence[SourceQuality],
    *,
    top_values: int,
    path: Path,
    title: str,
) -> QualityReport:
    """Profile every staged source (``data_quality_profile``), compare its row count with
    the previous staging run, check its rules, and write the offline HTML report."""
    profile = profile_sources(
        con, {s.source_system: s.fields for s in sources}, top_values=top_values
    )
    changes = {s.source_system: row_count_change(con, s.source_system) for s in sources}
    outcomes = {
        s.source_system: evaluate_quality_rules(
            rates_from_profile(profile, s.source_system), s.rules
        )
        for s in sources
    }
    write_quality_report(profile, path, title=title, row_counts=changes, rule_outcomes=outcomes)
    return QualityReport(profile=profile, row_counts=changes, outcomes=outcomes, path=path)


@dataclass(frozen=True)
class StagingConservation:
    """Rows of ``raw_<source>`` against those staged and quarantined."""

    raw_rows: int
    staged_rows: int
    quarantined_rows: int

    @property
    def unaccounted(self) -> int:
        return self.raw_rows - self.staged_rows - self.quarantined_rows

    @property
    def passed(self) -> bool:
        return self.unaccounted == 0


def staging_conservation(con: duckdb.DuckDBPyConnection, source: str) -> StagingConservation:
    """Whether every raw row of a source is staged or quarantined."""
    return StagingConservation(
        raw_rows=row_count(con, raw_table(source)),
        staged_rows=row_count(con, staged_table(source)),
        quarantined_rows=row_count(con, quarantine_table(source)),
    )


@dataclass(frozen=True)
class IdUniqueness:
    """Source record ids of ``staged_<source>``: rows, distinct ids and missing ids."""

    rows: int
    distinct_ids: int
    missing_ids: int

    @property
    def duplicate_rows(self) -> int:
        return self.rows - self.missing_ids - self.distinct_ids

    @property
    def passed(self) -> bool:
        return self.rows == self.distinct_ids and self.missing_ids == 0


def staged_id_uniqueness(con: duckdb.DuckDBPyConnection, source: str) -> IdUniqueness:
    """Whether each staged record of a source has an id of its own."""
    rows, distinct, missing = con.execute(
        "SELECT count(*), count(DISTINCT source_record_id), "
        f"count(*) - count(source_record_id) FROM {quote(staged_table(source))}"
    ).fetchall()[0]
    return IdUniqueness(rows=int(rows), distinct_ids=int(distinct), missing_ids=int(missing))


@dataclass(frozen=True)
class FieldQuality:
    """Observed rates of a source's fields and the outcome of each rule threshold."""

    rates: list[FieldRates]
    outcomes: list[RuleOutcome]

    @property
    def failed(self) -> list[RuleOutcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def failed_blocking(self) -> list[RuleOutcome]:
        return [o for o in self.failed if o.blocking]


def field_quality(con: duckdb.DuckDBPyConnection, spec: SourceQuality) -> FieldQuality:
    """Null and validity rates of a source's fields, checked against their rules."""
    rates = field_rates(con, spec.source_system, spec.fields)
    return FieldQuality(rates=rates, outcomes=evaluate_quality_rules(rates, spec.rules))
