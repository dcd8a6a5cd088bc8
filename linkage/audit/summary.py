"""What the last pipeline run produced, read back from the warehouse."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import duckdb

from linkage.tables import (
    CUSTOMER_CLUSTERS,
    LINKAGE_EVALUATION,
    LINKAGE_MODEL,
    QUARANTINED_RECORDS,
    SOURCE_DELIVERIES,
)
from linkage.warehouse import quote, table_exists

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SourceCounts:
    """Rows of one source at each stage."""

    raw: int
    staged: int
    quarantined: int
    deliveries: int = 0
    invalid_values: int = 0


@dataclass
class PipelineSummary:
    """Counts, model and evaluation of the warehouse's current state."""

    sources: dict[str, SourceCounts] = field(default_factory=dict)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)
    customers: int | None = None
    clustered: int = 0
    multi_record_customers: int = 0
    largest_customer: int = 0
    model_version: str | None = None
    match_threshold: float | None = None
    mlflow_run_id: str | None = None
    evaluation: dict[str, float] = field(default_factory=dict)

    @property
    def raw_total(self) -> int:
        return sum(c.raw for c in self.sources.values())

    @property
    def staged_total(self) -> int:
        return sum(c.staged for c in self.sources.values())

    @property
    def quarantined_total(self) -> int:
        return sum(c.quarantined for c in self.sources.values())


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    if not table_exists(con, table):
        return 0
    return int(con.execute(f"SELECT count(*) FROM {quote(table)}").fetchall()[0][0])


def _deliveries(con: duckdb.DuckDBPyConnection, source: str) -> int:
    if not table_exists(con, SOURCE_DELIVERIES):
        return 0
    return int(
        con.execute(
            f"SELECT count(*) FROM {SOURCE_DELIVERIES} WHERE source_system = ?", [source]
        ).fetchall()[0][0]
    )


def read_summary(con: duckdb.DuckDBPyConnection, sources: list[str]) -> PipelineSummary:
    """Summarise the warehouse: per-source counts, customers, model and latest evaluation."""
    summary = PipelineSummary()
    for source in sources:
        summary.sources[source] = SourceCounts(
            raw=_count(con, f"raw_{source}"),
            staged=_count(con, f"staged_{source}"),
            quarantined=_count(con, f"quarantine_{source}"),
            deliveries=_deliveries(con, source),
            invalid_values=_count(con, f"quality_issues_{source}"),
        )
    if table_exists(con, QUARANTINED_RECORDS):
        summary.quarantine_reasons = {
            str(k): int(v)
            for k, v in con.execute(
                f"SELECT reason, count(*) FROM {QUARANTINED_RECORDS} GROUP BY 1 ORDER BY 2 DESC"
            ).fetchall()
        }
    if table_exists(con, CUSTOMER_CLUSTERS):
        row = con.execute(
            "SELECT count(DISTINCT customer_id), count(*), "
            "count(DISTINCT customer_id) FILTER (WHERE customer_record_count > 1), "
            f"coalesce(max(customer_record_count), 0) FROM {CUSTOMER_CLUSTERS}"
        ).fetchall()[0]
        summary.customers, summary.clustered = int(row[0]), int(row[1])
        summary.multi_record_customers, summary.largest_customer = int(row[2]), int(row[3])
    if table_exists(con, LINKAGE_MODEL):
        rows = con.execute(
            f"SELECT model_version, match_threshold, mlflow_run_id FROM {LINKAGE_MODEL} "
            "ORDER BY trained_at DESC LIMIT 1"
        ).fetchall()
        if rows:
            summary.model_version, summary.match_threshold, summary.mlflow_run_id = rows[0]
    if table_exists(con, LINKAGE_EVALUATION):
        summary.evaluation = {
            str(k): float(v)
            for k, v in con.execute(
                f"SELECT metric, value FROM {LINKAGE_EVALUATION} WHERE evaluated_at = "
                f"(SELECT max(evaluated_at) FROM {LINKAGE_EVALUATION})"
            ).fetchall()
        }
    return summary
